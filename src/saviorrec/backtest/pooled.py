"""AUC over every step's evaluated impressions together, per variant and item bucket.

A month of a sparse real log holds a few dozen ratings of new items (MovieLens 2012-2014: 3-48),
too few for that month's new-item AUC to mean much; a month whose new-item ratings are all likes
has none at all. Two numbers use every step's impressions at once:

- ``pooled``: one AUC over all impressions, scored by each step's own ranker. Pairs from two steps
  are compared too, so it also rewards scores that stay calibrated from step to step.
- ``within_step``: only pairs of the same step compared (the steps' AUCs weighted by their
  positive x negative pair counts): ranking alone, the per-step AUC without the small-step noise.

Each step's rows are bucketed exactly as its evaluate stage buckets them
(:func:`~saviorrec.metrics.ranking.assign_buckets` on the step's own window).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from saviorrec.backtest.plan import variant_overrides
from saviorrec.data import io
from saviorrec.data.io import read_items
from saviorrec.metrics.ranking import BUCKETS, assign_buckets, auc, clean, evaluate_predictions
from saviorrec.models.scoring import read_window
from saviorrec.workspace import Workspace

SCORED_COLUMNS = ["event_id", "user_id", "click", "conversion", "oracle_p_click", "oracle_p_conversion", "bucket"]


def bucketed_window(ws: Workspace) -> pd.DataFrame:
    """The step's evaluation impressions (the columns the metrics read) with the evaluate stage's
    item bucket of each."""
    train_end, _ = ws.split()
    window = read_window(ws)
    items = read_items(ws.path("items"))
    events = window.events.assign(bucket=assign_buckets(
        window.events, items, window.train_impressions, train_end, ws.params.evaluate.young_days,
        ws.params.evaluate.long_tail_share))
    return events[[c for c in SCORED_COLUMNS if c in events]]


def within_step_auc(steps: list[pd.DataFrame], min_positives: int = 1) -> float | None:
    """Mean of the steps' AUCs weighted by positives x negatives: the AUC over same-step pairs only."""
    pairs = wins = 0.0
    for frame in steps:
        value, _ = auc(frame["click"].to_numpy(float), frame["p_ctr"].to_numpy(float), min_positives)
        if value is not None:
            positives = int(frame["click"].sum())
            weight = positives * (len(frame) - positives)
            pairs, wins = pairs + weight, wins + value * weight
    return wins / pairs if pairs else None


def pooled_metrics(root: Path, rows: list[dict]) -> tuple[dict[str, dict], list[str]]:
    """(variant -> ``{"overall": ..., "buckets": {bucket: ...}}`` in the evaluate report's shape, each
    slice with ``within_step_auc`` added; the steps left out because their files are gone)."""
    frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
    missing: list[str] = []
    min_positives = 1
    for key in dict.fromkeys(row["key"] for row in rows):
        folder = root / "steps" / key
        try:
            step_ws = Workspace.open(folder)
            min_positives = step_ws.params.evaluate.min_positives
            window = bucketed_window(step_ws)
            scored = {}
            for variant in (row["variant"] for row in rows if row["key"] == key):
                predictions = Workspace.open(folder, overrides=variant_overrides(variant)).path("predictions")
                scores = io.read_parquet(predictions, columns=["event_id", "p_ctr", "p_ctcvr"])
                scored[variant] = window.merge(scores, on="event_id", how="left", validate="one_to_one")
        except (FileNotFoundError, OSError):  # a pruned step folder: report the others, name it
            missing.append(key)
            continue
        for variant, frame in scored.items():
            frames[variant].append(frame)
    report = {}
    for variant, parts in frames.items():
        metrics = clean(evaluate_predictions(pd.concat(parts, ignore_index=True), min_positives))
        metrics["overall"]["within_step_auc"] = within_step_auc(parts, min_positives)
        for bucket in BUCKETS:
            metrics["buckets"][bucket]["within_step_auc"] = within_step_auc(
                [p[p["bucket"] == bucket] for p in parts], min_positives)
        report[variant] = metrics
    return report, missing
