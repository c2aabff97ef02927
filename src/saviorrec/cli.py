"""The `saviorrec` command: pipeline stages, the model registry, scoring and SID assignment.

    saviorrec --help
    saviorrec ingest --set preset=tiny
    saviorrec train-ranker --workdir runs/2024-01-30
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="SaviorRec cold-start CTR pipeline. Stages run exactly as `dvc repro` and Airflow run them.",
    no_args_is_help=True,
    add_completion=False,
)

_STAGE_HELP = {
    "ingest": "Write the behavior log and item catalog (synthetic, MovieLens or Parquet source).",
    "validate_logs": "Great Expectations gate on the behavior log and catalog.",
    "train_encoder": "Train SaviorEnc (behavior-aware multimodal encoder); write z per item.",
    "build_codebook": "Train the RQ-VAE codebook; write semantic IDs and codebook metrics.",
    "validate_sids": "Gate on SID coverage, collisions, utilization and churn.",
    "train_ranker": "Train the CTR/CTCVR ranker (MBA + bi-directional attention) with Lightning.",
    "evaluate": "AUC/GAUC/log loss overall and per item bucket on the evaluation window.",
    "validate_model": "Gate the new ranker against the production model on the same window.",
    "promote": "Register the bundle and move the production pointer (only after every gate).",
}


def _stage_command(stage: str):
    def command(ctx: typer.Context) -> None:
        module = importlib.import_module(f"pipelines.{stage}")
        module.main(list(ctx.args))

    command.__doc__ = _STAGE_HELP[stage] + " Flags: --params, --workdir, --set KEY=VALUE."
    return command


for _stage in _STAGE_HELP:
    app.command(
        name=_stage.replace("_", "-"),
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        rich_help_panel="Pipeline stages",
    )(_stage_command(_stage))


if __name__ == "__main__":
    app()
