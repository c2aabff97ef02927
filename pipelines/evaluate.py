"""Score the evaluation window ``[train_end, eval_end)`` and report AUC / GAUC / log loss per item bucket.

History for every impression = all events strictly before it. Writes ``paths.predictions``
(event_id, p_ctr, p_ctcvr), ``metrics/ranker.json`` (overall + new / young / long_tail /
popular; the oracle AUC beside each number on synthetic data; mean predicted vs observed CTR)
and the dvc plots ``plots/auc_by_bucket.{csv,json}``, ``plots/calibration.csv`` and
``plots/auc_by_bucket.png``.
"""

from __future__ import annotations

import json

import pandas as pd

from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.data.io import list_days, read_events, read_items, write_parquet
from saviorrec.metrics.ranking import BUCKETS, assign_buckets, clean, evaluate_predictions
from saviorrec.models.ranker_training import read_meta
from saviorrec.models.scoring import score_events
from saviorrec.workspace import StageError, Workspace, write_json


def auc_table(metrics: dict, variant: str) -> pd.DataFrame:
    rows = []
    for bucket in ("overall", *BUCKETS):
        m = metrics["overall"] if bucket == "overall" else metrics["buckets"][bucket]
        rows.append({"variant": variant, "bucket": bucket, "n": m["n"], "positives": m["positives"],
                     "ctr_auc": m["ctr_auc"], "ctr_oracle_auc": m.get("ctr_oracle_auc"), "ctcvr_auc": m.get("ctcvr_auc"),
                     "mean_p_ctr": m["mean_p_ctr"], "observed_ctr": m["observed_ctr"]})
    return pd.DataFrame(rows)


def plot_auc(table: pd.DataFrame, path) -> None:
    """Grouped bars: CTR AUC per bucket per variant (and the oracle when known)."""
    import matplotlib

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


def run(params: Params, ws: Workspace, **_: object) -> dict:
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
    write_parquet(preds, ws.path("predictions"))

    train_impressions = history["item_id"].value_counts() if history is not None else pd.Series(dtype=float)
    df = events.merge(preds, on="event_id", how="left", validate="one_to_one")
    df["bucket"] = assign_buckets(df, items, train_impressions, train_end, params.evaluate.young_days,
                                  params.evaluate.long_tail_max_impressions)
    metrics = clean(evaluate_predictions(df, params.evaluate.min_positives))
    metrics.update(variant=meta["variant"], train_end=str(train_end), eval_end=str(eval_end),
                   has_oracle="oracle_p_click" in events)
    write_json(ws.metrics_file("ranker"), metrics)

    plots = ws.path("plots")
    plots.mkdir(parents=True, exist_ok=True)
    table = auc_table(metrics, meta["variant"])
    table.to_csv(plots / "auc_by_bucket.csv", index=False)
    (plots / "auc_by_bucket.json").write_text(json.dumps(clean(table.to_dict(orient="records")), indent=2) + "\n")
    table[["bucket", "mean_p_ctr", "observed_ctr"]].to_csv(plots / "calibration.csv", index=False)
    plot_auc(table, plots / "auc_by_bucket.png")
    o = metrics["overall"]
    return {"variant": meta["variant"], "n": o["n"], "ctr_auc": o["ctr_auc"], "ctr_oracle_auc": o.get("ctr_oracle_auc"),
            "new_ctr_auc": metrics["buckets"]["new"]["ctr_auc"], "metrics": str(ws.metrics_file("ranker"))}


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, argv=argv)


if __name__ == "__main__":
    main()
