"""Item vectors: the table layout they are stored in, and the one check that no row holds NaN or inf."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def vectors_frame(item_ids, vectors: np.ndarray) -> pd.DataFrame:
    """The stored layout of item vectors (z, MiniLM): ``item_id`` int64 + ``vector`` float32 list."""
    return pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64),
                         "vector": list(np.asarray(vectors, dtype=np.float32))})


def vectors_array(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The stored layout back to (ids, [N, d] float32) for the ranker: NaN entries become 0 (no content)."""
    ids = frame["item_id"].to_numpy(np.int64)
    if len(frame) == 0:
        return ids, np.zeros((0, 0), np.float32)
    matrix = np.stack([np.asarray(v, dtype=np.float32) for v in frame["vector"].to_numpy()])
    bad_rows = nonfinite_rows(matrix)
    if bad_rows.any():
        bad = ~np.isfinite(matrix)
        log.warning("%d non-finite values in %d item vectors replaced by 0", int(bad.sum()), int(bad_rows.sum()))
        matrix = np.where(bad, 0.0, matrix).astype(np.float32)
    return ids, matrix


def nonfinite_rows(matrix: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``matrix`` ([N] or [N, d]) that hold a NaN or an inf."""
    matrix = np.asarray(matrix)
    finite = np.isfinite(matrix)
    return ~(finite.all(axis=tuple(range(1, matrix.ndim))) if matrix.ndim > 1 else finite)


def require_finite(matrix: np.ndarray, item_ids, what: str, error: type[Exception] = ValueError) -> np.ndarray:
    """``matrix`` unchanged, or ``error`` naming ``what``, how many rows are bad and the first item_ids."""
    bad = nonfinite_rows(matrix)
    if bad.any():
        ids = np.asarray(item_ids)[bad][:10].tolist()
        raise error(f"{what} contain NaN/inf for {int(bad.sum())} items, e.g. item_id {ids}")
    return matrix
