"""Fixtures and helpers of the ranker tests: a tiny workspace whose upstream stages ran, and one
with the saviorrec ranker trained on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from saviorrec.config import Params
from saviorrec.stages import run_stage
from saviorrec.workspace import Workspace


def open_workspace(root: Path, overrides: dict | None = None) -> tuple[Params, Workspace]:
    """(params, ws) for ``root`` with per-run overrides such as ``{"ranker.variant": "heuristic"}``."""
    ws = Workspace.open(root, overrides)
    return ws.params, ws


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".cache"))
    return dst


@pytest.fixture(scope="session")
def ranker_upstream(tiny_pipeline, tmp_path_factory) -> Path:
    """A private tiny workspace with events, items, text_features, embeddings, sids, sids_generic."""
    tiny_pipeline.run("build_codebook")
    root = copy_tree(tiny_pipeline.root, tmp_path_factory.mktemp("ranker_upstream") / "ws")
    # other tests may have trained and evaluated in the shared workspace already: start without them
    ws = Workspace.open(root)
    for name in ("ranker", "baseline", "predictions", "baseline_predictions"):
        target = ws.path(name)
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    return root


@pytest.fixture(scope="session")
def trained_saviorrec(ranker_upstream, tmp_path_factory) -> Path:
    """A copy of ``ranker_upstream`` with the full saviorrec ranker trained (not evaluated)."""

    root = copy_tree(ranker_upstream, tmp_path_factory.mktemp("trained") / "ws")
    params, ws = open_workspace(root, {"ranker.variant": "saviorrec"})
    run_stage("train_ranker", ws)
    return root
