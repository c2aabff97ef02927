"""Evaluate the workspace's ranker on the evaluation window ``[train_end, eval_end)``.

History for every impression = all events strictly before it, replayed one day partition at a
time (:class:`~saviorrec.models.scoring.EvaluationWindow`: only the window's events are held in
memory). The result holds the predictions (event_id, p_ctr, p_ctcvr), the metrics (AUC / GAUC /
log loss overall and per item bucket, the oracle AUC beside each number on synthetic data, mean
predicted vs observed CTR), the per-bucket table and the reliability table (quantile bins of
pCTR) the plots are drawn from. :func:`write_evaluation` writes the headline numbers to
``metrics/<name>.json`` and the whole report to ``reports/details/<name>.json``;
:func:`write_plots` draws the candidate beside the baseline (when the baseline stage has run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from saviorrec.config import Params
from saviorrec.data.io import read_items
from saviorrec.metrics.ranking import BUCKETS, assign_buckets, clean, evaluate_predictions
from saviorrec.metrics.stage_reports import details_file, write_stage_report
from saviorrec.models.ranker_artifacts import read_meta
from saviorrec.models.scoring import read_window
from saviorrec.workspace import StageError, Workspace


@dataclass(frozen=True)
class RankerEvaluation:
    predictions: pd.DataFrame  # event_id, p_ctr, p_ctcvr per evaluation event
    metrics: dict[str, Any]    # the whole report (reports/details/<name>.json); headline in metrics/<name>.json
    table: pd.DataFrame        # one row per bucket (auc_table): the plots' data
    calibration: pd.DataFrame  # quantile bins of p_ctr (calibration_table): the reliability diagram


def evaluate_ranker(params: Params, ws: Workspace) -> RankerEvaluation:
    """Score the evaluation window with ``ws``'s ranker and measure it per item bucket."""
    train_end, eval_end = ws.split()
    meta = read_meta(ws.path("ranker"))
    if meta is None:
        raise StageError(f"no ranker at {ws.path('ranker')}: run train_ranker first")
    window = read_window(ws)
    items = read_items(ws.path("items"))
    preds = window.score(ws, items)

    df = window.events.merge(preds, on="event_id", how="left", validate="one_to_one")
    df["bucket"] = assign_buckets(df, items, window.train_impressions, train_end, params.evaluate.young_days,
                                  params.evaluate.long_tail_share)
    metrics = clean(evaluate_predictions(df, params.evaluate.min_positives))
    metrics.update(variant=meta["variant"], train_end=str(train_end), eval_end=str(eval_end),
                   has_oracle="oracle_p_click" in window.events)
    return RankerEvaluation(preds, metrics, auc_table(metrics, meta["variant"]), calibration_table(df))


CALIBRATION_BINS = 20
CALIBRATION_MIN_ROWS = 50  # per bin: fewer bins on a small window, so each point is still a rate


def calibration_table(df: pd.DataFrame, bins: int = CALIBRATION_BINS, min_rows: int = CALIBRATION_MIN_ROWS) -> pd.DataFrame:
    """Reliability diagram: impressions in equal-count bins of p_ctr (up to ``bins``, at least
    ``min_rows`` each), with the bin's mean prediction, observed CTR and count."""
    scored = df[["p_ctr", "click"]].dropna()
    q = int(min(bins, max(1, len(scored) // min_rows)))
    if scored.empty:
        return pd.DataFrame(columns=["bin", "n", "clicks", "mean_p_ctr", "observed_ctr"])
    ranks = scored["p_ctr"].rank(method="first")  # equal counts even when many scores tie
    group = pd.qcut(ranks, q, labels=False)
    table = scored.groupby(group).agg(n=("click", "size"), clicks=("click", "sum"),
                                      mean_p_ctr=("p_ctr", "mean"), observed_ctr=("click", "mean"))
    return table.rename_axis("bin").reset_index().astype({"bin": int, "n": int, "clicks": int})


def write_evaluation(ws: Workspace, name: str, result: RankerEvaluation) -> dict[str, Any]:
    """``metrics/<name>.json`` (headline numbers) and ``reports/details/<name>.json`` (everything)."""
    return write_stage_report(ws.metrics_file(name), ws.path("reports"), name, clean(result.metrics))


def baseline_table(ws: Workspace) -> pd.DataFrame | None:
    """The baseline stage's per-bucket table, from its report, when it has run."""
    path = details_file(ws.path("reports"), "baseline")
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    return auc_table(report, f"{report.get('variant', '?')} (baseline)")


def write_plots(ws: Workspace, result: RankerEvaluation) -> None:
    """``plots/``: auc_by_bucket.{csv,json,png} (candidate beside the baseline, n per bucket) and
    calibration.csv (the reliability diagram)."""
    plots = ws.path("plots")
    plots.mkdir(parents=True, exist_ok=True)
    baseline = baseline_table(ws)
    table = pd.concat([result.table, baseline], ignore_index=True) if baseline is not None else result.table
    table = table.assign(label=[bar_label(r) for r in table.itertuples()])
    table.to_csv(plots / "auc_by_bucket.csv", index=False)
    (plots / "auc_by_bucket.json").write_text(json.dumps(clean(table.to_dict(orient="records")), indent=2) + "\n")
    result.calibration.to_csv(plots / "calibration.csv", index=False)
    plot_auc(table, plots / "auc_by_bucket.png", baseline_missing=baseline is None)


def bar_label(row: Any) -> str:
    """One bar of DVC's horizontal bar chart: bucket, n and variant ("new (n=194) saviorrec")."""
    state = "" if pd.notna(row.ctr_auc) else (", empty" if row.n == 0 else ", AUC undefined")
    return f"{row.bucket} (n={row.n}{state}) {row.variant}"


def auc_table(metrics: dict, variant: str) -> pd.DataFrame:
    """One row per bucket (``overall`` first): counts, CTR / CTCVR AUC, oracle AUC, calibration."""
    rows = []
    for bucket in ("overall", *BUCKETS):
        m = metrics["overall"] if bucket == "overall" else metrics["buckets"][bucket]
        rows.append({"variant": variant, "bucket": bucket, "n": m["n"], "positives": m["positives"],
                     "ctr_auc": m["ctr_auc"], "ctr_oracle_auc": m.get("ctr_oracle_auc"), "ctcvr_auc": m.get("ctcvr_auc"),
                     "mean_p_ctr": m["mean_p_ctr"], "observed_ctr": m["observed_ctr"]})
    return pd.DataFrame(rows)


def plot_auc(table: pd.DataFrame, path: str | Path, baseline_missing: bool = False) -> None:
    """Save :func:`auc_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = auc_figure(table, baseline_missing)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def auc_figure(table: pd.DataFrame, baseline_missing: bool = False):
    """Grouped bars: CTR AUC per bucket per variant (and the oracle when known); each bucket's
    label carries its impressions (n) and says when the bucket is empty or its AUC undefined."""
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
    first = table.drop_duplicates("bucket").set_index("bucket")
    labels = []
    for b in buckets:
        n = int(first.loc[b, "n"])
        labels.append(f"{b}\nn={n:,}" + ("\n(empty)" if n == 0 else "" if pd.notna(first.loc[b, "ctr_auc"]) else "\n(AUC undefined)"))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(buckets))], labels)
    ax.set_ylim(0.45, 1.0)
    ax.set_ylabel("CTR AUC (no bar = undefined)")
    ax.set_title("CTR AUC per item bucket" + (" (baseline not run yet)" if baseline_missing else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
