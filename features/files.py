"""Writing result files atomically: a reader sees the old file or the complete new one, never a half.

Every file the project writes for people or other stages (features, scores, exports, the demo shop)
goes through `atomic_path`: the content goes to a temporary file next to the target, which replaces
the target only when complete (`os.replace` is atomic within a file system).
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


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write a file to; it becomes `path` when the block ends without error
    (replacing a file, or a dataset the Spark engine wrote there: `atomic_dataset`)."""
    if is_dataset(path):
        with atomic_dataset(path) as tmp:
            yield tmp
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
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


def check_output(path: Path | str, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> Path | None:
    """Check, before any work, that a result can be written at `path`; create its directory if missing.

    `path` may be a Parquet dataset the Spark engine wrote before (`is_dataset`), which either engine
    replaces; any other directory is refused.
    Returns the directory it created (the caller says so: a typo must not scatter files unnoticed), or
    None. Raises ValueError naming the problem and the fix: a directory given as the file, a suffix not
    in `suffixes`, or a place this process cannot write to, found by creating and removing the
    temporary file `atomic_path` would write.
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
    created = None
    if not path.parent.is_dir():
        missing = next(p for p in (path.parent, *path.parent.parents) if p.parent.is_dir())
        try:
            path.parent.mkdir(parents=True)
        except OSError as exc:
            raise ValueError(
                f"cannot create {path.parent}: {exc.strerror}. Fix: choose a place you can write to."
            ) from None
        created = missing
    probe = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        probe.open("x").close()
    except OSError as exc:
        raise ValueError(
            f"cannot write {path}: {exc.strerror}. Fix: choose a place you can write to."
        ) from None
    probe.unlink(missing_ok=True)
    return created


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


def spreadsheet_csv(frame: pd.DataFrame, float_format: str | None = None) -> str:
    """CSV text of a table, safe to open in a spreadsheet: the one rule for every CSV the project writes
    (score tables, exports, campaign lists, the economics table).

    A text cell that begins with =, +, -, @, a tab or a carriage return would run as a formula when the
    file is opened (an id such as `=HYPERLINK(...)`), so it gets a leading single quote, which
    spreadsheets show as text (OWASP's advice). A cell that already begins with a quote gets one too,
    so the rule can be undone exactly: remove one leading quote from every text cell that begins with
    one (`read_frame` does; Parquet files and the service's JSON keep values as they are). That is how
    a customer_id from a CSV joins back to the log.
    """
    text = frame.select_dtypes(exclude="number").columns
    safe = frame.assign(**{c: frame[c].map(_quoted, na_action="ignore") for c in text})
    return safe.to_csv(index=False, float_format=float_format)


def _quoted(value):
    return QUOTE + value if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)) else value


def _unquoted(value):
    return value[1:] if isinstance(value, str) and value.startswith(QUOTE) else value
