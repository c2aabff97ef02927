"""Ingest: write the behavior log (day partitions) and the item catalog into a workspace.

Sources (params ``data:``): the embedded synthetic marketplace, a MovieLens CSV folder, or a
Parquet folder already in the data contract (``events/ds=*/...`` + ``items.parquet``, local or
s3://). Every day is checked against the contract; output is written to a staging folder and
swapped in at the end, so a failed ingest leaves the previous data intact.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from saviorrec.config import Params
from saviorrec.data import io
from saviorrec.data.contract import validate_events, validate_items
from saviorrec.storage.filesystem import join
from saviorrec.workspace import StageError, Workspace

log = logging.getLogger("saviorrec.ingest")


def _staging(path: Path) -> Path:
    staged = path.with_name(path.name + ".staging")
    if staged.is_dir():
        shutil.rmtree(staged)
    elif staged.exists():
        staged.unlink()
    return staged


def _swap_in(staged: Path, final: Path) -> None:
    if final.is_dir():
        shutil.rmtree(final)
    elif final.exists():
        final.unlink()
    if staged.exists():
        staged.replace(final)


def _tags_cutoff(params: Params) -> dt.date | None:
    # With split.train_end null the last day is evaluated; the adapter then drops tags from
    # that day onwards by itself (it cannot know the last day before reading the ratings).
    return params.split.train_end


def _ingest_synthetic(params: Params, events: Path, items: Path, images: Path) -> dict:
    from saviorrec.data import synthetic

    cfg = params.synthetic
    summary = synthetic.generate(cfg, params.seed, events, items, images if cfg.images else None)
    catalog = io.read_items(items)
    validate_items(catalog)
    for day in io.list_days(events):
        validate_events(io.read_event_day(events, day), catalog, str(day))
    return summary


def _ingest_movielens(params: Params, source: str, events: Path, items: Path) -> dict:
    from saviorrec.data.movielens import load_movielens

    if str(source).startswith("s3://"):
        raise StageError("the MovieLens source reads a local CSV folder; sync it from S3 first")
    cutoff = _tags_cutoff(params)
    data = load_movielens(source, params.movielens, tags_before=cutoff, seed=params.seed)
    if cutoff is None:  # last day evaluated: tags must predate it
        last_day = data.events["ts"].max().date()
        data = load_movielens(source, params.movielens, tags_before=last_day, seed=params.seed)
    validate_items(data.items)
    validate_events(data.events, data.items)
    io.write_items(data.items, items)
    io.write_events(data.events, events)
    return {"clicks": int(data.events["click"].sum())}


def _ingest_parquet(source: str, events: Path, items: Path) -> dict:
    catalog = io.read_items(join(source, "items.parquet"))
    validate_items(catalog)
    io.write_items(catalog, items)
    clicks = 0
    for day, frame in io.iter_event_days(join(source, "events")):
        validate_events(frame, catalog, str(day))
        io.write_event_day(frame, events, day)
        clicks += int(frame["click"].sum())
    return {"clicks": clicks}


def ingest(params: Params, ws: Workspace, source: str | None = None, path: str | None = None,
           out: str | None = None) -> dict:
    """Write the chosen source's events and catalog into ``ws`` (or ``out``); a summary of what was written."""
    source = source or params.data.source
    src_path = path or params.data.path
    if out:
        events, items, images = Path(out) / "events", Path(out) / "items.parquet", Path(out) / "images"
    else:
        events, items, images = ws.path("events"), ws.path("items"), ws.path("images")
    if source != "synthetic" and not str(src_path).startswith("s3://"):
        src_path = str((ws.root / src_path).resolve()) if not Path(src_path).is_absolute() else src_path
        if not Path(src_path).exists():
            raise StageError(f"data source folder not found: {src_path} (set data.path in params.yaml or --path)")

    staged = {name: _staging(p) for name, p in (("events", events), ("items", items), ("images", images))}
    if source == "synthetic":
        extra = _ingest_synthetic(params, staged["events"], staged["items"], staged["images"])
    elif source == "movielens":
        extra = _ingest_movielens(params, src_path, staged["events"], staged["items"])
    elif source == "parquet":
        extra = _ingest_parquet(src_path, staged["events"], staged["items"])
    else:
        raise StageError(f"data.source: unknown source {source!r}; use synthetic, movielens or parquet")

    for name, final in (("events", events), ("items", items), ("images", images)):
        _swap_in(staged[name], final)
    images.mkdir(parents=True, exist_ok=True)  # a declared DVC output even for sources without images

    days = io.list_days(events)
    n_rows = io.count_events(events)
    n_items = len(io.read_items(items))
    summary = {"source": source, "impressions": n_rows, "items": n_items, "days": len(days),
               "first_day": str(days[0]) if days else None, "last_day": str(days[-1]) if days else None,
               "events": str(events), "items_path": str(items), **extra}
    log.info("ingest wrote %d impressions over %d days and %d items to %s", n_rows, len(days), n_items, events.parent)
    print(f"ingest: wrote {n_rows:,} impressions ({len(days)} days) and {n_items:,} items from {source}")
    return summary
