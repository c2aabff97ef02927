"""Ranker samples: history strictly before the impression, online counters, item tables, day streaming."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest

from saviorrec.data.io import write_events
from saviorrec.data.ranker_datamodule import DayStream, batch_bounds
from saviorrec.data.samples import (
    CLUSTER_KINDS,
    DENSE_FEATURES,
    IdVocab,
    ItemFeatures,
    SampleBuilder,
    dense_features,
    encode_batch,
)

T0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")


def _items(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"item_id": np.arange(1, n + 1, dtype=np.int64), "title": [f"t{i}" for i in range(n)],
                         "category": ["a", "b"] * (n // 2), "first_seen": pd.Timestamp("2024-01-01")})


def _events(rows: list[tuple]) -> pd.DataFrame:
    """rows: (event_id, minutes after T0, user, item, click)."""
    df = pd.DataFrame(rows, columns=["event_id", "minutes", "user_id", "item_id", "click"])
    return pd.DataFrame({
        "event_id": df["event_id"].astype("int64"), "ts": T0 + pd.to_timedelta(df["minutes"], unit="min"),
        "user_id": df["user_id"].astype("int64"), "item_id": df["item_id"].astype("int64"),
        "click": df["click"].astype("int8"), "conversion": pd.array([pd.NA] * len(df), dtype="Int8"),
    })


def test_history_is_strictly_before_the_impression_and_capped():
    builder = SampleBuilder(_items(), seq_len=2)
    events = _events([
        (1, 0, 7, 1, 1),   # click at t0
        (2, 0, 7, 2, 1),   # another click at the same instant: not history of each other
        (3, 5, 7, 3, 1),
        (4, 10, 7, 4, 0),  # sees the last 2 clicks before it: 2 (or 1), 3
        (5, 10, 8, 5, 0),  # user 8 has no history
        (6, 10, 7, 5, 1),  # same ts as event 4: sees the same history
    ])
    s = builder.step(events)
    hist = dict(zip(s.frame["event_id"], s.history.tolist(), strict=True))
    assert hist[1] == [-1, -1] and hist[2] == [-1, -1]
    assert hist[3][0] in (1, 2) and hist[3][1] in (1, 2) and set(hist[3]) == {1, 2}
    assert hist[4][1] == 3 and hist[4][0] in (1, 2)
    assert hist[6] == hist[4]
    assert hist[5] == [-1, -1]
    # counters: strict past only (events 4 and 6 share ts: neither counts the other)
    row = s.frame.index[s.frame["event_id"] == 6][0]
    assert s.counts["user_imps"][row] == 3 and s.counts["user_clicks"][row] == 3
    assert s.counts["glob_imps"][row] == 3


def test_state_carries_across_days_and_only_last_n_clicks_are_kept():
    builder = SampleBuilder(_items(), seq_len=3)
    builder.step(_events([(1, 0, 7, 1, 1), (2, 1, 7, 2, 1), (3, 2, 7, 3, 1), (4, 3, 7, 4, 1)]))
    day2 = _events([(5, 0, 7, 5, 0), (6, 0, 9, 5, 0)])
    day2["ts"] += pd.Timedelta(days=1)
    s = builder.step(day2)
    hist = dict(zip(s.frame["event_id"], s.history.tolist(), strict=True))
    assert hist[5] == [2, 3, 4]
    assert hist[6] == [-1, -1, -1]
    row = s.frame.index[s.frame["event_id"] == 5][0]
    assert s.counts["item_imps"][row] == 0 and s.counts["user_clicks"][row] == 4


def test_item_tables_unknown_ids_and_nan_vectors(caplog):
    items = _items(4)
    vectors = pd.DataFrame({"item_id": [1, 2, 3], "vector": [[1.0, 2.0], [np.nan, 1.0], [0.5, np.inf]]})
    sids = pd.DataFrame({"item_id": [1, 2], "c1": [3, 4], "c2": [0, 1], "dedup": [0, 0], "sid": ["3-0-0", "4-1-0"]})
    cat_vocab = np.array(["a", "b"], dtype=object)
    with caplog.at_level(logging.WARNING):
        feats = ItemFeatures.build(items, cat_vocab, vectors, sids)
    assert "non-finite" in caplog.text
    assert np.isfinite(feats.content).all()
    rows = feats.rows(np.array([1, 2, 4, 999, -1]))
    assert rows[3] == 0 and rows[4] == 0  # unknown item / padding -> row 0
    assert feats.content[rows[1]].tolist() == [0.0, 1.0]
    assert feats.content[rows[2]].tolist() == [0.0, 0.0]  # in the catalog, no vector: no content
    assert feats.sid[rows[2]].tolist() == [-1, -1]
    assert feats.category[rows].tolist() == [1, 2, 2, 0, 0]
    vocab = IdVocab(np.array([1, 2]))
    assert vocab.rows(np.array([1, 2, 3, -1])).tolist() == [2, 3, IdVocab.OOV, IdVocab.PAD]


def test_encode_batch_with_unknown_history_items_and_empty_history():
    items = _items(4)
    builder = SampleBuilder(items, seq_len=4)
    # item 77 is not in the catalog (history of user 7), user 8 has no history at all
    s = builder.step(_events([(1, 0, 7, 77, 1), (2, 1, 7, 1, 0), (3, 1, 8, 2, 0)]))
    feats = ItemFeatures.build(items, builder.cat_vocab, None, None)
    batch = encode_batch(s, feats, IdVocab(items["item_id"]), prior_strength=5.0)
    row = int(np.flatnonzero(s.frame["event_id"] == 2)[0])
    assert batch["hist_id"][row].tolist() == [0, 0, 0, IdVocab.OOV]
    assert batch["hist_cat"][row].tolist() == [0, 0, 0, 0]
    assert batch["hist_mask"][row].tolist() == [False, False, False, True]
    assert batch["cand_id"][int(np.flatnonzero(s.frame["event_id"] == 1)[0])] == IdVocab.OOV
    assert batch["dense"].shape == (3, len(DENSE_FEATURES)) and np.isfinite(batch["dense"]).all()
    assert (batch["conversion"] == -1).all()  # unknown conversions


def test_day_stream_replays_all_days_but_emits_from_the_given_day(tmp_path):
    items = _items()
    rng = np.random.default_rng(0)
    rows = [(i, int(rng.integers(0, 3 * 1440 - 8 * 60)), int(rng.integers(0, 5)), int(rng.integers(1, 7)), int(rng.integers(0, 2)))
            for i in range(300)]
    events = _events(rows)
    write_events(events, tmp_path / "events")
    feats = ItemFeatures.build(items, np.array(["a", "b"], dtype=object), None, None)
    common = dict(items=items, features=feats, vocab=IdVocab(items["item_id"]), seq_len=5, batch_size=32,
                  prior_strength=5.0)
    full = list(DayStream(tmp_path / "events", end=dt.date(2024, 1, 4), **common))
    assert sum(len(b["click"]) for b in full) == 300
    last_day = list(DayStream(tmp_path / "events", end=dt.date(2024, 1, 4), emit_from=dt.date(2024, 1, 3), **common))
    n_last = int((events["ts"].dt.date == dt.date(2024, 1, 3)).sum())
    assert sum(len(b["click"]) for b in last_day) == n_last
    # the last day's users still carry their history from the skipped days
    assert any(b["hist_mask"].any() for b in last_day)
    # training never sees the evaluation day
    first_two = list(DayStream(tmp_path / "events", end=dt.date(2024, 1, 3), **common))
    assert sum(len(b["click"]) for b in first_two) == 300 - n_last


def test_day_stream_expected_batches_is_close_to_the_epoch(tmp_path):
    """The progress ETA of a streamed epoch: the batch count from the emitted impressions is off
    by at most one batch a chunk (its tail), on one process and on each of two ranks."""
    items = _items()
    rng = np.random.default_rng(1)
    rows = [(i, int(rng.integers(0, 3 * 1440 - 8 * 60)), int(rng.integers(0, 5)), int(rng.integers(1, 7)), 0)
            for i in range(300)]
    events = _events(rows)
    write_events(events, tmp_path / "events")
    feats = ItemFeatures.build(items, np.array(["a", "b"], dtype=object), None, None)
    emit_from = dt.date(2024, 1, 2)
    emitted = int((events["ts"].dt.date >= emit_from).sum())
    for world in (1, 2):
        for rank in range(world):
            stream = DayStream(tmp_path / "events", items, feats, IdVocab(items["item_id"]), seq_len=5, batch_size=16,
                               prior_strength=5.0, end=dt.date(2024, 1, 4), emit_from=emit_from, chunk_rows=60,
                               rows=emitted)
            stream.shard(rank, world)
            chunks = sum(1 for emit, _ in stream._chunks() if emit)
            actual = sum(1 for _ in stream)
            assert abs(stream.expected_batches() - actual) <= chunks, (world, rank, stream.expected_batches(), actual)
    assert DayStream(tmp_path / "events", items, feats, IdVocab(items["item_id"]), seq_len=5, batch_size=16,
                     prior_strength=5.0, end=dt.date(2024, 1, 4)).expected_batches() is None


def test_day_stream_never_yields_a_batch_of_one(tmp_path):
    """The ranker's BatchNorm cannot train on one row: a sparse month of 33 impressions in batches of
    32 used to end in a batch of one and fail the fit."""
    items = _items()
    rows = [(i, i, i % 5, 1 + i % 6, i % 2) for i in range(33)]
    write_events(_events(rows), tmp_path / "events")
    feats = ItemFeatures.build(items, np.array(["a", "b"], dtype=object), None, None)
    common = dict(items=items, features=feats, vocab=IdVocab(items["item_id"]), seq_len=5, batch_size=32,
                  prior_strength=5.0, end=dt.date(2024, 1, 2))
    sizes = [len(b["click"]) for b in DayStream(tmp_path / "events", **common)]
    assert sizes == [33]  # the lone last impression joins the batch before it, none is lost
    lone = tmp_path / "lone"
    write_events(_events(rows[:1]), lone / "events")
    assert list(DayStream(lone / "events", **common)) == []  # a single impression alone is left out


def test_batch_bounds_cover_every_row_but_a_lone_one_and_agree_across_ranks():
    for batch_size in range(2, 12):
        for rows in range(0, 40):
            bounds = batch_bounds(rows, batch_size)
            sizes = [b - a for a, b in bounds]
            assert all(2 <= n <= batch_size + 1 for n in sizes), (rows, batch_size, sizes)
            assert sum(sizes) == (0 if rows == 1 else rows)
            assert all(a == b for (_, a), (b, _) in zip(bounds, bounds[1:], strict=False))  # contiguous
    with pytest.raises(ValueError, match="at least 2 rows"):
        batch_bounds(10, 1)


def test_dense_features_are_finite_for_cold_users_and_items():
    s = SampleBuilder(_items(), seq_len=2).step(_events([(1, 0, 1, 1, 0)]))
    feats = dense_features(s, prior_strength=10.0)
    assert np.isfinite(feats).all()
    with pytest.raises(KeyError):
        dense_features(type(s)(s.frame, s.history, {}), prior_strength=1.0)


def test_cluster_counters_are_strict_past_and_zero_without_clusters():
    items = _items()
    clusters = (items["item_id"].to_numpy(), np.array([0, 0, 1, 1, -1, 2]))  # items 1, 2 share code 0; item 5 has none
    events = _events([
        (1, 0, 7, 1, 1),   # user 7 clicks cluster 0
        (2, 5, 7, 3, 0),   # cluster 1, no click
        (3, 10, 7, 2, 0),  # cluster 0 again: sees 1 impression / 1 click of user 7 on it
        (4, 10, 8, 2, 0),  # another user: none of their own
    ])
    for kind in CLUSTER_KINDS:  # level-1 SID codes and content clusters count alike
        s = SampleBuilder(items, seq_len=2, clusters={kind: clusters}).step(events)
        row = dict(zip(s.frame["event_id"], range(len(s)), strict=True))
        assert s.counts[f"u{kind}_imps"][row[3]] == 1 and s.counts[f"u{kind}_clicks"][row[3]] == 1
        assert s.counts[f"u{kind}_imps"][row[4]] == 0
        assert s.counts[f"{kind}_imps"][row[4]] == 1  # cluster 0 shown once before, to anyone
        dense = dense_features(s, prior_strength=1.0)
        ctr = dense[:, DENSE_FEATURES.index(f"u{kind}_ctr")]
        assert ctr[row[3]] > ctr[row[4]]  # the clicker's rate on the cluster is higher
        other = next(k for k in CLUSTER_KINDS if k != kind)
        assert not dense[:, DENSE_FEATURES.index(f"log_u{other}_imps")].any()  # the other kind stays zero
    plain = dense_features(SampleBuilder(items, seq_len=2).step(events), prior_strength=1.0)
    assert not plain[:, DENSE_FEATURES.index("log_usid_imps"):].any()
    with pytest.raises(ValueError, match="unknown cluster kind"):
        SampleBuilder(items, seq_len=2, clusters={"brand": clusters})
