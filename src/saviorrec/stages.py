"""The one registry of pipeline stages, and the one way to run a stage.

Stage entry points live in the repository's ``pipelines/`` package (``dvc.yaml`` calls them as
``python -m pipelines.<stage>``); the library loads them by name here and never imports them
otherwise. Airflow tasks, the CLI, the benches and the tests all call :func:`run_stage`.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from saviorrec.workspace import Workspace

log = logging.getLogger("saviorrec.stages")

# name -> one line of help, in pipeline order
STAGES: dict[str, str] = {
    "ingest": "Write the behavior log and item catalog (synthetic, MovieLens or Parquet source).",
    "validate_logs": "Great Expectations gate on the behavior log and catalog.",
    "train_encoder": "Train SaviorEnc (behavior-aware multimodal encoder); write z per item.",
    "build_codebook": "Train the RQ-VAE codebook; write semantic IDs and codebook metrics.",
    "validate_sids": "Gate on SID coverage, collisions, utilization and churn.",
    "train_ranker": "Train the CTR/CTCVR ranker (MBA + bi-directional attention) with Lightning.",
    "evaluate": "AUC/GAUC/log loss overall and per item bucket on the evaluation window.",
    "baseline": "Train and score the plain-content baseline ranker (baseline.variant, default content_frozen) on the evaluation window.",
    "validate_model": "Gate the new ranker against the production model and the baseline on the same window.",
    "promote": "Register the bundle and move the production pointer (only after every gate).",
}

# Training stages keep Lightning's per-epoch ``last.ckpt``; a retry resumes from it.
RESUMABLE = ("train_encoder", "build_codebook", "train_ranker", "baseline")


def stage_module(name: str) -> ModuleType:
    """The entry-point module of stage ``name`` (``pipelines.<name>``)."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}")
    return importlib.import_module(f"pipelines.{name}")


def resume_options(name: str, try_number: int) -> dict[str, Any]:
    """What makes a retried training stage continue from its last epoch (nothing on try 1,
    so a fresh run never picks up a stale checkpoint). Lightning's ``ckpt_path="last"`` finds
    the checkpoint, and starts fresh when the killed try left none."""
    return {"ckpt_path": "last"} if try_number > 1 and name in RESUMABLE else {}


def run_stage(name: str, ws: Workspace, *, try_number: int = 1, **options: Any) -> dict:
    """Run stage ``name`` in workspace ``ws``; returns its JSON-able summary."""
    options = {**resume_options(name, try_number), **options}
    if options:
        log.info("%s: try %d runs with %s", name, try_number, options)
    return stage_module(name).run(ws.params, ws, **options) or {}
