"""`python -m clv`: the same command line as the `clv` entry point."""

from clv.cli import main

main()
