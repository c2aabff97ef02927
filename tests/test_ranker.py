"""Ranker: MBA, target attentions, every variant, training / warm start, scoring on bad input."""
# ruff: noqa: F811  (session fixtures imported from ranker_helpers are used as arguments)

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ranker_helpers import copy_tree, open_workspace, ranker_upstream, trained_saviorrec  # noqa: F401
from training_faults import trainer_crashing_at

from saviorrec.data.io import read_events, read_items, read_parquet, write_parquet
from saviorrec.data.samples import DENSE_FEATURES, IdVocab
from saviorrec.models import content_clusters
from saviorrec.models.mba import MBA
from saviorrec.models.ranker import Ranker, RankerConfig
from saviorrec.models.ranker_artifacts import load_ranker
from saviorrec.models.ranker_module import RankerModule, optimizer_list, ranker_losses
from saviorrec.models.ranker_training import warm_start_state
from saviorrec.models.scoring import Scorer, score_events
from saviorrec.models.target_attention import TargetAttention
from saviorrec.models.variants import VARIANTS
from saviorrec.stages import run_stage


def test_mba_is_identity_at_init_and_learns():
    torch.manual_seed(0)
    mba = MBA(levels=3, codebook_size=8, content_dim=5, code_dim=4, hidden=6)
    z = torch.randn(10, 5)
    sid = torch.randint(-1, 8, (10, 3))
    assert torch.equal(mba(z, sid), z)
    mba(z, sid).pow(2).sum().backward()  # would be zero-gradient with ReLU + bias-free zero tables
    grads = [t.weight.grad for t in mba.tables]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_target_attention_masks_and_empty_history():
    torch.manual_seed(0)
    ta = TargetAttention(dim=4)
    q, k, v = torch.randn(2, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = ta(q, k, v, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[1], torch.zeros(4))  # no history -> zero vector
    v2 = v.clone()
    v2[0, 2] = 100.0  # a padded position must not matter
    assert torch.allclose(ta(q, k, v2, mask), out)


def _batch(b=6, n=4, levels=3, content_dim=7, n_ids=20, n_cats=3):
    g = torch.Generator().manual_seed(0)
    return {
        "cand_id": torch.randint(1, n_ids, (b,), generator=g), "hist_id": torch.randint(0, n_ids, (b, n), generator=g),
        "hist_mask": torch.rand(b, n, generator=g) > 0.3, "cand_cat": torch.randint(0, n_cats + 1, (b,), generator=g),
        "hist_cat": torch.randint(0, n_cats + 1, (b, n), generator=g), "dense": torch.randn(b, len(DENSE_FEATURES), generator=g),
        "click": torch.tensor([1.0, 0, 0, 1, 0, 0]), "conversion": torch.tensor([1.0, -1, 0, 0, -1, 0]),
        "cand_content": torch.randn(b, content_dim, generator=g), "hist_content": torch.randn(b, n, content_dim, generator=g),
        "cand_sid": torch.randint(-1, 8, (b, levels), generator=g), "hist_sid": torch.randint(-1, 8, (b, n, levels), generator=g),
    }


@pytest.mark.parametrize("variant", [v for v, s in VARIANTS.items() if s.neural])
def test_every_neural_variant_trains_with_the_same_code(variant):
    spec = VARIANTS[variant]
    cfg = RankerConfig(variant=variant, n_ids=20, n_categories=3, dense_dim=len(DENSE_FEATURES), content_dim=7,
                       levels=3, codebook_size=8, id_dim=8, attn_dim=8, mba_hidden=8, dnn_hidden=[16])
    model = Ranker(cfg)
    assert (model.mba is not None) == spec.mba
    assert model.attention.blocks == [b for b in ("modal", "modal2behav", "behav2modal", "behavior") if b in spec.blocks]
    losses = ranker_losses(model, _batch(), ctcvr_weight=1.0)
    assert torch.isfinite(losses["loss"]) and losses["ctcvr_loss"] > 0
    losses["loss"].backward()
    assert model.item_id.weight.grad.abs().sum() > 0
    assert VARIANTS["saviorrec_no_bidir"].blocks == ("modal", "behavior")


def test_variant_without_its_inputs_is_refused():
    with pytest.raises(ValueError, match="needs item vectors"):
        Ranker(RankerConfig(variant="saviorrec", n_ids=5, n_categories=1, dense_dim=3))
    with pytest.raises(ValueError, match="not a neural ranker"):
        Ranker(RankerConfig(variant="heuristic", n_ids=5, n_categories=1, dense_dim=3))


def _eval_window(root):
    params, ws = open_workspace(root)
    train_end, eval_end = ws.split()
    history = read_events(ws.path("events"), end=train_end)
    events = read_events(ws.path("events"), start=train_end, end=eval_end)
    return params, ws, history, events


def test_train_and_score_saviorrec(trained_saviorrec):
    params, ws, history, events = _eval_window(trained_saviorrec)
    meta = json.loads((ws.path("ranker") / "config.json").read_text())
    assert meta["variant"] == "saviorrec" and meta["trained_until"] == str(ws.split()[0])
    assert meta["has_conversion"] is True
    assert meta["model"]["sparse_ids"] is True  # params.yaml: ranker.sparse_ids
    assert (ws.path("plots") / "ranker_training.csv").is_file()
    items = read_items(ws.path("items"))
    preds = score_events(ws, events, history, items)
    assert sorted(preds["event_id"]) == sorted(events["event_id"])
    assert preds["p_ctr"].between(0, 1).all() and (preds["p_ctcvr"] <= preds["p_ctr"] + 1e-9).all()
    again = score_events(ws, events, history, items)
    pd.testing.assert_frame_equal(preds, again)


def test_scoring_bad_input_unknown_items_new_users_nan_vectors(trained_saviorrec, tmp_path):
    root = copy_tree(trained_saviorrec, tmp_path / "ws")
    params, ws, history, events = _eval_window(root)
    items = read_items(ws.path("items"))
    # NaN features: break some vectors of the z table
    emb = read_parquet(ws.path("embeddings"))
    emb.loc[:5, "vector"] = pd.Series([np.full(len(emb["vector"].iloc[0]), np.nan, np.float32)] * 6).to_numpy()
    write_parquet(emb, ws.path("embeddings"))
    events = events.head(50).copy()
    events.loc[events.index[:5], "user_id"] = 10**9 + np.arange(5)  # users never seen: no history
    history = history.copy()
    history.loc[history.index[:20], "item_id"] = 10**9 + 7            # history items unknown to the catalog
    extra = events.iloc[:1].copy()
    extra["event_id"] = 10**12
    extra["item_id"] = 10**9 + 8                                       # candidate unknown to the catalog
    events = pd.concat([events, extra], ignore_index=True)
    preds = score_events(ws, events, history, items)
    assert len(preds) == len(events) and np.isfinite(preds[["p_ctr", "p_ctcvr"]].to_numpy()).all()
    # no history at all works too
    assert len(score_events(ws, events, None, items)) == len(events)


def test_warm_start_trains_the_new_day_only_and_keeps_rows(ranker_upstream, tmp_path):
    root = copy_tree(ranker_upstream, tmp_path / "ws")
    params, ws = open_workspace(root)
    days = ws.data_days()
    first = {"ranker.variant": "saviorrec", "split.train_end": str(days[-3]), "split.eval_end": str(days[-1])}
    p1, ws1 = open_workspace(root, first)
    run_stage("train_ranker", ws1)
    old_module, old_meta, old_vocab = load_ranker(ws1.path("ranker"))
    p2, ws2 = open_workspace(root, {**first, "split.train_end": str(days[-2]), "ranker.warm_start": True})
    # the grown vocabulary keeps each known item's row
    from saviorrec.data.samples import SampleBuilder

    items = read_items(ws.path("items"))
    vocab = IdVocab(items["item_id"])
    fresh = RankerModule({**old_meta["model"], "n_ids": len(vocab)}, lr=0.001)
    assert warm_start_state(fresh, ws1.path("ranker"), old_meta, vocab,
                            SampleBuilder(items, 2).cat_vocab) > 0
    some = old_vocab.item_ids[:5]
    assert torch.equal(fresh.model.item_id.weight[vocab.rows(some)], old_module.model.item_id.weight[old_vocab.rows(some)])
    day1_ranker = shutil.copytree(ws1.path("ranker"), tmp_path / "day1_ranker")  # trained until days[-3]
    summary = run_stage("train_ranker", ws2)
    assert summary["warm_start"] is True and summary["train_days"] == [str(days[-3])]
    # the warm-started ranker keeps the content and text clusters its counters were learned on
    assert old_meta["content_clusters"] == params.ranker.content_clusters > 0
    assert old_meta["text_clusters"] == params.ranker.text_clusters > 0
    for kind in ("cl", "tcl"):
        assert np.array_equal(content_clusters.load(ws2.path("ranker"), kind), content_clusters.load(ws1.path("ranker"), kind))
    # nothing new to train: kept as is
    assert run_stage("train_ranker", ws2)["new_days"] == 0
    # a daily run's seed (paths.ranker_seed) is continued, not the stage's own finished output:
    # rerunning the task in the same run trains the new day from the seed again
    shutil.copytree(day1_ranker, ws2.path("ranker_seed"))
    again = run_stage("train_ranker", ws2)
    assert again["warm_start"] is True and again["train_days"] == [str(days[-3])]
    # a ranker trained past this window's cut has seen its evaluation days: never continued
    shutil.rmtree(ws2.path("ranker_seed"))
    p3, ws3 = open_workspace(root, {**first, "ranker.warm_start": True})  # cut days[-3]; the output: days[-2]
    assert run_stage("train_ranker", ws3)["warm_start"] is False


def test_mba_rows_follow_codes_across_a_codebook_refresh(trained_saviorrec, tmp_path):
    root = copy_tree(trained_saviorrec, tmp_path / "ws")
    params, ws = open_workspace(root)
    items = read_items(ws.path("items"))
    before = Scorer.load(ws, items)
    sids = read_parquet(ws.path("sids"))
    changed = sids.index[::2]
    sids.loc[changed, "c1"] = (sids.loc[changed, "c1"] + 1) % params.codebook.codebook_size
    write_parquet(sids, ws.path("sids"))
    after = Scorer.load(ws, items)
    model = before.module.model

    def modal(scorer, ids):
        rows = scorer.features.rows(ids)
        with torch.no_grad():
            return model.modal(torch.from_numpy(scorer.features.content[rows]), torch.from_numpy(scorer.features.sid[rows]))

    kept = sids.drop(index=changed)["item_id"].to_numpy()[:10]
    moved = sids.loc[changed, "item_id"].to_numpy()[:10]
    assert torch.equal(modal(before, kept), modal(after, kept))
    assert not torch.equal(modal(before, moved), modal(after, moved))


def test_scoring_loads_no_training_code():
    """Serving reads a trained ranker through ranker_artifacts: the training modules stay unloaded."""
    code = "import sys, saviorrec.models.scoring; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert "saviorrec.models.ranker_artifacts" in loaded
    assert not loaded & {"saviorrec.models.ranker_training", "saviorrec.models.checkpoints", "saviorrec.data.ranker_datamodule"}


def test_heuristic_variant(ranker_upstream, tmp_path):
    root = copy_tree(ranker_upstream, tmp_path / "ws")
    params, ws = open_workspace(root, {"ranker.variant": "heuristic"})
    summary = run_stage("train_ranker", ws)
    assert summary["variant"] == "heuristic" and not (ws.path("ranker") / "model.ckpt").exists()
    _, _, history, events = _eval_window(root)
    preds = score_events(ws, events, history, read_items(ws.path("items")))
    assert preds["p_ctr"].between(0, 1).all() and preds["p_ctr"].nunique() > 10


def test_retried_training_resumes_from_the_last_epoch_checkpoint(ranker_upstream, tmp_path, monkeypatch):
    """A crash in epoch 2 of 2 leaves last.ckpt (epoch 1) and the previous ranker; the retry runs epoch 2 only,
    like an unbroken fit."""
    from saviorrec.models import ranker_training

    root = copy_tree(ranker_upstream, tmp_path / "ws")
    params, ws = open_workspace(root, {"ranker.variant": "saviorrec", "ranker.epochs": 1})
    run_stage("train_ranker", ws)
    assert not (ws.path("ranker") / "checkpoints").exists()  # a finished fit leaves no checkpoints
    before = (ws.path("ranker") / "model.ckpt").read_bytes()

    params2, ws2 = open_workspace(root, {"ranker.variant": "saviorrec", "ranker.epochs": 2})
    real = ranker_training.make_trainer

    monkeypatch.setattr(ranker_training, "make_trainer", trainer_crashing_at(real, 1))
    with pytest.raises(RuntimeError, match="simulated"):
        run_stage("train_ranker", ws2)
    last = ws.path("ranker") / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0  # saved at the end of the first epoch (index 0)
    assert (ws.path("ranker") / "model.ckpt").read_bytes() == before  # the previous ranker is untouched
    monkeypatch.setattr(ranker_training, "make_trainer", real)

    summary = run_stage("train_ranker", ws2, try_number=2)  # a retry: ckpt_path="last"
    assert summary["resumed_from"] == str(last)
    assert pd.read_csv(ws2.path("plots") / "ranker_training.csv")["epoch"].unique().tolist() == [1]  # only the missing epoch ran
    resumed = torch.load(ws2.path("ranker") / "model.ckpt", weights_only=False)
    assert resumed["epoch"] == 2
    assert not (ws.path("ranker") / "checkpoints").exists()

    unbroken = run_stage("train_ranker", ws2)  # fresh: clears, never continues
    assert unbroken["resumed_from"] is None and unbroken["final_loss"] == summary["final_loss"]
    for key, value in torch.load(ws2.path("ranker") / "model.ckpt", weights_only=False)["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key  # resumed == uninterrupted

    with pytest.raises(FileNotFoundError, match="checkpoint to resume from"):
        run_stage("train_ranker", ws2, ckpt_path=tmp_path / "missing.ckpt")


def _cfg(variant="saviorrec", **kw):
    return RankerConfig(variant=variant, n_ids=20, n_categories=3, dense_dim=len(DENSE_FEATURES), content_dim=7,
                        levels=3, codebook_size=8, id_dim=8, attn_dim=8, mba_hidden=8, dnn_hidden=[16], **kw)


def test_id_dropout_trains_the_unknown_row_and_is_off_at_inference():
    torch.manual_seed(0)
    batch = _batch()
    for key in ("cand_id", "hist_id"):
        batch[key][batch[key] == IdVocab.OOV] = 2
    model = Ranker(_cfg(id_dropout=0.5))
    ranker_losses(model, batch, ctcvr_weight=1.0)["loss"].backward()
    assert model.item_id.weight.grad[IdVocab.OOV].abs().sum() > 0  # no batch item is OOV: only dropout reaches it
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(_batch())[0], model(_batch())[0])
    plain = Ranker(_cfg())
    ranker_losses(plain, batch, ctcvr_weight=1.0)["loss"].backward()
    assert plain.item_id.weight.grad[IdVocab.OOV].abs().sum() == 0


def test_wide_prior_starts_at_the_heuristic_logit():
    prior = DENSE_FEATURES.index("heuristic_logit")
    model = Ranker(_cfg(prior_feature=prior)).eval()
    batch = _batch()
    with torch.no_grad():
        ctr, _ = model(batch)
    assert torch.allclose(ctr, batch["dense"][:, prior])
    with pytest.raises(ValueError, match="not a dense column"):
        Ranker(_cfg(prior_feature=len(DENSE_FEATURES)))


@pytest.mark.parametrize("variant", ["id_only", "saviorrec"])
def test_match_features_count_similar_history(variant):
    model = Ranker(_cfg(variant, interactions=True, attention_pooling="sigmoid")).eval()
    batch = _batch()
    feats = torch.cat(model.match_features(*_attended(model, batch)), dim=-1)
    assert feats.shape == (6, len(model.attention.blocks) + (4 if variant == "saviorrec" else 0))
    assert torch.isfinite(feats).all()
    if variant == "saviorrec":  # a history made of the candidate itself: every cosine is 1
        batch["hist_content"] = batch["cand_content"][:, None, :].expand_as(batch["hist_content"]).clone()
        cos = torch.cat(model.match_features(*_attended(model, batch)), dim=-1)[:, -4:]
        has = batch["hist_mask"].any(-1)
        assert torch.allclose(cos[has], torch.ones_like(cos[has]), atol=1e-5)
    ranker_losses(model.train(), batch, 1.0)["loss"].backward()


def _attended(model, batch):
    mask = batch["hist_mask"].bool()
    cand, seq = model.represent(batch)
    return cand, model.attention(cand, seq, mask), batch, mask


def test_split_attention_scores_equal_the_concatenated_din_form():
    torch.manual_seed(0)
    ta = TargetAttention(dim=4, hidden=5)
    q, k = torch.randn(3, 4), torch.randn(3, 6, 4)
    qq = q.unsqueeze(1).expand_as(k)
    reference = ta.score(torch.cat([qq, k, qq - k, qq * k], dim=-1)).squeeze(-1)
    assert torch.allclose(ta.logits(q, k), reference, atol=1e-5)


def test_scorer_reads_the_dense_columns_the_model_was_trained_on(trained_saviorrec, tmp_path):
    from saviorrec.data.samples import LEGACY_DENSE_FEATURES

    root = copy_tree(trained_saviorrec, tmp_path / "ws")
    _, ws = open_workspace(root)
    items = read_items(ws.path("items"))
    config = ws.path("ranker") / "config.json"
    meta = json.loads(config.read_text())
    assert meta["dense_features"] == DENSE_FEATURES and meta["sid_counters"] is True
    scorer = Scorer.load(ws, items)
    assert scorer.dense_columns == list(range(len(DENSE_FEATURES))) and set(scorer.clusters) == {"sid", "cl", "tcl"}
    # every catalog item with a vector, new ones included, is in one of the saved clusters
    for kind, key in content_clusters.META_KEYS.items():
        labels = scorer.features.clusters[kind]
        assert len(labels) == len(items) and labels.min() >= 0 and labels.max() < meta[key]
    # the z and text clusterings are different groupings of the items
    assert not np.array_equal(scorer.features.clusters["cl"], scorer.features.clusters["tcl"])
    for kind, name in (("cl", "content clusters"), ("tcl", "text clusters")):
        saved = ws.path("ranker") / content_clusters.CENTROIDS_FILES[kind]
        saved.rename(tmp_path / "moved.npy")
        with pytest.raises(FileNotFoundError, match=name):
            Scorer.load(ws, items)
        (tmp_path / "moved.npy").rename(saved)
    del meta["dense_features"]  # a ranker saved before the SID-cluster counters existed
    config.write_text(json.dumps(meta))
    assert Scorer.load(ws, items).dense_columns == list(range(len(LEGACY_DENSE_FEATURES)))


def test_a_small_log_gets_smaller_batches_so_one_pass_keeps_its_steps():
    from saviorrec.config import load_params
    from saviorrec.models.ranker_training import step_batch_size

    rp = load_params(Path(__file__).resolve().parents[1] / "params.yaml").ranker
    assert rp.batch_size == 1024 and rp.min_steps_per_epoch == 300
    assert step_batch_size(rp, 400_000) == 1024            # enough data: the configured batch
    assert step_batch_size(rp, 21_000) == 70               # 21k impressions: 300 steps of 70
    assert step_batch_size(rp, 1_000) == 32                # never under 32
    assert step_batch_size(rp.model_copy(update={"min_steps_per_epoch": None}), 21_000) == 1024


def _ids_cfg(sparse: bool) -> dict:
    return RankerConfig(variant="saviorrec", n_ids=40, n_categories=3, dense_dim=len(DENSE_FEATURES), content_dim=7,
                        levels=3, codebook_size=8, id_dim=8, attn_dim=8, mba_hidden=8, dnn_hidden=[16],
                        sparse_ids=sparse).to_dict()


def _two_disjoint_batches() -> tuple[dict, dict, torch.Tensor, torch.Tensor]:
    """Two batches whose item IDs do not overlap (1..19 and 21..39), and the rows each one reads."""
    first, second = _batch(), _batch()
    for key in ("cand_id", "hist_id"):
        second[key] = torch.where(second[key] > 0, second[key] + 20, second[key])
    rows = [torch.unique(torch.cat([b["cand_id"], b["hist_id"].flatten()])) for b in (first, second)]
    return first, second, rows[0][rows[0] > 0], rows[1][rows[1] > 0]


def _manual_steps(module: RankerModule, batches: list[dict]) -> list[torch.Tensor]:
    """The ID table after each optimizer step, stepping the module's own optimizers."""
    optimizers = optimizer_list(module)  # two with sparse ID gradients
    tables = []
    for batch in batches:
        for opt in optimizers:
            opt.zero_grad()
        ranker_losses(module.model, batch, 1.0)["loss"].backward()
        for opt in optimizers:
            opt.step()
        tables.append(module.model.item_id.weight.detach().clone())
    return tables


def test_sparse_id_gradients_step_only_the_batch_rows():
    """ranker.sparse_ids: the ID table's gradient holds the batch's rows only and SparseAdam moves
    only those, so a step's cost follows the batch, not the catalog (bench/bench_ranker_step.py);
    every other weight keeps Adam. Dense Adam keeps moving last step's rows on momentum."""
    first, second, first_rows, second_rows = _two_disjoint_batches()
    torch.manual_seed(0)
    sparse = RankerModule(_ids_cfg(True), lr=0.01)
    adam, sparse_adam = sparse.configure_optimizers()
    assert isinstance(adam, torch.optim.Adam) and isinstance(sparse_adam, torch.optim.SparseAdam)
    assert [p for g in sparse_adam.param_groups for p in g["params"]] == [sparse.model.item_id.weight]
    assert all(p is not sparse.model.item_id.weight for g in adam.param_groups for p in g["params"])
    ranker_losses(sparse.model, first, 1.0)["loss"].backward()
    assert sparse.model.item_id.weight.grad.is_sparse

    torch.manual_seed(0)
    sparse = RankerModule(_ids_cfg(True), lr=0.01)
    start = sparse.model.item_id.weight.detach().clone()
    after_first, after_second = _manual_steps(sparse, [first, second])
    assert not torch.equal(after_first[first_rows], start[first_rows])
    untouched = torch.ones(40, dtype=torch.bool)
    untouched[first_rows] = False
    assert torch.equal(after_first[untouched], start[untouched])  # rows no batch read stay as they were
    assert torch.equal(after_second[first_rows], after_first[first_rows])  # not in the second batch: not stepped
    assert not torch.equal(after_second[second_rows], after_first[second_rows])

    torch.manual_seed(0)
    dense_first, dense_second = _manual_steps(RankerModule(_ids_cfg(False), lr=0.01), [first, second])
    assert not torch.equal(dense_second[first_rows], dense_first[first_rows])


def test_the_training_curve_counts_batches_with_two_optimizers():
    """With sparse ID gradients two optimizers step every batch and Lightning's global_step counts
    both: the curve's step must still be the batch count."""
    import lightning as L
    from torch.utils.data import DataLoader

    from saviorrec.models.training_curve import TrainingCurve, training_curve

    batches = [_batch() for _ in range(5)]
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[TrainingCurve(every_n_steps=1)])
    trainer.fit(RankerModule(_ids_cfg(True), lr=0.01), DataLoader(batches, batch_size=None))
    assert [row["step"] for row in training_curve(trainer)] == [1, 2, 3, 4, 5]
    assert [row["step"] for row in training_curve(trainer, "epoch")] == [5]


def test_sparse_id_gradients_stay_off_where_the_all_reduce_takes_dense_tensors_only():
    from types import SimpleNamespace

    from lightning.pytorch.accelerators import CPUAccelerator

    from saviorrec.models.ranker_training import sparse_ids_fit

    on, off = SimpleNamespace(sparse_ids=True), SimpleNamespace(sparse_ids=False)
    fp16 = SimpleNamespace(sparse_ids=True, precision="16-mixed")  # one loss scaler, two optimizer steps
    one_gpu = SimpleNamespace(world_size=1, accelerator=object())
    gpus = SimpleNamespace(world_size=2, accelerator=object())  # DDP over NCCL
    cpus = SimpleNamespace(world_size=2, accelerator=CPUAccelerator())  # DDP over gloo
    assert sparse_ids_fit(on, one_gpu) and sparse_ids_fit(on, cpus)
    assert not sparse_ids_fit(on, gpus) and not sparse_ids_fit(off, one_gpu)
    assert not sparse_ids_fit(fp16, one_gpu) and sparse_ids_fit(SimpleNamespace(sparse_ids=True, precision="bf16-mixed"), one_gpu)
