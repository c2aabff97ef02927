"""Score the evaluation window ``[train_end, eval_end)`` and report AUC / GAUC / log loss per item bucket.

History for every impression = all events strictly before it. Writes ``paths.predictions``
(event_id, p_ctr, p_ctcvr), ``metrics/ranker.json`` (headline: AUC overall and per bucket,
calibration), ``reports/details/ranker.json`` (every number of overall + new / young / long_tail /
popular; the oracle AUC beside each on synthetic data; the window and variant) and the dvc plots
``plots/auc_by_bucket.{csv,json,png}`` (beside the baseline's, read from its report) and
``plots/calibration.csv`` (reliability diagram).
"""

from __future__ import annotations

from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.data.io import write_parquet
from saviorrec.evaluation import evaluate_ranker, write_evaluation, write_plots
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, **_: object) -> dict:
    result = evaluate_ranker(params, ws)
    write_parquet(result.predictions, ws.path("predictions"))
    write_evaluation(ws, "ranker", result)
    write_plots(ws, result)
    metrics = result.metrics
    o = metrics["overall"]
    return {"variant": metrics["variant"], "n": o["n"], "ctr_auc": o["ctr_auc"], "ctr_oracle_auc": o.get("ctr_oracle_auc"),
            "new_ctr_auc": metrics["buckets"]["new"]["ctr_auc"], "metrics": str(ws.metrics_file("ranker"))}


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, argv=argv)


if __name__ == "__main__":
    main()
