"""Writing result files atomically: a reader sees the old file or the complete new one, never a half.

Every file the project writes for people or other stages (features, scores, exports, the demo shop)
goes through `atomic_path`: the content goes to a temporary file next to the target, which replaces
the target only when complete (`os.replace` is atomic within a file system); a set of files (campaign
lists) through `atomic_files`. The directories an output goes in are made only when it is written, and
removed again when the writing fails, so a command that refuses or fails leaves nothing behind
(`check_output` checks the place beforehand without making anything).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

TABLE_SUFFIXES = (".parquet", ".csv")


def is_dataset(path: Path | str) -> bool:
    """Whether `path` is a directory holding only a Parquet dataset as Spark writes it (part files, their
    checksums, `_SUCCESS`), which an output may replace; any other directory is the user's."""
    path = Path(path)
    if not path.is_dir():
        return False
    names = [p.name for p in path.iterdir()]
    return "_SUCCESS" in names and all(
        n == "_SUCCESS" or n.startswith(("part-", "._SUCCESS", ".part-")) for n in names
    )


def missing_directory(path: Path | str) -> Path | None:
    """The top-most directory that writing `path` would create (`path`'s directory or one of its
    parents), None when `path`'s directory exists."""
    parent = Path(path).parent
    if parent.is_dir():
        return None
    return next(p for p in (parent, *parent.parents) if p.parent.is_dir())


@contextlib.contextmanager
def _directory_for(path: Path) -> Iterator[None]:
    """Make `path`'s missing directories for the block, and remove them again when it fails: a failed
    write leaves no empty directory behind (a typo in --out would otherwise leave a trail)."""
    top = missing_directory(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if top is not None:
            made = [path.parent, *path.parent.parents]
            for directory in made[: made.index(top) + 1]:
                with contextlib.suppress(OSError):  # not empty: something else wrote there meanwhile
                    directory.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write a file to; it becomes `path` when the block ends without error
    (replacing a file, or a dataset the Spark engine wrote there: `atomic_dataset`). Missing directories
    are made, and removed again on error (`_directory_for`)."""
    if is_dataset(path):
        with atomic_dataset(path) as tmp:
            yield tmp
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with _directory_for(path):
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dataset(path: Path | str) -> Iterator[Path]:
    """`atomic_path` for a directory (a Parquet dataset of part files): yield a temporary path next to
    `path`; when the block ends without error, whatever was at `path` (a file or a dataset) moves aside
    and the new directory takes its place, so a reader sees the old data or the complete new data."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    with _directory_for(path):
        try:
            yield tmp
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
        finally:
            for leftover in (tmp, old):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_files(directory: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory to write a set of files to; when the block ends without error
    they appear in `directory`. A new `directory` appears at once with all of them (the temporary one is
    renamed to it, `atomic_dataset`); into an existing one, which may hold other files of the user's,
    each file replaces its namesake only once every file is complete. On error nothing appears."""
    directory = Path(directory)
    if not directory.is_dir():
        with atomic_dataset(directory) as tmp:
            tmp.mkdir()
            yield tmp
        return
    tmp = directory / f".{os.getpid()}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        for written in sorted(tmp.iterdir()):
            os.replace(written, directory / written.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_output(path: Path | str, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> Path | None:
    """Check, before any work, that a result can be written at `path`, without making anything: its
    missing directories are made when the result is written (`atomic_path`), so a command that refuses
    later leaves nothing behind.

    `path` may be a Parquet dataset the Spark engine wrote before (`is_dataset`), which either engine
    replaces; any other directory is refused.
    Returns the top-most directory writing will create (`missing_directory`; the caller says so once it
    wrote: a typo must not scatter files unnoticed), or None. Raises ValueError naming the problem and
    the fix: a directory given as the file, a suffix not in `suffixes`, or a place this process cannot
    write to, found by creating and removing a temporary file in `path`'s directory or, when that is
    missing, in the nearest existing one (a file where a directory should be is refused too).
    """
    path = Path(path)
    if path.is_dir() and not is_dataset(path):
        raise ValueError(
            f"{path} is a directory that is not a dataset written by `--engine spark`, so it is not replaced. "
            f"Fix: give a file name, e.g. {path / ('result' + suffixes[0])}, or remove the directory"
        )
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(
            f"{path}: the file name must end in {' or '.join(suffixes)}. Fix: name it so, e.g. "
            f"{path.with_suffix(suffixes[0]).name}"
        )
    missing = missing_directory(path)
    existing = path.parent if missing is None else missing.parent
    problem = f"cannot write {path}" if missing is None else f"cannot create {path.parent}"
    if missing is not None and missing.exists():
        raise ValueError(f"{problem}: {missing} is a file. Fix: choose a place you can write to.")
    probe = existing / f".{path.name}.{os.getpid()}.tmp"
    try:
        probe.open("x").close()
    except OSError as exc:
        raise ValueError(f"{problem}: {exc.strerror}. Fix: choose a place you can write to.") from None
    probe.unlink(missing_ok=True)
    return missing


def write_frame(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write a table as Parquet or CSV (by the file's suffix; CSV as `spreadsheet_csv`), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: unsupported output type {suffix!r}; use .parquet or .csv")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            tmp.write_text(spreadsheet_csv(frame))
    return path


def read_frame(path: Path | str) -> pd.DataFrame:
    """Read a table written by `write_frame`: CSV text cells as they were before `spreadsheet_csv`, and
    customer ids as text even when they look like numbers ("00123" stays "00123")."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={"customer_id": str})
        text = frame.select_dtypes(include="object").columns
        return frame.assign(**{c: frame[c].map(_unquoted, na_action="ignore") for c in text})
    raise ValueError(f"{path}: unsupported table type {path.suffix!r}; use .parquet or .csv")


# What a spreadsheet takes for the start of a formula in a cell (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def spreadsheet_csv(frame: pd.DataFrame) -> str:
    """CSV text of a table, safe to open in a spreadsheet: the one rule for every CSV the project writes
    (score tables, exports, campaign lists, the economics table).

    A text cell that begins with =, +, -, @, a tab or a carriage return would run as a formula when the
    file is opened (an id such as `=HYPERLINK(...)`), so it gets a leading single quote, which
    spreadsheets show as text (OWASP's advice). A cell that already begins with a quote gets one too,
    so the rule can be undone exactly: remove one leading quote from every text cell that begins with
    one (`read_frame` does; Parquet files and the service's JSON keep values as they are). That is how
    a customer_id from a CSV joins back to the log.

    Numbers are written in full (the shortest text that reads back as the same float), so a CSV row
    equals its Parquet twin and the number its `reason` quotes: rounded to 6 significant digits, an
    export in a currency of large units read 3.93297e+06 beside "predicted value 3,932,970".
    """
    text = frame.select_dtypes(exclude="number").columns
    safe = frame.assign(**{c: frame[c].map(_quoted, na_action="ignore") for c in text})
    return safe.to_csv(index=False)


def _quoted(value):
    return QUOTE + value if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)) else value


def _unquoted(value):
    return value[1:] if isinstance(value, str) and value.startswith(QUOTE) else value
