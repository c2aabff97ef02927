"""AUC over every step's evaluated impressions pooled, per variant and item bucket.

A month of a sparse real log holds a few dozen ratings of new items (MovieLens 2012-2014: 0-100),
too few for that month's new-item AUC to mean much; a month with no new-item rating has none at
all. Pooling the steps' scored impressions gives one number per variant from all of them. Each
step's rows are scored by that step's ranker and bucketed exactly as the evaluate stage buckets
them (:func:`~saviorrec.metrics.ranking.assign_buckets` on the step's own window).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from saviorrec.backtest.plan import variant_overrides
from saviorrec.data import io
from saviorrec.data.io import read_items
from saviorrec.metrics.ranking import assign_buckets, clean, evaluate_predictions
from saviorrec.models.scoring import read_window
from saviorrec.workspace import Workspace


def bucketed_window(ws: Workspace) -> pd.DataFrame:
    """The step's evaluation impressions with the evaluate stage's item bucket of each."""
    train_end, _ = ws.split()
    window = read_window(ws)
    items = read_items(ws.path("items"))
    events = window.events.copy()
    events["bucket"] = assign_buckets(events, items, window.train_impressions, train_end,
                                      ws.params.evaluate.young_days, ws.params.evaluate.long_tail_share)
    return events


def pooled_metrics(root: Path, rows: list[dict]) -> dict[str, dict]:
    """variant -> ``{"overall": ..., "buckets": {bucket: ...}}`` (the evaluate report's shape) over
    the impressions of every step in ``rows`` (one row per step and variant)."""
    frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
    min_positives = 1
    for key in dict.fromkeys(row["key"] for row in rows):
        folder = root / "steps" / key
        step_ws = Workspace.open(folder)
        min_positives = step_ws.params.evaluate.min_positives
        window = bucketed_window(step_ws)
        for variant in (row["variant"] for row in rows if row["key"] == key):
            variant_ws = Workspace.open(folder, overrides=variant_overrides(variant))
            scores = io.read_parquet(variant_ws.path("predictions"), columns=["event_id", "p_ctr", "p_ctcvr"])
            frames[variant].append(window.merge(scores, on="event_id", how="inner", validate="one_to_one"))
    return {variant: clean(evaluate_predictions(pd.concat(parts, ignore_index=True), min_positives))
            for variant, parts in frames.items()}
