"""Evaluate the workspace's ranker on the evaluation window ``[train_end, eval_end)``.

History for every impression = all events strictly before it. The result holds the
predictions (event_id, p_ctr, p_ctcvr), the metrics (AUC / GAUC / log loss overall and per
item bucket, the oracle AUC beside each number on synthetic data, mean predicted vs observed
CTR) and the per-bucket table that the plots are drawn from (:func:`plot_auc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from saviorrec.config import Params
from saviorrec.data.io import list_days, read_events, read_items
from saviorrec.metrics.ranking import BUCKETS, assign_buckets, clean, evaluate_predictions
from saviorrec.models.ranker_artifacts import read_meta
from saviorrec.models.scoring import score_events
from saviorrec.workspace import StageError, Workspace


@dataclass(frozen=True)
class RankerEvaluation:
    predictions: pd.DataFrame  # event_id, p_ctr, p_ctcvr per evaluation event
    metrics: dict[str, Any]    # the metrics/ranker.json body
    table: pd.DataFrame        # one row per bucket (auc_table): the plots' data


def evaluate_ranker(params: Params, ws: Workspace) -> RankerEvaluation:
    """Score the evaluation window with ``ws``'s ranker and measure it per item bucket."""
    train_end, eval_end = ws.split()
    meta = read_meta(ws.path("ranker"))
    if meta is None:
        raise StageError(f"no ranker at {ws.path('ranker')}: run train_ranker first")
    days = list_days(ws.path("events"))
    if not any(train_end <= d < eval_end for d in days):
        raise StageError(f"no events in the evaluation window [{train_end}, {eval_end}) under {ws.path('events')}")
    items = read_items(ws.path("items"))
    history = read_events(ws.path("events"), end=train_end) if any(d < train_end for d in days) else None
    events = read_events(ws.path("events"), start=train_end, end=eval_end)
    preds = score_events(ws, events, history, items)

    train_impressions = history["item_id"].value_counts() if history is not None else pd.Series(dtype=float)
    df = events.merge(preds, on="event_id", how="left", validate="one_to_one")
    df["bucket"] = assign_buckets(df, items, train_impressions, train_end, params.evaluate.young_days,
                                  params.evaluate.long_tail_max_impressions)
    metrics = clean(evaluate_predictions(df, params.evaluate.min_positives))
    metrics.update(variant=meta["variant"], train_end=str(train_end), eval_end=str(eval_end),
                   has_oracle="oracle_p_click" in events)
    return RankerEvaluation(preds, metrics, auc_table(metrics, meta["variant"]))


def auc_table(metrics: dict, variant: str) -> pd.DataFrame:
    """One row per bucket (``overall`` first): counts, CTR / CTCVR AUC, oracle AUC, calibration."""
    rows = []
    for bucket in ("overall", *BUCKETS):
        m = metrics["overall"] if bucket == "overall" else metrics["buckets"][bucket]
        rows.append({"variant": variant, "bucket": bucket, "n": m["n"], "positives": m["positives"],
                     "ctr_auc": m["ctr_auc"], "ctr_oracle_auc": m.get("ctr_oracle_auc"), "ctcvr_auc": m.get("ctcvr_auc"),
                     "mean_p_ctr": m["mean_p_ctr"], "observed_ctr": m["observed_ctr"]})
    return pd.DataFrame(rows)


def plot_auc(table: pd.DataFrame, path: str | Path) -> None:
    """Grouped bars: CTR AUC per bucket per variant (and the oracle when known)."""
    import matplotlib  # only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = [b for b in ("overall", *BUCKETS) if b in set(table["bucket"])]
    series = {v: g.set_index("bucket")["ctr_auc"] for v, g in table.groupby("variant", sort=False)}
    oracle = table.groupby("bucket", sort=False)["ctr_oracle_auc"].first()
    if oracle.notna().any():
        series["oracle"] = oracle
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        heights = [float(values.get(b)) if pd.notna(values.get(b)) else 0.0 for b in buckets]
        ax.bar([j + i * width for j in range(len(buckets))], heights, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(buckets))], buckets)
    ax.set_ylim(0.45, 1.0)
    ax.set_ylabel("CTR AUC (no bar = undefined)")
    ax.set_title("CTR AUC per item bucket")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
