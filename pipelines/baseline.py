"""Train and score the plain-content baseline ranker (``baseline.variant``, default ``content_frozen``).

Same training (``ranker.*`` hyperparameters, days before ``split.train_end``; with
``ranker.warm_start`` it continues ``paths.baseline_seed`` as the candidate continues
``paths.ranker_seed``) and the same evaluation window as the candidate. Writes ``paths.baseline`` (the baseline ranker, same layout
as ``paths.ranker``), ``paths.baseline_predictions`` (event_id, p_ctr, p_ctcvr) and
``metrics/baseline.json`` (its headline numbers) and ``reports/details/baseline.json`` (the
whole evaluate report of the baseline, which evaluate's auc_by_bucket plot draws beside the candidate). ``validate_model`` compares
the candidate's new-item AUC with the baseline's. ``--ckpt-path last`` (what a retry passes)
resumes an interrupted fit from its last epoch checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from pipelines._common import add_ckpt_path_argument, stage_main
from saviorrec.baseline import baseline_workspace, train_and_score_baseline
from saviorrec.config import Params
from saviorrec.data.io import write_parquet
from saviorrec.evaluation import write_evaluation
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, ckpt_path: str | Path | None = None, **_: object) -> dict:
    result = train_and_score_baseline(params, ws, ckpt_path=ckpt_path)
    predictions = baseline_workspace(params, ws).path("predictions")
    write_parquet(result.evaluation.predictions, predictions)
    metrics = result.evaluation.metrics
    write_evaluation(ws, "baseline", result.evaluation)
    epoch_losses = result.training.get("epoch_losses") or []
    return {"variant": metrics["variant"], "n": metrics["overall"]["n"], "ctr_auc": metrics["overall"]["ctr_auc"],
            "new_ctr_auc": metrics["buckets"]["new"]["ctr_auc"], "final_loss": epoch_losses[-1] if epoch_losses else None,
            "samples": result.training.get("samples"), "resumed_from": result.training.get("resumed_from"),
            "predictions": str(predictions),
            "metrics": str(ws.metrics_file("baseline"))}


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, add_arguments=add_ckpt_path_argument, argv=argv)


if __name__ == "__main__":
    main()
