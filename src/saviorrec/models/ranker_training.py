"""Train a ranker variant on a workspace (library side of pipelines/train_ranker).

What it writes to ``ws.path("ranker")``, and how serving loads it back: ``ranker_artifacts``.

Warm start (``ranker.warm_start``): the previous ranker's weights are loaded, its ID rows are
carried over to the grown vocabulary (new items get fresh rows), and only the days from its
``trained_until`` up to ``train_end`` produce training batches (earlier days still rebuild
each user's history and counters). The previous ranker is ``--previous``, else the seed a daily
run was given (``paths.ranker_seed``), else the stage's own last output (``dvc repro``). One
trained past ``train_end`` is never continued: it has seen the evaluation window.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.accelerators import CPUAccelerator

from saviorrec.config import Params
from saviorrec.config.model import Ranker as RankerParams
from saviorrec.data.io import iter_event_days, read_items
from saviorrec.data.ranker_datamodule import DayStream, RankerDataModule
from saviorrec.data.samples import DENSE_FEATURES, IdVocab, ItemFeatures, SampleBuilder
from saviorrec.models import content_clusters
from saviorrec.models.checkpoints import TorchRngState, prepare_checkpoints, staged_output, training_callbacks
from saviorrec.models.distributed import leave_unless_rank_zero, require_relaunchable, trainer_devices
from saviorrec.models.ranker import RankerConfig
from saviorrec.models.ranker_artifacts import (
    MODEL_FILE,
    cluster_vectors,
    item_tables,
    read_checkpoint,
    read_id_vocab,
    read_meta,
    save_id_vocab,
    write_meta,
)
from saviorrec.models.ranker_module import RankerModule
from saviorrec.models.training_curve import training_curve
from saviorrec.models.variants import VARIANTS, VariantSpec
from saviorrec.workspace import Workspace

log = logging.getLogger(__name__)


def build_config(params: Params, spec_name: str, vocab: IdVocab, cat_vocab: np.ndarray, features: ItemFeatures,
                 sparse_ids: bool | None = None) -> RankerConfig:
    """The ranker's shape from params and data; ``sparse_ids``: None = ``ranker.sparse_ids``."""
    rp = params.ranker
    levels = features.sid.shape[1] if features.sid is not None else 0
    codebook_size = 0
    if features.sid is not None:
        codebook_size = max(params.codebook.codebook_size, int(features.sid.max()) + 1)
    return RankerConfig(
        variant=spec_name, n_ids=len(vocab), n_categories=len(cat_vocab), dense_dim=len(DENSE_FEATURES),
        content_dim=features.content.shape[1] if features.content is not None else 0,
        levels=levels, codebook_size=codebook_size, id_dim=rp.id_dim, attn_dim=rp.attn_dim,
        mba_hidden=rp.mba_hidden, dnn_hidden=list(rp.dnn_hidden), dropout=rp.dropout,
        id_dropout=rp.id_dropout, attention_pooling=rp.attention_pooling,
        prior_feature=DENSE_FEATURES.index("heuristic_logit") if rp.wide_prior else -1,
        interactions=rp.interactions, sparse_ids=rp.sparse_ids if sparse_ids is None else sparse_ids,
    )


def sparse_ids_fit(rp: RankerParams, trainer: L.Trainer) -> bool:
    """``ranker.sparse_ids`` unless several processes share GPUs (NCCL all-reduces dense tensors
    only; gloo, DDP on CPU, takes sparse gradients too) or under ``16-mixed``, whose loss scaler
    updates once per optimizer step: with two optimizers the ID table could be unscaled with a
    scale its gradient was not scaled by."""
    if not rp.sparse_ids or str(getattr(rp, "precision", "32-true")) == "16-mixed":
        return False
    return trainer.world_size == 1 or isinstance(trainer.accelerator, CPUAccelerator)


def _rows_map(old_ids: np.ndarray, new_ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(new rows, old rows) of ids present in both vocabularies."""
    common, new_pos, old_pos = np.intersect1d(new_ids, old_ids, return_indices=True)
    return new_pos + offset, old_pos + offset


def warm_start_state(module: RankerModule, previous_dir: Path, meta: dict, vocab: IdVocab, cat_vocab: np.ndarray) -> int:
    """Load the previous weights into ``module``: ID / category rows by key, other tensors when shapes match."""
    old = read_checkpoint(previous_dir)["state_dict"]
    state = module.state_dict()
    old_ids = read_id_vocab(previous_dir)
    old_cats = np.array(meta["category_vocab"], dtype=object)
    loaded = 0
    for key, tensor in old.items():
        if key not in state:
            continue
        if key == "model.item_id.weight":
            new_rows, old_rows = _rows_map(old_ids, vocab.item_ids, 2)
            state[key][new_rows] = tensor[old_rows]
            state[key][:2] = tensor[:2]
        elif key == "model.category.weight":
            new_rows, old_rows = _rows_map(old_cats, cat_vocab, 1)
            state[key][new_rows] = tensor[old_rows]
            state[key][0] = tensor[0]
        elif state[key].shape == tensor.shape:
            state[key] = tensor
        else:
            log.warning("warm start: %s changed shape %s -> %s, re-initialised", key, tuple(tensor.shape), tuple(state[key].shape))
            continue
        loaded += 1
    module.load_state_dict(state)
    return loaded


def default_previous(ws: Workspace, out_dir: Path) -> Path:
    """The seed a daily run was given, else the stage's own last output."""
    seed = Path(ws.path("ranker_seed"))
    return seed if seed.is_dir() else out_dir


def train_ranker(params: Params, ws: Workspace, previous_dir: Path | None = None,
                 ckpt_path: str | Path | None = None) -> dict[str, Any]:
    """Train ``params.ranker.variant`` on days < train_end of ``ws``; write ``ws.path("ranker")``.

    Lightning saves ``<ranker>/checkpoints/last.ckpt`` after every epoch; a retried run passes
    ``ckpt_path="last"`` (Lightning finds that file, or starts fresh when there is none) or the
    file itself, and continues from that epoch; ``resumed_from`` names the file it resumed from.
    A fresh run (no ``ckpt_path``) clears stale checkpoints; a successful run replaces the whole
    folder, checkpoints included.

    With ``ranker.devices`` > 1 (DDP) every rank trains on its share of each day (``DayStream``);
    rank 0 alone writes the folder and returns (with ``rank_samples``: each rank's impressions).
    """
    rp = params.ranker
    spec = VARIANTS[rp.variant]
    train_end, _ = ws.split()
    out_dir = Path(ws.path("ranker"))
    checkpoints = prepare_checkpoints(out_dir, ckpt_path)
    previous_dir = Path(previous_dir) if previous_dir else default_previous(ws, out_dir)
    previous = read_meta(previous_dir) if rp.warm_start else None
    if previous is not None and previous.get("variant") != rp.variant:
        log.warning("warm start skipped: previous ranker is %s, not %s", previous.get("variant"), rp.variant)
        previous = None
    if previous is not None and dt.date.fromisoformat(previous["trained_until"]) > train_end:
        log.warning("warm start skipped: the ranker in %s trained until %s, past this window's train_end %s",
                    previous_dir, previous["trained_until"], train_end)
        previous = None
    items = read_items(ws.path("items"))
    train_items = items[items["first_seen"] < pd.Timestamp(train_end)]
    cat_vocab = SampleBuilder(items, rp.seq_len).cat_vocab
    days = [d for d in ws.data_days() if d < train_end]
    if not days:
        raise ValueError(f"no training days before train_end={train_end} under {ws.path('events')}")
    meta: dict[str, Any] = {
        "variant": rp.variant, "seq_len": rp.seq_len, "prior_strength": rp.heuristic_prior_strength,
        "category_vocab": [str(c) for c in cat_vocab], "train_start": str(days[0]), "trained_until": str(train_end),
        "content": spec.content, "sids": spec.sids,
        **counter_meta(rp, spec),
    }
    emit_from = None
    if previous is not None:
        emit_from = dt.date.fromisoformat(previous["trained_until"])
        if emit_from >= train_end:
            log.info("ranker already trained until %s: nothing new", previous["trained_until"])
            if previous_dir != out_dir:
                shutil.copytree(previous_dir, out_dir, dirs_exist_ok=True)
            return {"variant": rp.variant, "warm_start": True, "new_days": 0, "samples": 0, "trained_until": previous["trained_until"]}
        meta["train_start"] = previous.get("train_start", meta["train_start"])
    conv_clicks = [0.0, 0.0]
    emitted = 0  # training impressions of this fit
    for day_date, day in iter_event_days(ws.path("events"), end=train_end, columns=None):
        conv = pd.to_numeric(day["conversion"], errors="coerce")
        conv_clicks[0] += float(conv.fillna(0).sum())
        conv_clicks[1] += float(day.loc[conv.notna(), "click"].sum())
        emitted += len(day) if emit_from is None or day_date >= emit_from else 0
    meta["has_conversion"] = conv_clicks[1] > 0
    meta["conversion_per_click"] = conv_clicks[0] / conv_clicks[1] if conv_clicks[1] else None
    summary: dict[str, Any] = {"variant": rp.variant, "warm_start": previous is not None,
                               "train_days": [str(d) for d in days if emit_from is None or d >= emit_from]}
    with staged_output(out_dir) as staging:
        if spec.neural:
            vocab_ids = train_items["item_id"].to_numpy(np.int64)
            if previous is not None:
                vocab_ids = np.union1d(vocab_ids, read_id_vocab(previous_dir))
            vocab = IdVocab(vocab_ids)
            features, centroids = ranker_features(params, ws, spec, items, cat_vocab, train_end,
                                                  previous_dir if previous is not None else None)
            for kind, kind_centroids in centroids.items():
                content_clusters.save(staging, kind_centroids, kind)
            trainer = make_trainer(rp, checkpoint_dir=checkpoints)
            require_relaunchable(trainer, "ranker", rp)
            config = build_config(params, rp.variant, vocab, cat_vocab, features, sparse_ids_fit(rp, trainer))
            L.seed_everything(params.seed, workers=True, verbose=False)
            module = RankerModule(config.to_dict(), lr=rp.lr, weight_decay=rp.weight_decay, ctcvr_weight=rp.ctcvr_weight)
            if previous is not None:
                summary["warm_start_tensors"] = warm_start_state(module, previous_dir, previous, vocab, cat_vocab)
            batch_size = step_batch_size(rp, emitted)
            summary["batch_size"] = batch_size
            stream = DayStream(ws.path("events"), items, features, vocab, rp.seq_len, batch_size,
                               rp.heuristic_prior_strength, end=train_end, emit_from=emit_from, seed=params.seed,
                               clusters=features.counter_clusters(sid=meta["sid_counters"]), rows=emitted)
            trainer.fit(module, datamodule=RankerDataModule(stream, rp.num_workers),
                        ckpt_path=str(ckpt_path) if ckpt_path else None)
            # the file Lightning resumed from ("last" resolved; None when it started fresh)
            summary["resumed_from"] = str(trainer.ckpt_path) if trainer.ckpt_path else None
            trainer.save_checkpoint(staging / MODEL_FILE)  # every rank calls it; rank 0 writes
            leave_unless_rank_zero(trainer)
            shares = next((c for c in trainer.callbacks if isinstance(c, RankShares)), None)
            if shares is not None and shares.rank_samples:
                summary["rank_samples"] = shares.rank_samples
            save_id_vocab(staging, vocab)
            meta["model"] = config.to_dict()
            # the per-step loss curve (plots/ranker_training.csv) and the mean loss of each epoch
            summary.update(curve=training_curve(trainer), epoch_losses=[row["loss"] for row in module.curve],
                           samples=module.curve[-1]["samples"] if module.curve else 0,
                           parameters=sum(p.numel() for p in module.parameters()),
                           device=str(trainer.strategy.root_device))
            if not module.curve:
                raise ValueError("no training samples produced: the training window holds fewer than 2 impressions "
                                 "per training process (a batch needs 2 rows)")
        write_meta(staging, meta)
    summary["trained_until"] = str(train_end)
    return summary


def step_batch_size(rp: RankerParams, impressions: int) -> int:
    """``ranker.batch_size``, made smaller on a small log so that one pass still takes at least
    ``ranker.min_steps_per_epoch`` optimizer steps (never under 32): the budget scales with the
    data instead of being retuned per catalog size."""
    if not rp.min_steps_per_epoch or impressions <= 0:
        return rp.batch_size
    return int(min(rp.batch_size, max(32, impressions // rp.min_steps_per_epoch)))


def cluster_sizes(rp: RankerParams, spec: VariantSpec) -> dict[str, int]:
    """Cluster count per content clustering kind for this variant (0 = off): ``cl`` needs item
    vectors; ``tcl`` (plain text clusters) only adds something when those vectors are not the text."""
    return {"cl": rp.content_clusters if spec.content else 0,
            "tcl": rp.text_clusters if spec.content and spec.content != "text_features" else 0}


def counter_meta(rp: RankerParams, spec: VariantSpec) -> dict[str, Any]:
    """The config.json entries that tell the scorer which counters and dense columns a ranker was
    trained with (``sid_counters``, ``dense_features``, one cluster count per clustering)."""
    return {"sid_counters": bool(rp.sid_counters and spec.sids), "dense_features": list(DENSE_FEATURES),
            **{content_clusters.META_KEYS[kind]: k for kind, k in cluster_sizes(rp, spec).items()}}


def ranker_features(params: Params, ws: Workspace, spec: VariantSpec, items: pd.DataFrame, cat_vocab: np.ndarray, train_end: dt.date,
                    previous_dir: Path | None = None) -> tuple[ItemFeatures, dict[str, np.ndarray]]:
    """The variant's item tables aligned to the catalog, with the content clusterings that
    ``ranker.content_clusters`` / ``ranker.text_clusters`` turn on: (features, kind -> centroids).

    Centroids: the previous ranker's on a warm start (same clusters, comparable counters) when
    they fit the vectors; otherwise spherical k-means over the vectors of items first seen
    before ``train_end``.
    """
    features = ItemFeatures.build(items, cat_vocab, *item_tables(ws, spec))
    known = items.loc[items["first_seen"] < pd.Timestamp(train_end), "item_id"].to_numpy(np.int64)
    known_rows = features.rows(known)
    known_rows = known_rows[known_rows > 0] - 1  # rows of the [N, d] cluster vectors
    centroids: dict[str, np.ndarray] = {}
    for kind, k in cluster_sizes(params.ranker, spec).items():
        if not k:
            continue
        vectors = cluster_vectors(ws, features, kind, items)
        kept = content_clusters.load(previous_dir, kind) if previous_dir is not None else None
        if kept is not None and kept.shape != (k, vectors.shape[1]):
            log.warning("warm start: previous %s clusters are %s, not (%d, %d): refitting",
                        kind, kept.shape, k, vectors.shape[1])
            kept = None
        if kept is None:
            kept = content_clusters.fit_centroids(vectors[known_rows], k, params.seed,
                                                  f"ranker.{content_clusters.META_KEYS[kind]}")
        centroids[kind] = kept
        features.set_clusters(kind, content_clusters.assign(vectors, kept))
    return features, centroids


def make_trainer(rp: RankerParams, max_epochs: int | None = None, checkpoint_dir: Path | None = None) -> L.Trainer:
    """A quiet Trainer on ``ranker.accelerator`` with ``ranker.devices`` / ``strategy`` / ``precision``;
    with ``checkpoint_dir`` it keeps ``last.ckpt`` there after every epoch (rank 0 writes it)."""
    return L.Trainer(max_epochs=max_epochs or rp.epochs, accelerator=rp.accelerator, **trainer_devices(rp),
                     logger=False, enable_checkpointing=checkpoint_dir is not None,
                     callbacks=training_callbacks(checkpoint_dir, [TorchRngState(), RankShares()]),
                     enable_progress_bar=False, enable_model_summary=False)


class RankShares(L.Callback):
    """Several training processes: each rank's ``RankerModule.curve`` averages its own share, so at
    the end of the fit every entry becomes the sample-weighted mean over all ranks (the curve of
    the whole data) and ``rank_samples`` keeps each rank's impressions of the last epoch (disjoint
    shares: they add up to that epoch's impressions). One process: nothing changes."""

    def __init__(self) -> None:
        self.rank_samples: list[int] = []

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.world_size == 1:
            return
        for entry in module.curve:
            losses = [k for k in entry if k not in ("epoch", "samples")]
            local = torch.tensor([entry["samples"], *(entry[k] * entry["samples"] for k in losses)],
                                 dtype=torch.float64, device=module.device)
            ranks = module.all_gather(local).reshape(trainer.world_size, -1).cpu()  # [world, 1 + losses]
            total = ranks[:, 0].sum().item()
            entry.update({"samples": int(total), **{k: ranks[:, i + 1].sum().item() / total for i, k in enumerate(losses)}})
            self.rank_samples = [int(n) for n in ranks[:, 0].tolist()]

