"""A day's impressions x history length x item-vector width never sit in memory at once.

Training (:class:`DayStream`) and scoring (:class:`Scorer`) hold one day of samples, but they keep
each impression's item *rows* and gather the frozen item vectors batch by batch: with MiniLM
vectors (384 floats) and 20 history items, a day's worth would be 30 KB an impression, 26 GB for
a day of the full ``large`` world. Measured with tracemalloc, which counts numpy's buffers.
"""

from __future__ import annotations

import datetime as dt
import tracemalloc

import numpy as np
import pandas as pd
import torch

from saviorrec.data.io import write_events
from saviorrec.data.ranker_datamodule import DayStream
from saviorrec.data.samples import DENSE_FEATURES, IdVocab, ItemFeatures, SampleBuilder, encode_batch
from saviorrec.models.ranker import RankerConfig
from saviorrec.models.ranker_module import RankerModule
from saviorrec.models.scoring import Scorer

ROWS, ITEMS, USERS, SEQ_LEN, WIDTH, BATCH = 6_000, 500, 300, 20, 384, 256
DAY = pd.Timestamp("2024-01-01", tz="UTC")
# what gathering the vectors for the whole day would allocate: the candidates' and the histories'
DAY_VECTORS = ROWS * (SEQ_LEN + 1) * WIDTH * 4


def _world(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, ItemFeatures]:
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": np.arange(1, ITEMS + 1, dtype=np.int64), "title": "t",
                          "category": rng.choice(["a", "b", "c"], ITEMS), "first_seen": pd.Timestamp("2024-01-01")})
    events = pd.DataFrame({
        "event_id": np.arange(ROWS, dtype=np.int64),
        "ts": DAY + pd.to_timedelta(np.sort(rng.integers(0, 86_400, ROWS)), unit="s"),
        "user_id": rng.integers(0, USERS, ROWS).astype(np.int64),
        "item_id": rng.integers(1, ITEMS + 1, ROWS).astype(np.int64),
        "click": (rng.random(ROWS) < 0.5).astype(np.int8),  # many clicks: full histories
        "conversion": pd.array([pd.NA] * ROWS, dtype="Int8"),
    })
    vectors = pd.DataFrame({"item_id": items["item_id"],
                            "vector": list(rng.standard_normal((ITEMS, WIDTH)).astype(np.float32))})
    cat_vocab = np.array(sorted(items["category"].unique()), dtype=object)
    return items, events, ItemFeatures.build(items, cat_vocab, vectors, None)


def _peak_bytes(fn) -> int:
    # numpy's buffers only: the gathering is numpy indexing (a torch-side gather would not be seen)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_training_stream_gathers_item_vectors_per_batch(tmp_path):
    items, events, features = _world()
    write_events(events, tmp_path / "events")
    stream = DayStream(tmp_path / "events", items, features, IdVocab(items["item_id"]), seq_len=SEQ_LEN,
                       batch_size=BATCH, prior_strength=5.0, end=dt.date(2024, 1, 2), chunk_rows=ROWS)
    seen = {"rows": 0, "widths": set()}

    def consume() -> None:
        for batch in stream:  # drop each batch before the next, as a training loop does
            seen["rows"] += len(batch["click"])
            seen["widths"].add(tuple(batch["hist_content"].shape[1:]))
            assert "hist_row" not in batch and "cand_row" not in batch

    peak = _peak_bytes(consume)
    assert seen["rows"] == ROWS and seen["widths"] == {(SEQ_LEN, WIDTH)}
    assert peak < DAY_VECTORS / 4, (
        f"the training stream peaked at {peak / 2**20:.0f} MiB for a day whose vectors take {DAY_VECTORS / 2**20:.0f} MiB")


def test_scoring_gathers_item_vectors_per_batch():
    items, events, features = _world()
    vocab = IdVocab(items["item_id"])
    samples = SampleBuilder(items, SEQ_LEN).step(events)
    cfg = RankerConfig(variant="content_frozen", n_ids=len(vocab), n_categories=int(features.category.max()) + 1,
                       dense_dim=len(DENSE_FEATURES), content_dim=WIDTH)
    torch.manual_seed(0)
    module = RankerModule(cfg.to_dict(), lr=0.001).eval()
    meta = {"variant": "content_frozen", "prior_strength": 5.0, "dense_features": DENSE_FEATURES, "seq_len": SEQ_LEN}
    scorer = Scorer(module, meta, vocab, features, batch_size=BATCH)
    out = {}
    peak = _peak_bytes(lambda: out.update(p=scorer.predict(samples)))
    p_ctr, _ = out["p"]
    assert p_ctr.shape == (ROWS,) and np.isfinite(p_ctr).all()
    assert peak < DAY_VECTORS / 4, (
        f"scoring peaked at {peak / 2**20:.0f} MiB for a day whose vectors take {DAY_VECTORS / 2**20:.0f} MiB")
    # the same predictions as the day's arrays gathered at once (the layout the ranker reads)
    whole = encode_batch(samples, features, vocab, 5.0)
    with torch.no_grad():
        logits, _ = module({k: torch.from_numpy(np.require(v, requirements=["C", "W"])) for k, v in whole.items()})
    np.testing.assert_allclose(p_ctr, torch.sigmoid(logits).numpy(), rtol=1e-5, atol=1e-6)
