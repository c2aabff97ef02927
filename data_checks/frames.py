"""Tolerant readers: load what arrived, even when it breaks the contract, so gates can report it.

``saviorrec.data.io`` normalizes types on read (and must: stages rely on them), which turns
a missing column into a KeyError and a null id into a cast error. Gates need the raw data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from saviorrec.data import io
from saviorrec.data.contract import EVENT_COLUMNS

INTEGER_COLUMNS = ("event_id", "user_id", "item_id", "click", "conversion")


def read_raw_day(root, day) -> pd.DataFrame:
    """Every part of one day partition as written (no casts); 0 rows if the folder is empty."""
    day_uri = io._join(root, f"ds={day}")
    parts = [name for name in io._list(day_uri) if name.endswith(".parquet")]
    frames = [io.read_parquet(io._join(day_uri, name)) for name in parts]
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame({col: pd.Series(dtype="float64") for col in EVENT_COLUMNS})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _integral(series: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return True
    if pd.api.types.is_float_dtype(series.dtype):  # parquet ints with nulls read back as float
        values = series.dropna().to_numpy()
        return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return False


def schema_problems(frame: pd.DataFrame) -> str:
    """'ok', or a readable list of missing columns and wrong types (schema drift)."""
    problems = []
    missing = [col for col in EVENT_COLUMNS if col not in frame.columns]
    if missing:
        extra = [c for c in frame.columns if c not in EVENT_COLUMNS and not c.startswith("oracle_") and c != "ds"]
        problems.append(f"missing column(s) {', '.join(missing)}" + (f" (found {', '.join(extra)})" if extra else ""))
    for col in INTEGER_COLUMNS:
        if col in frame.columns and not _integral(frame[col]):
            problems.append(f"{col} has type {frame[col].dtype}, expected integer")
    if "ts" in frame.columns:
        dtype = frame["ts"].dtype
        if not (isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"):
            problems.append(f"ts has type {dtype}, expected UTC timestamp")
    return "; ".join(problems) or "ok"


@dataclass
class DayStats:
    ds: str
    schema: str
    impressions: int
    clicks: float
    max_user_impressions: float


def day_stats(ds: str, frame: pd.DataFrame, schema: str) -> DayStats:
    if schema != "ok" or frame.empty:
        return DayStats(ds, schema, len(frame), np.nan, np.nan)
    per_user = frame.groupby("user_id", dropna=True).size()
    return DayStats(ds, schema, len(frame), float(frame["click"].sum()),
                    float(per_user.max()) if len(per_user) else np.nan)
