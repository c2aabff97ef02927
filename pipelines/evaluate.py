"""Score the evaluation window ``[train_end, eval_end)`` and report AUC / GAUC / log loss per item bucket.

History for every impression = all events strictly before it. Writes ``paths.predictions``
(event_id, p_ctr, p_ctcvr), ``metrics/ranker.json`` (overall + new / young / long_tail /
popular; the oracle AUC beside each number on synthetic data; mean predicted vs observed CTR)
and the dvc plots ``plots/auc_by_bucket.{csv,json}``, ``plots/calibration.csv`` and
``plots/auc_by_bucket.png``.
"""

from __future__ import annotations

import json

from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.data.io import write_parquet
from saviorrec.evaluation import evaluate_ranker, plot_auc
from saviorrec.metrics.ranking import clean
from saviorrec.workspace import Workspace, write_json


def run(params: Params, ws: Workspace, **_: object) -> dict:
    result = evaluate_ranker(params, ws)
    write_parquet(result.predictions, ws.path("predictions"))
    metrics = result.metrics
    write_json(ws.metrics_file("ranker"), metrics)

    plots = ws.path("plots")
    plots.mkdir(parents=True, exist_ok=True)
    table = result.table
    table.to_csv(plots / "auc_by_bucket.csv", index=False)
    (plots / "auc_by_bucket.json").write_text(json.dumps(clean(table.to_dict(orient="records")), indent=2) + "\n")
    table[["bucket", "mean_p_ctr", "observed_ctr"]].to_csv(plots / "calibration.csv", index=False)
    plot_auc(table, plots / "auc_by_bucket.png")
    o = metrics["overall"]
    return {"variant": metrics["variant"], "n": o["n"], "ctr_auc": o["ctr_auc"], "ctr_oracle_auc": o.get("ctr_oracle_auc"),
            "new_ctr_auc": metrics["buckets"]["new"]["ctr_auc"], "metrics": str(ws.metrics_file("ranker"))}


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, argv=argv)


if __name__ == "__main__":
    main()
