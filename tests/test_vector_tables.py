"""Item vector tables (z, MiniLM) are written in row groups and read one group at a time: reading a
catalog's vectors costs about the matrix, not the 5x of decoding a list column in one piece."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from saviorrec.data import io
from saviorrec.data.vectors import VECTOR_ROW_GROUP, read_vectors, write_vectors
from saviorrec.models.codebook_training import load_vectors
from saviorrec.workspace import StageError


def test_vectors_round_trip_in_row_groups(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(1, 2 * VECTOR_ROW_GROUP + 100)).astype(np.int64)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    path = tmp_path / "vectors.parquet"
    write_vectors(path, ids, vectors)

    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    got_ids, got = read_vectors(path, "vectors", fix="rewrite it")
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(got, vectors)
    # the codebook's reader: catalog order, the last row of a repeated item wins
    order = np.sort(ids)[::-1]
    np.testing.assert_array_equal(load_vectors(path, order, "vectors"), vectors[pd.Index(ids).get_indexer(order)])


def test_load_vectors_keeps_an_items_last_row(tmp_path):
    path = tmp_path / "vectors.parquet"
    io.write_parquet(pd.DataFrame({"item_id": [1, 2, 1], "vector": [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]}), path)
    np.testing.assert_array_equal(load_vectors(path, np.array([1, 2]), "vectors"), [[4.0, 5.0], [2.0, 3.0]])


@pytest.mark.parametrize("vector, problem", [([[0.0, 1.0], [2.0]], "lengths from 1 to 2"),
                                             ([[0.0, 1.0], None], "1 rows without a vector")])
def test_ragged_or_missing_vectors_are_one_line_naming_the_file(tmp_path, vector, problem):
    path = tmp_path / "embeddings.parquet"
    io.write_parquet(pd.DataFrame({"item_id": [1, 2], "vector": vector}), path)
    with pytest.raises(StageError) as err:
        load_vectors(path, np.array([1, 2]), "embeddings")
    assert problem in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_reading_a_catalogs_vectors_costs_about_the_matrix(tmp_path):
    # 120k MiniLM-sized rows (176 MiB): read in one piece, Arrow peaks at about 5x that
    rows, dim = 120_000, 384
    path = tmp_path / "text_features.parquet"
    write_vectors(path, np.arange(rows), np.random.default_rng(1).normal(size=(rows, dim)).astype(np.float32))
    # peak RSS over the read alone: VmHWM reset first (imports peak higher than what they keep)
    probe = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from saviorrec.data.vectors import read_vectors

        def status(key):
            line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
            return int(line.split()[1]) * 1024

        Path("/proc/self/clear_refs").write_text("5")
        before = status("VmRSS:")
        ids, matrix = read_vectors({str(path)!r}, "text features", fix="rewrite it")
        print(json.dumps({{"grown": status("VmHWM:") - before, "matrix": matrix.nbytes + ids.nbytes}}))
    """)
    out = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                    text=True).stdout.strip().splitlines()[-1])
    # the matrix plus one row group's decoding; the whole file in one group measured 5x
    assert out["grown"] <= 2.0 * out["matrix"], (
        f"reading {out['matrix'] / 2**20:.0f} MiB of vectors grew peak RSS by {out['grown'] / 2**20:.0f} MiB")
