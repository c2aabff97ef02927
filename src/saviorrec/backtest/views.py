"""What a step's workspace sees: the data the DAG's run for that day (or month) would have had.

Daily steps (synthetic): the synthetic world is keyed on the day index from
``synthetic.start_date``, so the DAG's per-day regeneration gives every day the same world
relabeled, never the world's next day. A backtest therefore generates ONE world long enough for
every step (the real ``ingest`` stage, run once in ``<root>/world``) and gives each step:

- the last ``synthetic.n_days`` day partitions ending on its evaluation day, as **hard links**
  to the world's files (no copy, nothing parsed; the oracle columns survive, so the oracle AUC is
  reported; ingest writes files atomically, so a linked file never changes under a step);
- the catalog restricted to items first seen on or before the evaluation day (a new file);
- the world's pictures (a symlink: read only, by image_ref).

Links beat the ``parquet`` source here: that source would copy and re-validate every partition of
the world for every step and still needs a per-step folder holding only the step's days.

Monthly steps (MovieLens) run the real ``ingest`` stage in the step's workspace instead: the
MovieLens adapter cuts the log at ``movielens.until`` (the month's end) and builds item
descriptions only from tags before ``split.train_end`` (the month's start), so a step can never
see a later month's tags through a shared world. Its catalog is then cut like a daily one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pandas as pd

from saviorrec.backtest.plan import Step
from saviorrec.data import io
from saviorrec.stages import run_stage
from saviorrec.workspace import Workspace


def _link_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system: a copy is as good, only slower
        shutil.copy2(src, dst)


def link_days(world: Workspace, ws: Workspace, first: dt.date, last: dt.date) -> list[dt.date]:
    """Hard-link the world's day partitions ``first..last`` into ``ws``; returns the days linked."""
    src_root, dst_root = world.path("events"), ws.path("events")
    days = [day for day in world.data_days() if first <= day <= last]
    for day in days:
        folder = src_root / f"ds={day}"
        for part in sorted(folder.iterdir()):
            _link_file(part, dst_root / folder.name / part.name)
    return days


def restrict_catalog(items: pd.DataFrame, eval_end: dt.date) -> pd.DataFrame:
    """Items listed before ``eval_end`` (on or before the last evaluated day)."""
    return items[items["first_seen"] < pd.Timestamp(eval_end)].reset_index(drop=True)


def daily_view(world: Workspace, ws: Workspace, step: Step) -> dict:
    days = link_days(world, ws, step.first_day, step.eval_start)
    items = restrict_catalog(io.read_items(world.path("items")), step.eval_end)
    io.write_items(items, ws.path("items"))
    images = ws.path("images")
    if world.path("images").is_dir() and not images.exists():
        images.parent.mkdir(parents=True, exist_ok=True)
        images.symlink_to(world.path("images"), target_is_directory=True)
    return {"days": len(days), "first_day": str(days[0]), "last_day": str(days[-1]), "items": len(items)}


def monthly_view(ws: Workspace, step: Step) -> dict:
    summary = run_stage("ingest", ws)
    items = restrict_catalog(io.read_items(ws.path("items")), step.eval_end)
    io.write_items(items, ws.path("items"))
    return {"days": summary["days"], "first_day": summary["first_day"], "last_day": summary["last_day"],
            "items": len(items)}
