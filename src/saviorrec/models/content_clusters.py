"""Coarse content clusters for the ranker's user x cluster counters.

A brand-new item has no clicks, but its content vector (z, or the MiniLM vector for the
baselines) puts it in a cluster the user has already seen many items of. The rate at
which the user clicked that cluster's items, impressions included, is the strongest
cold-start signal a history gives: clicks alone cannot tell a taste the user skips from
one never shown. A few dozen clusters keep the per-user counts dense (level-1 SIDs have
hundreds of codes, so a user has about one impression per code).

Two clusterings (kinds, see ``saviorrec.data.samples.CLUSTER_KINDS``): ``cl`` over the variant's
item vectors (z for saviorrec: its clusters follow the behavior communities) and ``tcl`` over the
plain text vectors (their clusters follow what the titles are about, which z blurs).

Spherical k-means (faiss, seeded) over the training items' vectors; the centroids are saved
with the ranker so serving assigns new items exactly as training did.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from saviorrec.file_integrity import load_npy
from saviorrec.models.quantizer import kmeans_centroids

log = logging.getLogger(__name__)

CENTROIDS_FILES = {"cl": "content_clusters.npy", "tcl": "text_clusters.npy"}
# ranker config.json key holding each kind's cluster count (0 = off)
META_KEYS = {"cl": "content_clusters", "tcl": "text_clusters"}
KMEANS_ITERS = 25
RETRAIN = "retrain it with train_ranker --set ranker.warm_start=false"  # the ranker's own files' fix


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_centroids(vectors: np.ndarray, k: int, seed: int, param: str = "ranker.content_clusters") -> np.ndarray:
    """[k, d] unit centroids of the rows of ``vectors`` with content (all-zero rows are skipped).

    A catalog smaller than ``k`` gets one cluster per item (logged), so a small workspace still trains.
    ``param`` names the setting that asked for the clusters in errors and warnings.
    """
    vectors = np.asarray(vectors, np.float32)
    has_content = np.abs(vectors).sum(axis=1) > 0
    n = int(has_content.sum())
    if n == 0:
        raise ValueError(f"{param}={k}: no training item has a content vector; set it to 0")
    if n < k:
        log.warning("%s=%d but only %d training items have a content vector: %d clusters", param, k, n, n)
        k = n
    return _unit(kmeans_centroids(_unit(vectors[has_content]), k, KMEANS_ITERS, seed))


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid (cosine) per row; -1 for rows without content (zero vectors)."""
    vectors = np.asarray(vectors, np.float32)
    if len(vectors) == 0:
        return np.zeros(0, np.int64)
    labels = (_unit(vectors) @ centroids.T).argmax(axis=1).astype(np.int64)
    return np.where(np.abs(vectors).sum(axis=1) > 0, labels, -1)


def save(directory: str | Path, centroids: np.ndarray, kind: str = "cl") -> None:
    np.save(Path(directory) / CENTROIDS_FILES[kind], centroids.astype(np.float32))


def load(directory: str | Path, kind: str = "cl") -> np.ndarray | None:
    """The saved centroids of ``kind``, None when the ranker has none; CorruptFileError when damaged."""
    path = Path(directory) / CENTROIDS_FILES[kind]
    return load_npy(path, "ranker cluster centroids", RETRAIN) if path.is_file() else None
