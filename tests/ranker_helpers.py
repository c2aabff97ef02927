"""Helpers for the ranker tests: stand-in upstream tables for a workspace.

Until the encoder / codebook stages are available in a test, these write
``text_features``, ``embeddings``, ``sids`` and ``sids_generic`` with the artifact contract's
schema from vectors clustered by category (so content carries signal), letting the ranker
code be tested on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from saviorrec.data.io import read_items, write_parquet


def write_fake_upstream(ws, seed: int = 0, levels: int = 3, codebook_size: int = 16, z_dim: int = 16) -> pd.DataFrame:
    items = read_items(ws.path("items"))
    rng = np.random.default_rng(seed)
    cats = items["category"].astype(str).to_numpy()
    uniq = sorted(set(cats))
    cat_idx = np.array([uniq.index(c) for c in cats])

    def vectors(dim: int) -> np.ndarray:
        centers = rng.normal(size=(len(uniq), dim))
        v = centers[cat_idx] + 0.5 * rng.normal(size=(len(items), dim))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def table(v: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"item_id": items["item_id"].to_numpy(np.int64), "vector": list(v)})

    def sids() -> pd.DataFrame:
        codes = {f"c{level + 1}": ((cat_idx * (level + 1) + rng.integers(0, 3, len(items))) % codebook_size).astype(np.int32)
                 for level in range(levels)}
        frame = pd.DataFrame({"item_id": items["item_id"].to_numpy(np.int64), **codes})
        frame["dedup"] = frame.groupby([f"c{level + 1}" for level in range(levels)]).cumcount().astype(np.int32)
        frame["sid"] = frame[[*codes, "dedup"]].astype(str).agg("-".join, axis=1)
        return frame

    write_parquet(table(vectors(384)), ws.path("text_features"))
    write_parquet(table(vectors(z_dim)), ws.path("embeddings"))
    write_parquet(sids(), ws.path("sids"))
    write_parquet(sids(), ws.path("sids_generic"))
    return items


# ---- fixtures (imported by the ranker test modules) ---------------------------------------

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _has_codebook_stage() -> bool:
    try:
        import pipelines.build_codebook  # noqa: F401
    except ImportError:
        return False
    return True


def open_workspace(root: Path, overrides: dict | None = None):
    """(params, ws) for ``root`` with per-run overrides such as ``{"ranker.variant": "heuristic"}``."""
    from saviorrec.config import load_params
    from saviorrec.workspace import Workspace

    params = load_params(root / "params.yaml", overrides=overrides)
    return params, Workspace(root, params)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".cache"))
    return dst


@pytest.fixture(scope="session")
def ranker_upstream(tiny_pipeline, tmp_path_factory) -> Path:
    """A private tiny workspace with events, items, text_features, embeddings, sids, sids_generic.

    Uses the real encoder/codebook stages when they exist, else stand-in tables.
    """
    real = _has_codebook_stage()
    tiny_pipeline.run("build_codebook" if real else "ingest")
    root = copy_tree(tiny_pipeline.root, tmp_path_factory.mktemp("ranker_upstream") / "ws")
    if not real:
        params, ws = open_workspace(root)
        write_fake_upstream(ws, z_dim=params.encoder.embedding_dim, codebook_size=params.codebook.codebook_size)
    return root


@pytest.fixture(scope="session")
def trained_saviorrec(ranker_upstream, tmp_path_factory) -> Path:
    """A copy of ``ranker_upstream`` with the full saviorrec ranker trained (not evaluated)."""
    import pipelines.train_ranker as train_ranker

    root = copy_tree(ranker_upstream, tmp_path_factory.mktemp("trained") / "ws")
    params, ws = open_workspace(root, {"ranker.variant": "saviorrec"})
    train_ranker.run(params, ws)
    return root
