"""The files a person hands to `saviorrec score` / `saviorrec sid`, read and written for them.

Anything wrong with such a file is a :class:`BadInput`: one line naming the file, the problem and
what was expected, which the command prints as ``error: ...`` with exit code 2 (a usage error,
as for a bad flag), never a traceback. The files are checked in the order a person would fix
them: the output suffix, then that each input exists and is Parquet, then its columns, then
its rows against the data contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd

EVENTS_EXPECTED = ("a behavior log in the data contract (docs/data.md): a Parquet file, one ds=YYYY-MM-DD "
                   "partition folder, or a folder of ds=YYYY-MM-DD partitions")
ITEMS_EXPECTED = ("an item catalog in the data contract (docs/data.md): a Parquet file with columns "
                  "item_id, title, category, first_seen")
IMAGES_EXPECTED = ("each image_ref to name a picture under --data-dir (default: the items file's folder), "
                   "or a null image_ref for an item without a picture")
OUTPUT_FORMATS = (".parquet", ".csv", ".json")

_DAY_FOLDER = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})$")
_PARQUET_MAGIC = b"PAR1"
T = TypeVar("T")


class BadInput(ValueError):
    """A file given on the command line cannot be used: ``<file>: <problem>; expected <what>``."""

    def __init__(self, path: str | Path, problem: str, expected: str):
        self.path, self.problem, self.expected = str(path), problem, expected
        super().__init__(f"{path}: {problem}; expected {expected}")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0].strip() if lines else type(err).__name__


def _reading(path: Path, expected: str, read: Callable[[], T]) -> T:
    """``read()``, with whatever a library raises about this file's content turned into a BadInput."""
    import pyarrow as pa

    try:
        return read()
    except BadInput:
        raise
    except (ValueError, TypeError, KeyError, OSError, pa.ArrowException) as err:
        raise BadInput(path, f"cannot be read ({_first_line(err)})", expected) from None


# ---- output ------------------------------------------------------------------------------

def output_format(out: Path) -> str:
    """The format the ``--out`` suffix asks for; checked before any work is done."""
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        found = f"suffix {out.suffix!r}" if out.suffix else "no suffix"
        raise BadInput(out, f"unsupported output format ({found})", f"a file name ending in {', '.join(OUTPUT_FORMATS)}")
    if out.is_dir():
        raise BadInput(out, "is a folder", "a file name to write")
    return suffix


def write_table(df: pd.DataFrame, out: Path) -> None:
    """``df`` in the format of ``out``'s suffix (see :func:`output_format`)."""
    from saviorrec.data import io

    fmt = output_format(out)

    def write() -> None:
        if fmt == ".parquet":
            io.write_parquet(df, out)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == ".csv":
            df.to_csv(out, index=False)
        else:  # one JSON object per row; vectors as lists
            df.to_json(out, orient="records", date_format="iso")

    try:
        write()
    except OSError as err:
        raise BadInput(out, f"cannot be written ({_first_line(err)})", "a writable file path") from None


# ---- Parquet files -----------------------------------------------------------------------

def _not_parquet(path: Path) -> str | None:
    """Why ``path`` is not a readable Parquet file (CSV, garbage, cut short), None when it is."""
    from saviorrec.data import io

    size = path.stat().st_size
    if size == 0:
        return "is an empty file"
    with path.open("rb") as handle:
        head = handle.read(1024)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    if not head.startswith(_PARQUET_MAGIC):
        try:
            first_line = head.decode("utf-8").splitlines()[0]
        except (UnicodeDecodeError, IndexError):
            return "is not a Parquet file"
        if "," in first_line or "\t" in first_line or ";" in first_line:
            return "is a CSV/text file, not Parquet"
        return "is a text file, not Parquet"
    if tail != _PARQUET_MAGIC:
        return "is a damaged Parquet file (cut short: no Parquet footer)"
    problem = io.parquet_problem(path)
    return f"is a damaged Parquet file ({problem})" if problem else None


def _require_parquet(path: Path, expected: str) -> None:
    problem = _not_parquet(path)
    if problem:
        raise BadInput(path, problem, expected)


# ---- the behavior log --------------------------------------------------------------------

def read_events_input(path: Path) -> pd.DataFrame:
    """Impressions from a Parquet file, one ``ds=YYYY-MM-DD`` folder or a folder of them;
    required columns present with their contract types (rows are checked by :func:`check_events`)."""
    from saviorrec.data import io
    from saviorrec.data.contract import EVENT_COLUMNS, event_schema_drift

    if not path.exists():
        raise BadInput(path, "no such file or folder", EVENTS_EXPECTED)
    if path.is_dir():
        day = _DAY_FOLDER.match(path.name)
        if day:
            parts = [Path(p) for p in io.day_parts(path.parent, day.group(1))]
            if not parts:
                raise BadInput(path, "partition folder holds no .parquet file", EVENTS_EXPECTED)
            for part in parts:
                _require_parquet(part, EVENTS_EXPECTED)
            frame = _reading(path, EVENTS_EXPECTED, lambda: io.read_event_day(path.parent, day.group(1)))
        else:
            days = io.list_days(path)
            if not days:
                raise BadInput(path, "folder holds no ds=YYYY-MM-DD partition", EVENTS_EXPECTED)
            for part in (Path(p) for d in days for p in io.day_parts(path, d)):
                _require_parquet(part, EVENTS_EXPECTED)
            frame = _reading(path, EVENTS_EXPECTED, lambda: io.read_events(path))
    else:
        _require_parquet(path, EVENTS_EXPECTED)
        frame = _reading(path, EVENTS_EXPECTED, lambda: io.read_parquet(path))
    missing, wrong_types = event_schema_drift(frame)
    if missing:
        hint = ": it looks like an item catalog" if "first_seen" in frame and "title" in frame else ""
        raise BadInput(path, f"missing column(s) {', '.join(missing)}{hint}",
                       f"the behavior log columns {', '.join(EVENT_COLUMNS)} (docs/data.md)")
    if wrong_types:
        problems = ", ".join(f"{column} ({check})" for column, check in wrong_types.items())
        raise BadInput(path, f"wrong column type(s): {problems}", "the behavior log types of docs/data.md")
    return frame


def check_events(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` if its rows meet the data contract (values, uniqueness, ts inside its day)."""
    from saviorrec.data.contract import ContractError, validate_events

    try:
        return validate_events(frame)
    except ContractError as err:
        raise BadInput(path, "breaks the data contract: " + _problems(err), EVENTS_EXPECTED) from None


def check_known_items(path: Path, frame: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """``frame`` if every impression's item is in the model's catalog (+ --items)."""
    unknown = ~frame["item_id"].isin(catalog["item_id"])
    if unknown.any():
        examples = ", ".join(str(v) for v in frame.loc[unknown, "item_id"].unique()[:3])
        raise BadInput(path, f"item_id missing from the model's catalog ({int(unknown.sum())} rows, e.g. {examples})",
                       "items the model was trained with, or their catalog rows given with --items")
    return frame


def _problems(err) -> str:
    return "; ".join(f"column '{column}': {problem}" for column, problem in err.problems)


# ---- the item catalog --------------------------------------------------------------------

def read_items_input(path: Path) -> pd.DataFrame:
    """A catalog file that meets the data contract (the item columns and rows)."""
    from saviorrec.data.contract import ITEM_REQUIRED, ContractError, validate_items

    if not path.exists():
        raise BadInput(path, "no such file", ITEMS_EXPECTED)
    if path.is_dir():
        raise BadInput(path, "is a folder", ITEMS_EXPECTED)
    _require_parquet(path, ITEMS_EXPECTED)
    from saviorrec.data import io

    raw = _reading(path, ITEMS_EXPECTED, lambda: io.read_parquet(path))
    missing = [column for column in ITEM_REQUIRED if column not in raw]
    if missing:
        hint = ": it looks like a behavior log" if {"event_id", "click"} <= set(raw.columns) else ""
        raise BadInput(path, f"missing column(s) {', '.join(missing)}{hint}", ITEMS_EXPECTED)
    items = _reading(path, ITEMS_EXPECTED, lambda: io.items_from_frame(raw))
    try:
        return validate_items(items)
    except ContractError as err:
        raise BadInput(path, "breaks the data contract: " + _problems(err), ITEMS_EXPECTED) from None


def resolve_image_refs(items: pd.DataFrame, items_file: Path, data_dir: Path | None) -> pd.DataFrame:
    """``items`` with each ``image_ref`` made absolute under ``data_dir`` (default: the items
    file's folder). A reference that names no file is a BadInput: an item encoded without
    its picture gets another z, and so another SID, than the same item with it."""
    from saviorrec.models.image import unresolved_image_refs

    if "image_ref" not in items:
        return items
    base = (data_dir or items_file.parent).resolve()
    missing = unresolved_image_refs(items, base)
    if missing:
        given = int(items["image_ref"].map(lambda ref: isinstance(ref, str) and bool(ref)).sum())
        raise BadInput(items_file, f"{len(missing)} of {given} image_ref(s) name no file under {base} "
                                   f"(e.g. {missing[0]})", IMAGES_EXPECTED)
    items = items.copy()
    items["image_ref"] = items["image_ref"].map(lambda ref: str(base / ref) if isinstance(ref, str) and ref else None)
    return items
