"""The baseline stage: the plain-content ranker trained and scored beside the candidate, in its own files."""
# ruff: noqa: F811  (session fixtures imported from ranker_helpers are used as arguments)

from __future__ import annotations

import json

import pytest
import torch
from ranker_helpers import copy_tree, open_workspace, ranker_upstream, trained_saviorrec  # noqa: F401
from training_faults import trainer_crashing_at

from saviorrec.data.io import read_parquet
from saviorrec.metrics.stage_reports import details_file
from saviorrec.models.ranker_artifacts import read_meta
from saviorrec.stages import run_stage
from saviorrec.workspace import StageError


def _candidate_files(ws) -> dict[str, bytes]:
    """Every file the candidate's train_ranker / evaluate wrote, by path."""
    paths = [*ws.path("ranker").rglob("*"), ws.path("predictions"), ws.metrics_file("ranker"), *ws.path("plots").glob("*")]
    return {str(p): p.read_bytes() for p in paths if p.is_file()}


def test_baseline_stage_scores_the_window_beside_the_candidate(trained_saviorrec, tmp_path):
    root = copy_tree(trained_saviorrec, tmp_path / "ws")
    params, ws = open_workspace(root)
    assert params.baseline.variant == "content_frozen" and params.ranker.variant == "saviorrec"
    run_stage("evaluate", ws)
    with pytest.raises(StageError, match="run the baseline stage first"):  # the gate needs the baseline
        run_stage("validate_model", ws)
    candidate = _candidate_files(ws)

    summary = run_stage("baseline", ws)
    assert summary["variant"] == "content_frozen" and summary["samples"] > 0 and summary["resumed_from"] is None
    assert read_meta(ws.path("baseline"))["variant"] == "content_frozen"
    assert (ws.path("baseline") / "model.ckpt").is_file() and not (ws.path("baseline") / "checkpoints").exists()
    metrics = json.loads(details_file(ws.path("reports"), "baseline").read_text())  # the whole report
    assert metrics["variant"] == "content_frozen" and metrics["buckets"]["new"]["n"] > 0
    assert summary["new_ctr_auc"] == metrics["buckets"]["new"]["ctr_auc"] is not None
    preds = read_parquet(ws.path("baseline_predictions"))
    assert list(preds.columns) == ["event_id", "p_ctr", "p_ctcvr"] and len(preds) == metrics["overall"]["n"]
    assert preds["p_ctr"].between(0, 1).all()
    assert _candidate_files(ws) == candidate  # the candidate's ranker, predictions, metrics and plots untouched

    # validate_model judges both on the same events with the same code: the baseline's new-item AUC is the one it measured
    try:
        run_stage("validate_model", ws)
    except StageError:
        pass  # a 1-epoch tiny candidate may fail some gate; the facts are written either way
    facts = json.loads(ws.gate_file("validate_model").read_text())["facts"]
    assert facts["baseline"]["variant"] == "content_frozen"
    assert facts["baseline"]["new_auc"] == pytest.approx(metrics["buckets"]["new"]["ctr_auc"])
    assert facts["baseline"]["auc"] == pytest.approx(metrics["overall"]["ctr_auc"])
    assert facts["candidate"]["new_n"] == facts["baseline"]["new_n"] == metrics["buckets"]["new"]["n"]


def test_a_retried_baseline_resumes_from_its_last_epoch(ranker_upstream, tmp_path, monkeypatch):
    from saviorrec.models import ranker_training

    root = copy_tree(ranker_upstream, tmp_path / "ws")
    params, ws = open_workspace(root, {"ranker.epochs": 2})
    real = ranker_training.make_trainer

    monkeypatch.setattr(ranker_training, "make_trainer", trainer_crashing_at(real, 1))
    with pytest.raises(RuntimeError, match="simulated"):
        run_stage("baseline", ws)
    last = ws.path("baseline") / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0
    assert not ws.path("ranker").exists()  # the baseline never writes the candidate's folder
    monkeypatch.setattr(ranker_training, "make_trainer", real)

    summary = run_stage("baseline", ws, try_number=2)  # a retry: ckpt_path="last"
    assert summary["resumed_from"] == str(last)
    assert torch.load(ws.path("baseline") / "model.ckpt", weights_only=False)["epoch"] == 2
    assert ws.path("baseline_predictions").is_file() and ws.metrics_file("baseline").is_file()
