"""One reader/writer for the data contract's tables, on local paths and s3:// URIs
(both through ``saviorrec.storage.filesystem``).

Events live as ``ROOT/ds=YYYY-MM-DD/part-*.parquet``. Readers return a ``ds`` column
(str) and ``ts`` as UTC timestamps; ``iter_event_days`` streams one day at a time so
logs larger than memory can be processed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from saviorrec.file_integrity import CorruptFileError, one_line
from saviorrec.storage.filesystem import atomic_output, join, list_names, resolve
from saviorrec.storage.s3 import is_s3_uri

_DAY_DIR = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})$")


# ---- generic parquet on local or S3 -----------------------------------------------------

# What to do about a corrupt file: the stage that wrote it writes it again, whole.
REWRITE = "delete it and rerun the stage that writes it"
REINGEST = "rerun ingest to rewrite the workspace's data (a damaged ingest source must be restored from its origin)"

_OPEN_PREFIX = re.compile(r"^Could not open Parquet input source '[^']*': ")


def parquet_problem(uri: str | Path) -> str | None:
    """Why a local Parquet file cannot be read back whole (footer, page checksums), None when it
    can. S3 is not checked: an object is stored whole or not at all, its read errors are the network's."""
    if is_s3_uri(str(uri)) or not Path(uri).is_file():
        return None
    try:
        pq.ParquetFile(str(uri), page_checksum_verification=True).read()
    except (pa.ArrowException, OSError) as err:
        detail = _OPEN_PREFIX.sub("", one_line(err)).split(". ")[0]
        return f"truncated or overwritten: {detail}"
    return None


def require_intact(uri: str | Path, fix: str = REWRITE) -> None:
    """CorruptFileError when the local Parquet file ``uri`` cannot be read back whole."""
    problem = parquet_problem(uri)
    if problem is not None:
        raise CorruptFileError("Parquet file", uri, problem, fix)


def read_arrow(uri: str | Path, columns: list[str] | None = None, fix: str = REWRITE) -> pa.Table:
    """One Parquet file as an Arrow table; a damaged local one is a CorruptFileError naming it and ``fix``."""
    fs, path = resolve(uri)
    try:
        return pq.read_table(path, columns=columns, filesystem=fs, page_checksum_verification=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"parquet file not found: {uri}") from None
    except (pa.ArrowException, OSError):
        require_intact(uri, fix)
        raise  # readable after all: another problem (a missing column, the network)


def read_parquet(uri: str | Path, columns: list[str] | None = None, fix: str = REWRITE) -> pd.DataFrame:
    """One Parquet file; a damaged local one is a CorruptFileError naming it and ``fix``."""
    return read_arrow(uri, columns, fix).to_pandas()


def iter_row_groups(uri: str | Path, columns: list[str] | None = None,
                    fix: str = REWRITE) -> Iterator[tuple[int, pa.Table]]:
    """(total rows, one row group) at a time, so that reading holds one group's decoding buffers,
    not the whole file's; a damaged local file is a CorruptFileError naming it and ``fix``."""
    fs, path = resolve(uri)
    try:
        with fs.open_input_file(path) as source:
            parquet = pq.ParquetFile(source, page_checksum_verification=True)
            for index in range(parquet.metadata.num_row_groups):
                yield parquet.metadata.num_rows, parquet.read_row_group(index, columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(f"parquet file not found: {uri}") from None
    except (pa.ArrowException, OSError):
        require_intact(uri, fix)
        raise


def write_parquet(df: pd.DataFrame, uri: str | Path, row_group_size: int | None = None) -> None:
    """``df`` as one Parquet file; ``row_group_size`` rows per group bounds what a group-wise reader holds."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_output(uri) as sink:  # readers never see a half-written file
        # page checksums: a reader detects bytes overwritten inside the file, not only a cut-off footer
        pq.write_table(table, sink, write_page_checksum=True, row_group_size=row_group_size)


# ---- events -----------------------------------------------------------------------------

def list_days(root: str | Path) -> list[dt.date]:
    """Days present under an events root, sorted."""
    days = [_DAY_DIR.match(name) for name in list_names(root)]
    return sorted(dt.date.fromisoformat(m.group(1)) for m in days if m)


def day_parts(root: str | Path, day: dt.date | str) -> list[str]:
    """The Parquet files of one day partition, in name order ([] when the day is absent)."""
    day_uri = join(root, f"ds={day}")
    return [join(day_uri, name) for name in list_names(day_uri) if name.endswith(".parquet")]


_EVENT_DTYPES = {"event_id": "int64", "user_id": "int64", "item_id": "int64", "click": "int8", "conversion": "Int8"}


def _normalize_events(df: pd.DataFrame, day: str | None = None) -> pd.DataFrame:
    """Contract dtypes for the columns present (a reader asked for a subset may lack some)."""
    df = df.copy()
    if "ts" in df:
        df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[ns, UTC]")
    for col, dtype in _EVENT_DTYPES.items():
        if col in df and str(df[col].dtype) != dtype:
            df[col] = df[col].astype(dtype)
    if day is not None:
        df["ds"] = day
    df["ds"] = df["ds"].astype("str")
    return df


def read_event_day(root: str | Path, day: dt.date | str, columns: list[str] | None = None) -> pd.DataFrame:
    day = str(day)
    parts = day_parts(root, day)
    if not parts:
        raise FileNotFoundError(f"no parquet files for ds={day} under {root}")
    return _day_frame(day, [read_arrow(part, columns=columns, fix=REINGEST) for part in parts])


def _day_frame(day: dt.date | str, tables: list[pa.Table]) -> pd.DataFrame:
    """One day's files as one frame: each file converted on its own, then concatenated."""
    return _normalize_events(pd.concat([t.to_pandas() for t in tables], ignore_index=True), str(day))


# Consecutive days converted to pandas together, up to this many rows: a sparse log (MovieLens:
# thousands of days of a few dozen rows) pays the per-frame conversion once per group, not per day.
# Memory stays bounded by the group or by one day, whichever is larger.
DAY_GROUP_ROWS = 100_000


def iter_event_days(
    root: str | Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: list[str] | None = None,
) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Yield (day, events) for days in [start, end) in order, each exactly as :func:`read_event_day`
    returns it; only a group of small consecutive days (or one day) is in memory at a time."""
    days = [d for d in list_days(root) if (start is None or d >= start) and (end is None or d < end)]
    if is_s3_uri(str(root)):
        for day in days:
            yield day, read_event_day(root, day, columns=columns)
        return
    group = _DayGroup()
    for day in days:
        parts = day_parts(root, day)
        if not parts:
            raise FileNotFoundError(f"no parquet files for ds={day} under {root}")
        tables = [read_arrow(part, columns=columns, fix=REINGEST) for part in parts]
        key, rows = _conversion_key(tables), sum(t.num_rows for t in tables)
        if not group.accepts(key, rows):
            yield from group.flush()
        if key is None or rows >= DAY_GROUP_ROWS:
            yield day, _day_frame(day, tables)  # converted alone, as read_event_day converts it
        else:
            group.add(day, tables, key, rows)
        del tables
    yield from group.flush()


def _conversion_key(tables: list[pa.Table]) -> tuple | None:
    """What decides the pandas dtypes of a day's conversion: the schema with its pandas metadata, and
    whether each integer or boolean column holds a null (it then converts to float / object). None
    when the day's own files differ: such a day is converted file by file, alone."""
    keys = {(t.schema, tuple(sorted((t.schema.metadata or {}).items())),  # pandas dtypes are in the metadata
             tuple(t.column(i).null_count > 0 for i, f in enumerate(t.schema)
                   if pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)))
            for t in tables}
    return keys.pop() if len(keys) == 1 else None


class _DayGroup:
    """Consecutive days whose files convert to the same dtypes, converted in one pass."""

    def __init__(self) -> None:
        self.days: list[tuple[dt.date, int]] = []
        self.tables: list[pa.Table] = []
        self.key: tuple | None = None
        self.rows = 0

    def accepts(self, key: tuple | None, rows: int) -> bool:
        return not self.days or (key == self.key and self.rows + rows < DAY_GROUP_ROWS)

    def add(self, day: dt.date, tables: list[pa.Table], key: tuple, rows: int) -> None:
        self.days.append((day, rows))
        self.tables += tables
        self.key, self.rows = key, self.rows + rows

    def flush(self) -> Iterator[tuple[dt.date, pd.DataFrame]]:
        days, tables = self.days, self.tables
        self.__init__()
        if not days:
            return
        whole = pa.concat_tables(tables)
        del tables  # the Arrow buffers go as soon as the pandas frame exists
        frame = whole.to_pandas()
        del whole
        counts = [rows for _, rows in days]
        frame["ds"] = np.repeat([str(day) for day, _ in days], counts)
        frame = _normalize_events(frame)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for (day, _), a, b in zip(days, bounds[:-1], bounds[1:], strict=True):
            yield day, frame.iloc[a:b].reset_index(drop=True)


def read_events(
    root: str | Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """All events in [start, end) as one frame (for data that fits in memory).

    Local roots are read in one pass with pyarrow's dataset API (thousands of small day
    partitions, as in MovieLens, stay fast); S3 roots day by day.
    """
    if not is_s3_uri(str(root)):
        return _read_local_events(Path(root), start, end, columns)
    frames = [df for _, df in iter_event_days(root, start, end, columns)]
    if not frames:
        raise FileNotFoundError(f"no event partitions in [{start}, {end}) under {root}")
    return pd.concat(frames, ignore_index=True)


def _read_local_events(root: Path, start: dt.date | None, end: dt.date | None,
                       columns: list[str] | None) -> pd.DataFrame:
    import pyarrow.dataset as pads

    days = [d for d in list_days(root) if (start is None or d >= start) and (end is None or d < end)]
    if not days:
        raise FileNotFoundError(f"no event partitions in [{start}, {end}) under {root}")
    files = sorted(part for d in days for part in day_parts(root, d))
    partitioning = pads.partitioning(pa.schema([("ds", pa.string())]), flavor="hive")
    verified = pads.ParquetFileFormat(
        default_fragment_scan_options=pads.ParquetFragmentScanOptions(page_checksum_verification=True))
    wanted = None if columns is None else [c for c in columns if c != "ds"] + ["ds"]
    try:
        dataset = pads.dataset(files, format=verified, partitioning=partitioning, partition_base_dir=str(root))
        frame = dataset.to_table(columns=wanted).to_pandas()
    except (pa.ArrowException, OSError):
        for part in files:  # the dataset's error need not name the file
            require_intact(part, REINGEST)
        raise
    order = [c for c in ("ds", "ts", "event_id") if c in frame]
    return _normalize_events(frame).sort_values(order, kind="stable", ignore_index=True)


def count_events(root: str | Path) -> int:
    """Rows under an events root, from Parquet footers (no data read)."""
    total = 0
    for day in list_days(root):
        for part in day_parts(root, day):
            fs, path = resolve(part)
            try:
                total += pq.read_metadata(path, filesystem=fs).num_rows
            except (pa.ArrowException, OSError):
                require_intact(part, REINGEST)
                raise
    return total


def write_event_day(df: pd.DataFrame, root: str | Path, day: dt.date | str, part: int = 0) -> str:
    """Write one day's events (without the ``ds`` column: it is the directory name)."""
    uri = join(root, f"ds={day}", f"part-{part:05d}.parquet")
    write_parquet(df.drop(columns=["ds"], errors="ignore"), uri)
    return uri


def write_events(df: pd.DataFrame, root: str | Path) -> list[str]:
    """Partition a frame by the UTC day of ``ts`` and write each day."""
    days = pd.to_datetime(df["ts"], utc=True).dt.strftime("%Y-%m-%d")
    return [write_event_day(group, root, day) for day, group in df.groupby(days, sort=True)]


# ---- items ------------------------------------------------------------------------------

def read_items(uri: str | Path) -> pd.DataFrame:
    items = read_parquet(uri, fix=REINGEST)
    missing = [column for column in ("item_id", "first_seen") if column not in items]
    if missing:  # e.g. a behavior log given as the catalog
        raise ValueError(f"{uri}: not an item catalog: missing column(s) {', '.join(missing)} "
                         f"(found {', '.join(map(str, items.columns[:8]))})")
    return items_from_frame(items)


def items_from_frame(items: pd.DataFrame) -> pd.DataFrame:
    """``items`` (changed in place) with the contract's dtypes for ``item_id`` and ``first_seen``."""
    items["item_id"] = items["item_id"].astype("int64")
    items["first_seen"] = pd.to_datetime(items["first_seen"]).astype("datetime64[ns]")
    return items


def write_items(items: pd.DataFrame, uri: str | Path) -> None:
    write_parquet(items, uri)
