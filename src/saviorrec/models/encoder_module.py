"""Contrastive training of the item encoder on mined pairs (Lightning DataModule + Module + ``fit_encoder``).

Per-item inputs (MiniLM vectors, pictures, attribute codes) are computed once and kept as
buffers; a batch is just (trigger row, target row) indices into them, so an epoch costs only
the small towers. Pairs are drawn with replacement, proportionally to their
(popularity-corrected) weight, from a seeded generator.
Loss: symmetric in-batch InfoNCE, z_trigger . z_target / temperature, where in-batch
"negatives" that are the same item as the positive (or the anchor) are masked out. A warm-started
refresh may add ``anchor_weight * mean ||z - z_previous||^2`` over the batch items and as many
random catalog items: known items keep their z, so their semantic IDs stay put.

Each epoch reseeds its pair draws and dropout from (seed, epoch), so a fit resumed from a
Lightning checkpoint (``ckpt_path``: a file, or "last" for the ``last.ckpt`` Lightning finds in
the checkpoint folder) continues exactly like an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from saviorrec.models.checkpoints import EpochSeededSampler, training_callbacks
from saviorrec.models.distributed import leave_unless_rank_zero, require_relaunchable, trainer_devices
from saviorrec.models.encoder import EncoderInputs, ItemEncoder
from saviorrec.models.encoder_selection import ColdSelection
from saviorrec.models.info_nce import info_nce

log = logging.getLogger(__name__)


class PairDataModule(L.LightningDataModule):
    """``pairs``: int64[P, 2] row indices into the item features; ``weights``: float[P]."""

    def __init__(self, pairs: np.ndarray, weights: np.ndarray, batch_size: int, seed: int, per_epoch: int | None = None):
        super().__init__()
        if len(pairs) == 0:
            raise ValueError("no training pairs")
        self.pairs = torch.as_tensor(np.asarray(pairs, np.int64))
        self.weights = torch.tensor(np.asarray(weights, np.float64))
        self.batch_size = min(batch_size, len(pairs))
        self.seed = seed
        self.per_epoch = per_epoch or len(pairs)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator()
        draws = WeightedRandomSampler(self.weights, num_samples=self.per_epoch, replacement=True, generator=generator)
        sampler = EpochSeededSampler(draws, generator, self.seed, lambda: self.trainer.current_epoch if self.trainer else 0)
        return DataLoader(TensorDataset(self.pairs), batch_size=self.batch_size, sampler=sampler, drop_last=self.per_epoch >= 2 * self.batch_size)


class ContrastiveEncoder(L.LightningModule):
    def __init__(self, encoder: ItemEncoder, features: EncoderInputs, temperature: float, lr: float, weight_decay: float,
                 seed: int = 0, anchor: np.ndarray | None = None, anchor_weight: float = 0.0,
                 train_scale: float | None = 1.0):
        super().__init__()
        self.train_scale = train_scale
        self.encoder = encoder
        self.temperature = temperature
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        # previous z per item row (NaN rows = no anchor); off unless both are given
        anchor_t = torch.zeros(0, 0) if anchor is None else torch.as_tensor(np.asarray(anchor, np.float32))
        known = torch.isfinite(anchor_t).all(dim=1) if anchor is not None else torch.zeros(0, dtype=torch.bool)
        self.anchor_weight = float(anchor_weight) if anchor is not None and bool(known.any()) else 0.0
        self.register_buffer("anchor", torch.nan_to_num(anchor_t), persistent=False)
        self.register_buffer("anchor_known", known, persistent=False)
        self.register_buffer("anchor_rows", torch.nonzero(known).flatten(), persistent=False)
        # buffers move with the module to the accelerator; not saved (the encoder is)
        self.register_buffer("f_text", features.text, persistent=False)
        self.register_buffer("f_pixels", features.pixels, persistent=False)
        self.register_buffer("f_has_image", features.has_image, persistent=False)
        self.register_buffer("f_attributes", features.attributes, persistent=False)
        self.epoch_losses: list[float] = []
        self.resumed_from: str | None = None  # the checkpoint file the fit continued from
        self._sum, self._n = 0.0, 0

    def _embed_rows(self, rows: torch.Tensor) -> torch.Tensor:
        attributes = self.f_attributes[rows]
        p = self.encoder.config.get("dropout", 0.0)
        if p > 0:  # hide some attribute values so the "unknown" row learns what a new value means
            attributes = attributes.masked_fill(torch.rand(attributes.shape, device=attributes.device) < p, 0)
        feats = EncoderInputs(self.f_text[rows], self.f_pixels[rows], self.f_has_image[rows], attributes)
        return self.encoder(feats, scale=self.train_scale)

    def training_step(self, batch, batch_idx):
        (pairs,) = batch
        a, b = pairs[:, 0], pairs[:, 1]
        rows = torch.cat([a, b])
        if self.anchor_weight > 0:  # plus random anchored items: items without pairs drift too
            pick = torch.randint(len(self.anchor_rows), (len(a),), device=self.anchor_rows.device)
            rows = torch.cat([rows, self.anchor_rows[pick]])
        z = self._embed_rows(rows)
        nce = info_nce(z[: len(a)], z[len(a):2 * len(a)], self.temperature, item_ids=(a, b))
        self.log("train_loss", nce, on_step=False, on_epoch=True, batch_size=len(a))
        self._sum += float(nce.detach()) * len(a)
        self._n += len(a)
        if self.anchor_weight <= 0:
            return nce
        known = self.anchor_known[rows]
        drift = ((z[known] - self.anchor[rows[known]]) ** 2).sum(1).mean()
        self.log("anchor_drift", drift, on_step=False, on_epoch=True, batch_size=len(a))
        return nce + self.anchor_weight * drift

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # dropout and anchor draws from (seed, epoch), set at the epoch's first step (after the
        # loader, which draws from the global RNG too): a resumed epoch replays like the original
        if batch_idx == 0:
            torch.manual_seed(self.seed + 104729 * self.current_epoch)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["epoch_losses"] = list(self.epoch_losses)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.epoch_losses = list(checkpoint.get("epoch_losses", []))

    def on_train_epoch_end(self) -> None:
        self.epoch_losses.append(self._sum / max(self._n, 1))
        log.info("epoch %d: mean InfoNCE %.4f", len(self.epoch_losses), self.epoch_losses[-1])
        self._sum, self._n = 0.0, 0

    def configure_optimizers(self):
        return torch.optim.AdamW(self.encoder.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def fit_encoder(
    encoder: ItemEncoder,
    features: EncoderInputs,
    pairs: np.ndarray,
    weights: np.ndarray,
    *,
    epochs: int,
    lr: float,
    cfg,
    seed: int,
    anchor: np.ndarray | None = None,
    anchor_weight: float = 0.0,
    checkpoint_dir: str | Path | None = None,
    ckpt_path: str | Path | None = None,
    callbacks: Sequence[L.Callback] = (),
    selection: ColdSelection | None = None,
    pairs_per_epoch: int | None = None,
    train_scale: float | None = 1.0,
) -> ContrastiveEncoder:
    """Train ``encoder`` in place; returns the training module: ``.epoch_losses`` (the mean
    training loss of each epoch), ``.resumed_from`` (the checkpoint file used, or None).

    ``anchor`` (float[N, d], NaN rows = none) with ``anchor_weight`` > 0 keeps z near it.
    ``checkpoint_dir`` gets Lightning's ``last.ckpt`` after every epoch; ``ckpt_path`` resumes
    from one (its epochs are not run again); "last" finds it in ``checkpoint_dir`` and starts
    fresh when there is none. ``pairs_per_epoch``: pairs drawn per epoch (None: as many as given).
    ``train_scale``: the correction scale of a residual encoder while it trains (1: a fresh
    encoder, shrunk afterwards by ``selection``; None: the encoder's own, as a warm start keeps it).
    ``selection`` scores every epoch on cold items, may stop early, and its best (epoch,
    correction scale) is what ``encoder`` holds on return.

    ``cfg.devices`` / ``strategy`` / ``precision`` go to the Trainer. With several devices (DDP)
    Lightning's distributed sampler gives each rank its share of every epoch's draws (batches of
    ``cfg.batch_size`` per device); only rank 0 returns, the other ranks' processes end after the fit.
    """
    # deterministic cuBLAS on a GPU needs a fixed workspace (no effect on CPU)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    L.seed_everything(seed, workers=True, verbose=False)
    module = ContrastiveEncoder(encoder, features, cfg.temperature, lr, cfg.weight_decay, seed=seed,
                                anchor=anchor, anchor_weight=anchor_weight, train_scale=train_scale)
    data = PairDataModule(pairs, weights, cfg.batch_size, seed, pairs_per_epoch)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        **trainer_devices(cfg),
        deterministic=True,
        logger=False,
        enable_checkpointing=checkpoint_dir is not None,
        callbacks=training_callbacks(checkpoint_dir, [*callbacks, *([selection] if selection else [])]),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    require_relaunchable(trainer, "encoder", cfg)
    trainer.fit(module, datamodule=data, ckpt_path=str(ckpt_path) if ckpt_path else None)
    leave_unless_rank_zero(trainer)
    module.resumed_from = str(trainer.ckpt_path) if trainer.ckpt_path else None
    encoder.cpu().eval()
    if selection is not None:
        selection.restore(encoder)
    return module
