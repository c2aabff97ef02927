"""Codebook metrics, SID de-duplication, and the build_codebook stage on the tiny workspace."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from training_faults import CrashAtEpoch

from saviorrec.metrics import codebook as m
from saviorrec.metrics.stage_reports import details_file
from saviorrec.models.semantic_ids import embed_and_assign, sid_table
from saviorrec.stages import run_stage


# ---- metrics ------------------------------------------------------------------------------
def test_metrics_on_a_known_example():
    codes = np.array([[0, 1], [0, 1], [1, 0], [2, 2]])
    assert m.raw_collision_rate(codes) == 0.5
    assert m.utilization(codes, 4) == [0.75, 0.75]
    bits, norm = m.entropy(codes, 4)
    assert bits[0] == pytest.approx(1.5) and norm[0] == pytest.approx(0.75)
    assert m.unique_fraction(pd.Series(["a", "b", "b", "c"])) == 0.75
    assert m.reconstruction_mse(np.ones((2, 2)), np.zeros((2, 2))) == 1.0
    before = pd.DataFrame({"item_id": [1, 2, 3, 4], "sid": ["a", "b", "c", "d"]})
    after = pd.DataFrame({"item_id": [1, 2, 3, 5], "sid": ["a", "x", "c", "e"]})
    assert m.churn(before, after) == pytest.approx(1 / 3)  # item 4 left the catalog: not counted
    assert m.churn(None, after) is None


# ---- de-duplication -----------------------------------------------------------------------
def test_sid_table_is_unique_and_dedup_is_sticky():
    codes = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3], [4, 5, 6]])
    first = sid_table(np.array([10, 11, 12, 13]), codes)
    assert first["sid"].tolist() == ["1-2-3-0", "1-2-3-1", "1-2-3-2", "4-5-6-0"]
    assert first[["c1", "c2", "c3", "dedup"]].dtypes.eq("int32").all()
    # item 10 moves away: 11 and 12 keep their digits, newcomer 9 takes the free digit 0
    moved = np.array([[7, 7, 7], [1, 2, 3], [1, 2, 3], [4, 5, 6], [1, 2, 3]])
    second = sid_table(np.array([10, 11, 12, 13, 9]), moved, previous=first).set_index("item_id")["sid"]
    assert second[11] == "1-2-3-1" and second[12] == "1-2-3-2" and second[9] == "1-2-3-0"
    assert second.is_unique


def test_new_items_never_collide_with_existing_sids():
    existing = sid_table(np.array([1, 2, 3]), np.array([[0, 0, 0], [0, 0, 0], [5, 5, 5]]))
    new = sid_table(np.array([8, 9]), np.array([[0, 0, 0], [5, 5, 5]]), previous=existing, reserve_absent=True)
    assert set(new["sid"]).isdisjoint(existing["sid"])
    assert new["sid"].tolist() == ["0-0-0-2", "5-5-5-1"]


# ---- the stage --------------------------------------------------------------------------
def _stage(root, **overrides):
    from saviorrec.workspace import Workspace

    ws = Workspace.open(root, overrides)
    return run_stage("build_codebook", ws), ws


def test_stage_writes_a_unique_sid_for_every_catalog_item(tiny_pipeline):
    from saviorrec.data import io
    from saviorrec.models.codebook import load_codebook

    summary = tiny_pipeline.run("build_codebook")
    ws = tiny_pipeline.ws
    items = io.read_items(ws.path("items"))
    for name in ("sids", "sids_generic"):
        sids = io.read_parquet(ws.path(name))
        assert list(sids.columns) == ["item_id", "c1", "c2", "c3", "dedup", "sid"]
        assert set(sids["item_id"]) == set(items["item_id"]) and sids["sid"].is_unique
        assert sids[["c1", "c2", "c3", "dedup"]].dtypes.eq("int32").all()
        assert (sids["sid"] == sids[["c1", "c2", "c3", "dedup"]].astype(str).agg("-".join, axis=1)).all()
    metrics = json.loads(details_file(ws.path("reports"), "codebook").read_text())  # the whole report
    for key in ("raw_collision_rate", "unique_fraction", "utilization", "entropy", "reconstruction_mse",
                "churn", "hit_at_30", "hit_at_30_minilm", "generic"):
        assert key in metrics, key
    assert metrics["unique_fraction"] == 1.0 and metrics["generic"]["unique_fraction"] == 1.0
    assert len(metrics["utilization"]) == 3 and metrics["utilization"][0] >= 0.5
    assert metrics["churn"] is None  # first build
    encoder_metrics = json.loads(details_file(ws.path("reports"), "encoder").read_text())
    assert metrics["hit_at_30"] == encoder_metrics["hit_at_30"]
    # the reconstruction is judged on the same pairs as z: warm, cold, future, future_new, beside MiniLM
    rebuilt = metrics["retrieval_reconstructed"]
    assert {s: r["pairs"] for s, r in rebuilt.items()} == {s: r["pairs"] for s, r in encoder_metrics["retrieval"].items()}
    assert rebuilt["cold"]["pairs"] > 0 and rebuilt["cold"]["minilm"] == encoder_metrics["retrieval"]["cold"]["minilm"]
    assert metrics["hit_at_30_reconstructed"] == rebuilt["warm"]["hit"]
    assert summary["contrastive"] is True and summary["n_pairs"] > 0
    # the saved codebook reproduces the table from the embeddings
    z = io.read_parquet(ws.path("embeddings")).sort_values("item_id")
    codes = load_codebook(ws.path("codebook")).assign(np.stack(z["vector"].to_numpy()))
    sids = io.read_parquet(ws.path("sids")).sort_values("item_id")
    assert np.array_equal(codes, sids[["c1", "c2", "c3"]].to_numpy())


def test_rebuild_is_deterministic_and_warm_start_reports_churn(tiny_pipeline, copy_workspace):
    from saviorrec.data import io

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    original = io.read_parquet(runner.ws.path("sids"))
    summary, ws = _stage(runner.root, **{"codebook.full_rebuild": True})
    assert summary["warm_started"] is False
    pd.testing.assert_frame_equal(io.read_parquet(ws.path("sids")), original)  # same inputs, same SIDs
    assert summary["churn"] == 0.0
    warm, ws = _stage(runner.root)
    assert warm["warm_started"] is True and warm["generic"]["warm_started"] is True
    assert 0.0 <= warm["churn"] <= 1.0 and warm["unique_fraction"] == 1.0


def test_no_pairs_turns_the_contrastive_term_off(tiny_pipeline, copy_workspace, caplog):
    from saviorrec.data.pairs import read_pairs, write_pairs

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    train, holdout = read_pairs(runner.ws.path("pairs"))
    write_pairs(train.iloc[:0], holdout, runner.ws.path("pairs"))  # the encoder trained on no pairs
    with caplog.at_level(logging.WARNING):
        summary, _ = _stage(runner.root, **{"codebook.full_rebuild": True, "codebook.epochs": 1})
    assert summary["n_pairs"] == 0 and summary["contrastive"] is False
    assert summary["unique_fraction"] == 1.0 and summary["reconstruction_mse"] > 0
    assert "contrastive term off" in caplog.text


def test_missing_pairs_file_says_to_run_train_encoder(tiny_pipeline, copy_workspace):
    from saviorrec.workspace import StageError

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    runner.ws.path("pairs").unlink()
    with pytest.raises(StageError, match=rf"{runner.ws.path('pairs')}.*run train_encoder first"):
        _stage(runner.root)


def _break_embeddings(ws, how):
    from saviorrec.data import io

    z = io.read_parquet(ws.path("embeddings"))
    if how == "nan":
        z.at[0, "vector"] = np.full(len(z.at[0, "vector"]), np.nan, np.float32)
    else:
        z = z.iloc[2:]
    io.write_parquet(z, ws.path("embeddings"))
    return int(io.read_parquet(ws.path("embeddings")).iloc[0]["item_id"]) if how == "nan" else None


@pytest.mark.parametrize("how, message", [("nan", r"NaN/inf for 1 items, e.g. item_id \[{id}\]"),
                                          ("missing", r"lack 2 catalog items")])
def test_bad_embeddings_are_clear_errors(tiny_pipeline, copy_workspace, how, message):
    from saviorrec.workspace import StageError

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    bad_id = _break_embeddings(runner.ws, how)
    with pytest.raises(StageError, match=message.format(id=bad_id)):
        _stage(runner.root)


def test_codebook_larger_than_catalog_is_a_clear_error(tiny_pipeline, copy_workspace):
    from saviorrec.data import io
    from saviorrec.workspace import StageError

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    n = len(io.read_items(tiny_pipeline.ws.path("items")))
    with pytest.raises(StageError, match=rf"codebook_size=100000 is larger than the item count {n}"):
        _stage(runner.root, **{"codebook.codebook_size": 100000})


def test_embed_and_assign_new_items_without_retraining(tiny_pipeline):
    from saviorrec.data import io

    tiny_pipeline.run("build_codebook")
    ws = tiny_pipeline.ws
    items = io.read_items(ws.path("items"))
    known = items.head(3)
    new = items.tail(4).assign(item_id=items["item_id"].max() + 1 + np.arange(4))
    for space, table in (("behavior", "sids"), ("generic", "sids_generic")):
        existing = io.read_parquet(ws.path(table))
        emb, sids = embed_and_assign(ws, pd.concat([known, new]), space=space)
        assert sids["item_id"].tolist() == emb["item_id"].tolist() == pd.concat([known, new])["item_id"].tolist()
        stored = existing.set_index("item_id").loc[known["item_id"], "sid"].tolist()
        assert sids["sid"].head(3).tolist() == stored  # known items keep their SID
        fresh = sids["sid"].tail(4)
        assert fresh.is_unique and set(fresh).isdisjoint(existing["sid"])
        # same content as existing items -> same code tuple, only the dedup digit differs
        twins = existing.set_index("item_id").loc[items.tail(4)["item_id"], ["c1", "c2", "c3"]].to_numpy()
        assert np.array_equal(sids.tail(4)[["c1", "c2", "c3"]].to_numpy(), twins)


# ---- daily warm rebuilds and retried runs ----------------------------------------------------
def _workspace_with_text_cache(tiny_pipeline, copy_workspace):
    import shutil

    runner = copy_workspace(tiny_pipeline.root)
    shutil.copytree(tiny_pipeline.ws.path("text_cache"), runner.ws.path("text_cache"))  # no re-encoding
    return runner


def test_warm_rebuild_keeps_sids_stable_and_full_rebuild_is_still_possible(tiny_pipeline, copy_workspace):
    """encoder.anchor_weight + codebook.sticky_margin (params.yaml) keep churn <= 5% on a warm refresh."""
    from saviorrec.data import io
    from saviorrec.workspace import Workspace

    tiny_pipeline.run("build_codebook")
    runner = _workspace_with_text_cache(tiny_pipeline, copy_workspace)
    assert runner.params.encoder.anchor_weight > 0 and runner.params.codebook.sticky_margin > 0
    encoder = run_stage("train_encoder", runner.ws)
    assert encoder["warm_started"] and encoder["anchor_drift"] < 0.01
    warm, ws = _stage(runner.root)
    assert warm["warm_started"] and warm["churn"] <= 0.05 and warm["churn"] <= warm["churn_codes_greedy"]
    assert warm["unique_fraction"] == 1.0 and warm["generic"]["churn"] == 0.0

    assert not run_stage("train_encoder", Workspace.open(runner.root, {"encoder.warm_start": False}))["warm_started"]
    full, ws = _stage(runner.root, **{"codebook.full_rebuild": True})
    assert not full["warm_started"] and full["unique_fraction"] == 1.0
    # a full rebuild is the cold build again (up to float noise of another thread count)
    codes = ["item_id", "c1", "c2", "c3"]
    again, first = io.read_parquet(ws.path("sids"))[codes], io.read_parquet(tiny_pipeline.ws.path("sids"))[codes]
    assert (again.to_numpy() == first.to_numpy()).all(axis=1).mean() >= 0.95


def test_retried_build_resumes_each_space_from_its_last_epoch_checkpoint(tiny_pipeline, copy_workspace, monkeypatch):
    """A crash in epoch 2 keeps the previous codebook; the retry continues the fit (no k-means again)."""
    import torch

    from saviorrec.data import io
    from saviorrec.models import codebook_training
    from saviorrec.models.rqvae import RQVAE
    from saviorrec.stages import resume_options, run_stage
    from saviorrec.workspace import Workspace

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    directory = runner.ws.path("codebook")
    before = (directory / "model.pt").read_bytes()
    real_fit = codebook_training.fit_rqvae
    monkeypatch.setattr(codebook_training, "fit_rqvae", lambda *a, **k: real_fit(*a, callbacks=[CrashAtEpoch(1)], **k))
    with pytest.raises(RuntimeError, match="simulated"):
        _stage(runner.root, **{"codebook.full_rebuild": True})
    last = directory / "checkpoints" / "behavior" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0  # epoch 1 of 5 done
    assert (directory / "model.pt").read_bytes() == before  # the previous codebook is untouched
    monkeypatch.setattr(codebook_training, "fit_rqvae", real_fit)

    inits = []
    real_init = RQVAE.init_from_data
    monkeypatch.setattr(RQVAE, "init_from_data", lambda self, *a: inits.append(1) or real_init(self, *a))
    params = runner.params.model_copy(update={"codebook": runner.params.codebook.model_copy(update={"full_rebuild": True})})
    ws = Workspace(runner.root, params)
    assert resume_options("build_codebook", 2) == {"ckpt_path": "last"}
    summary = run_stage("build_codebook", ws, try_number=2)
    assert summary["resumed_from"] == str(last) and summary["generic"]["resumed_from"] is None
    assert len(inits) == 1  # only the generic space (no checkpoint) was initialised
    assert not (directory / "checkpoints").exists()  # a finished build leaves no checkpoints
    resumed = io.read_parquet(runner.ws.path("sids"))
    unbroken = run_stage("build_codebook", ws)  # fresh: clears, never continues
    assert unbroken["resumed_from"] is None
    pd.testing.assert_frame_equal(io.read_parquet(runner.ws.path("sids")), resumed)  # resumed == uninterrupted
    with pytest.raises(FileNotFoundError, match="checkpoint to resume from"):
        run_stage("build_codebook", ws, ckpt_path=directory / "missing.ckpt")


def test_prepare_checkpoints_clears_a_fresh_run_and_keeps_them_for_last(tmp_path):
    from saviorrec.models.checkpoints import last_checkpoint, prepare_checkpoints

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"epoch": 0}, checkpoints / "last.ckpt")  # whole (a damaged one is set aside on a retry)
    assert prepare_checkpoints(tmp_path, "last") == checkpoints  # a retry: Lightning looks for last.ckpt
    assert last_checkpoint(checkpoints) == checkpoints / "last.ckpt"
    assert prepare_checkpoints(tmp_path, checkpoints / "last.ckpt") == checkpoints
    with pytest.raises(FileNotFoundError, match="checkpoint to resume from not found"):
        prepare_checkpoints(tmp_path, checkpoints / "other.ckpt")
    prepare_checkpoints(tmp_path, None)  # a fresh run never continues a stale fit
    assert not checkpoints.exists() and last_checkpoint(checkpoints) is None
    assert prepare_checkpoints(tmp_path, "last") == checkpoints  # nothing to resume: not an error


# ---- depth from the catalog ---------------------------------------------------------------
def test_depth_grows_until_the_kmeans_codes_stop_colliding():
    from saviorrec.models.codebook_depth import choose_depth

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    choice = choose_depth(x, 8, min_levels=2, max_levels=8, target=0.02, iters=10, seed=1)
    rates = choice.collision_rate_by_depth
    assert min(rates) == 2 and choice.levels == max(rates) > 2  # 8 x 8 codes cannot hold 3000 items
    assert rates[choice.levels] <= 0.02 < rates[choice.levels - 1]  # the first depth under the target
    again = choose_depth(x, 8, min_levels=2, max_levels=8, target=0.02, iters=10, seed=1)
    assert again == choice  # seeded: the same catalog gets the same depth
    capped = choose_depth(x, 8, min_levels=2, max_levels=3, target=0.02, iters=10, seed=1)
    assert capped.levels == 3 and capped.collision_rate_by_depth[3] > 0.02


def test_build_deepens_a_crowded_codebook_and_a_warm_start_keeps_its_depth(tiny_pipeline, copy_workspace):
    from saviorrec.data import io

    tiny_pipeline.run("build_codebook")
    runner = copy_workspace(tiny_pipeline.root)
    crowded = {"codebook.codebook_size": 8, "codebook.full_rebuild": True}  # 8^3 = 512 tuples for 240 items
    cold, ws = _stage(runner.root, **crowded)
    assert cold["levels"] > 3 and cold["depth_collision_rates"]["3"] > 0.015
    assert cold["depth_collision_rates"][str(cold["levels"])] <= 0.015
    sids = io.read_parquet(ws.path("sids"))
    assert f"c{cold['levels']}" in sids.columns and sids["sid"].is_unique
    fixed, _ = _stage(runner.root, **crowded, **{"codebook.max_levels": 3})
    assert fixed["levels"] == 3 and fixed["raw_collision_rate"] > cold["raw_collision_rate"]
    cold, _ = _stage(runner.root, **crowded)
    warm, _ = _stage(runner.root, **{"codebook.codebook_size": 8})
    assert warm["warm_started"] and warm["levels"] == cold["levels"] and "depth_collision_rates" not in warm


def test_a_small_catalog_keeps_three_levels(tiny_pipeline):
    metrics = tiny_pipeline.run("build_codebook")
    assert metrics["levels"] == 3 and metrics["depth_collision_rates"]["3"] <= 0.015
