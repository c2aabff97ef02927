"""Content clusters: seeded spherical k-means, nearest-centroid assignment, no-content rows, which variant gets which."""

from types import SimpleNamespace

import numpy as np
import pytest

from saviorrec.models import content_clusters


def _blobs(seed=0, n=60):
    rng = np.random.default_rng(seed)
    centers = np.eye(8, dtype=np.float32)[:3] * 5
    labels = rng.integers(0, 3, n)
    return centers[labels] + rng.normal(0, 0.3, (n, 8)).astype(np.float32), labels


def test_clusters_recover_blobs_and_are_deterministic(tmp_path):
    x, truth = _blobs()
    centroids = content_clusters.fit_centroids(x, 3, seed=7)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    labels = content_clusters.assign(x, centroids)
    # same partition as the blobs, whatever the numbering
    assert len(set(zip(truth.tolist(), labels.tolist(), strict=True))) == 3
    assert np.array_equal(centroids, content_clusters.fit_centroids(x, 3, seed=7))
    content_clusters.save(tmp_path, centroids)
    assert np.array_equal(content_clusters.load(tmp_path), centroids)
    assert content_clusters.load(tmp_path / "absent") is None


def test_rows_without_content_are_skipped_and_unassigned():
    x, _ = _blobs()
    x[:5] = 0.0  # items without a content vector
    centroids = content_clusters.fit_centroids(x, 3, seed=1)
    labels = content_clusters.assign(x, centroids)
    assert (labels[:5] == -1).all() and (labels[5:] >= 0).all()
    assert content_clusters.assign(np.zeros((0, 8), np.float32), centroids).shape == (0,)


def test_a_catalog_smaller_than_k_gets_one_cluster_per_item_and_none_is_an_error():
    x, _ = _blobs(n=4)
    assert content_clusters.fit_centroids(x, 10, seed=0).shape == (4, 8)
    with pytest.raises(ValueError, match="ranker.content_clusters=10: no training item has a content vector"):
        content_clusters.fit_centroids(np.zeros((5, 8), np.float32), 10, seed=0)


def test_each_variant_gets_the_clusterings_its_inputs_allow():
    from saviorrec.data.samples import ItemFeatures
    from saviorrec.models.ranker_training import cluster_sizes
    from saviorrec.models.variants import VARIANTS

    rp = SimpleNamespace(content_clusters=16, text_clusters=12)
    assert cluster_sizes(rp, VARIANTS["saviorrec"]) == {"cl": 16, "tcl": 12}
    # the baseline's item vectors are the text: a second text clustering would repeat the first
    assert cluster_sizes(rp, VARIANTS["content_frozen"]) == {"cl": 16, "tcl": 0}
    assert cluster_sizes(rp, VARIANTS["saviorrec_generic_encoder"]) == {"cl": 16, "tcl": 0}
    assert cluster_sizes(rp, VARIANTS["id_only"]) == {"cl": 0, "tcl": 0}
    assert cluster_sizes(SimpleNamespace(content_clusters=0, text_clusters=0), VARIANTS["saviorrec"]) == {"cl": 0, "tcl": 0}
    features = ItemFeatures(np.array([3, 1, 2]), np.zeros(3, np.int64))
    features.set_clusters("tcl", np.array([0, 1, -1]))
    assert set(features.counter_clusters(sid=True)) == {"tcl"}  # no SID table: no SID grouping
    with pytest.raises(ValueError, match="unknown content cluster kind 'sid'"):
        features.set_clusters("sid", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="2 cluster labels for 3 items"):
        features.set_clusters("cl", np.zeros(2, np.int64))
