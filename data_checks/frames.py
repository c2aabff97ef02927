"""Tolerant readers: load what arrived, even when it breaks the contract, so gates can report it.

``saviorrec.data.io`` normalizes types on read (and must: stages rely on them), which turns
a missing column into a KeyError and a null id into a cast error. Gates need the raw data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saviorrec.data import io
from saviorrec.data.contract import EVENT_COLUMNS, EVENTS_SCHEMA, event_schema_drift


def read_raw_day(root: str | Path, day) -> pd.DataFrame:
    """Every part of one day partition as written (no casts); 0 rows if the folder is empty."""
    frames = [io.read_parquet(part) for part in io.day_parts(root, day)]
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame({col: pd.Series(dtype="float64") for col in EVENT_COLUMNS})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def schema_problems(frame: pd.DataFrame) -> str:
    """'ok', or a readable list of missing columns and wrong types (schema drift)."""
    missing, wrong_types = event_schema_drift(frame)
    problems = []
    if missing:
        extra = [c for c in frame.columns if c not in EVENTS_SCHEMA.columns and c != "ds"]
        problems.append(f"missing column(s) {', '.join(missing)}" + (f" (found {', '.join(extra)})" if extra else ""))
    problems += [f"{col} has type {frame[col].dtype}: {rule}" for col, rule in wrong_types.items()]
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
