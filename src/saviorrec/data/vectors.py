"""Item vectors: the table layout they are stored in, and the one check that no row holds NaN or inf."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

# Rows per Parquet row group of a vector table. Arrow decodes a list column with a whole group's
# repetition and definition levels: one 120k x 384 group peaked at 5.5x its 177 MiB, groups of
# 4,096 rows at 1.75x (tests/test_vector_tables.py).
VECTOR_ROW_GROUP = 4096


def vectors_frame(item_ids, vectors: np.ndarray) -> pd.DataFrame:
    """The stored layout of item vectors (z, MiniLM): ``item_id`` int64 + ``vector`` float32 list."""
    return pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64),
                         "vector": list(np.asarray(vectors, dtype=np.float32))})


def write_vectors(uri, item_ids, vectors: np.ndarray) -> None:
    """Item vectors in the stored layout, in row groups a reader can take one at a time."""
    from saviorrec.data import io

    io.write_parquet(vectors_frame(item_ids, vectors), uri, row_group_size=VECTOR_ROW_GROUP)


def read_vectors(uri, what: str, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, [N, d] float32) of a stored vector table, filled one row group at a time: the result
    plus one group's buffers, never the whole file's decoding. ValueError naming ``what`` for
    rows of different lengths or none."""
    from saviorrec.data import io

    ids = matrix = None
    start = 0
    for total, group in io.iter_row_groups(uri, ["item_id", "vector"], fix):
        group_ids, group_vectors = table_vectors(group, what)
        if matrix is None:
            ids, matrix = np.empty(total, np.int64), np.empty((total, group_vectors.shape[1]), np.float32)
        elif len(group_vectors) and group_vectors.shape[1] != matrix.shape[1]:
            raise ValueError(f"{what}: vectors of {matrix.shape[1]} and {group_vectors.shape[1]} values; "
                             "expected one length for every item")
        ids[start:start + len(group_ids)] = group_ids
        matrix[start:start + len(group_ids)] = group_vectors
        start += len(group_ids)
    if matrix is None:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return ids, matrix


def table_vectors(table: pa.Table, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The stored layout as (ids, [N, d] float32) straight from Arrow: no Python object per row.
    ValueError naming ``what`` when rows differ in length or one is null."""
    ids = table.column("item_id").to_numpy().astype(np.int64, copy=False)
    column = table.column("vector").combine_chunks()
    if len(column) == 0:
        return ids, np.zeros((0, 0), np.float32)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if column.null_count or (lengths != lengths[0]).any():
        raise ValueError(f"{what}: {column.null_count} rows without a vector, lengths from {np.nanmin(lengths):.0f} "
                         f"to {np.nanmax(lengths):.0f}; expected one vector of one length for every item")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return ids, values.reshape(len(column), int(lengths[0]))


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
