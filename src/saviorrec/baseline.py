"""The plain-content baseline: a cheap ranker trained and scored beside the candidate every run.

``validate_model`` refuses a candidate whose new-item CTR AUC is below the baseline's on the
same events by more than ``checks.model.baseline_new_auc_tolerance``. The baseline is the same
:func:`~saviorrec.models.ranker_training.train_ranker` and
:func:`~saviorrec.evaluation.evaluate_ranker` as the candidate, run in a view of the workspace
whose ranker is ``baseline.variant`` (default ``content_frozen``: plain MiniLM text vectors, no
encoder, no SIDs) stored at ``paths.baseline``, so the candidate's ranker, predictions, metrics
and plots are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saviorrec.config import Params
from saviorrec.evaluation import RankerEvaluation, evaluate_ranker
from saviorrec.models.ranker_training import train_ranker
from saviorrec.workspace import Workspace


@dataclass(frozen=True)
class BaselineRun:
    training: dict[str, Any]       # train_ranker's summary (the loss curve included)
    evaluation: RankerEvaluation   # predictions, metrics and per-bucket table on the evaluation window


def baseline_params(params: Params) -> Params:
    """``params`` as the baseline sees them: ``ranker.variant`` = ``baseline.variant``, and its
    ranker folder, predictions and warm-start seed at ``paths.baseline`` /
    ``paths.baseline_predictions`` / ``paths.baseline_seed``."""
    paths = params.paths.model_copy(update={"ranker": params.paths.baseline,
                                            "predictions": params.paths.baseline_predictions,
                                            "ranker_seed": params.paths.baseline_seed})
    ranker = params.ranker.model_copy(update={"variant": params.baseline.variant})
    return params.model_copy(update={"paths": paths, "ranker": ranker})


def baseline_workspace(params: Params, ws: Workspace) -> Workspace:
    """The same workspace root, seen through :func:`baseline_params`."""
    return Workspace(ws.root, baseline_params(params))


def train_and_score_baseline(params: Params, ws: Workspace, ckpt_path: str | Path | None = None) -> BaselineRun:
    """Train ``baseline.variant`` on days < train_end (into ``paths.baseline``; with
    ``ranker.warm_start``, only the days after its seed in ``paths.baseline_seed``, as the
    candidate) and score the evaluation window with it. ``ckpt_path="last"`` resumes an interrupted fit (a retry)."""
    bws = baseline_workspace(params, ws)
    training = train_ranker(bws.params, bws, ckpt_path=ckpt_path)
    return BaselineRun(training, evaluate_ranker(bws.params, bws))
