"""Training of the RQ-VAE (Lightning module + ``fit_rqvae``).

Loss = reconstruction of z + codebook/commitment + contrastive_weight * InfoNCE between the
*reconstructed* trigger and target embeddings of behavior pairs (method.md section 1).

Batches, contrastive pair draws and dead-code reseeding are seeded from (seed, epoch), so a fit
resumed from a Lightning checkpoint (``ckpt_path``) continues exactly like an uninterrupted one;
the checkpoint holds the trained state, so PCA + k-means init is not re-run over it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from saviorrec.models.checkpoints import EpochSeededSampler, epoch_seed, training_callbacks
from saviorrec.models.info_nce import info_nce
from saviorrec.models.rqvae import RQVAE, RQVAEConfig

log = logging.getLogger(__name__)


class RQVAEModule(L.LightningModule):
    """Trains ``self.rqvae``; behavior pairs (``set_pairs``) feed the contrastive term."""

    def __init__(self, config: RQVAEConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.rqvae = RQVAE(config)
        self.seed = seed
        self.register_buffer("pair_trigger", torch.zeros(0, config.in_dim), persistent=False)
        self.register_buffer("pair_target", torch.zeros(0, config.in_dim), persistent=False)
        self.register_buffer("pair_weight", torch.zeros(0), persistent=False)
        self.reset_count = 0
        self.resumed_from: str | None = None  # the checkpoint file the fit continued from
        self._reset_epoch_state()

    def set_pairs(self, trigger: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> None:
        self.pair_trigger, self.pair_target, self.pair_weight = trigger.float(), target.float(), weight.float()

    def training_step(self, batch, batch_idx):
        (x,) = batch
        recon, out = self.rqvae.reconstruct(x)
        recon_loss = F.mse_loss(recon, x)
        loss = recon_loss + out.loss
        if self.config.contrastive_weight > 0 and len(self.pair_weight) > 1:
            pick = torch.multinomial(self.pair_weight.cpu(), min(len(x), len(self.pair_weight)),
                                     replacement=True, generator=self._generator).to(self.device)
            trig, _ = self.rqvae.reconstruct(self.pair_trigger[pick])
            targ, _ = self.rqvae.reconstruct(self.pair_target[pick])
            # cosine similarity; no item ids: a repeated pair stays a negative of the others
            nce = info_nce(F.normalize(trig, dim=1), F.normalize(targ, dim=1), self.config.temperature)
            loss = loss + self.config.contrastive_weight * nce
        with torch.no_grad():
            for level in range(self.config.levels):
                self._counts[level] += torch.bincount(out.codes[:, level].cpu(),
                                                      minlength=self.config.codebook_size)
            self._pool = [r.cpu() for r in out.residuals]
        return loss

    def on_train_epoch_end(self) -> None:
        last_epoch = self.current_epoch + 1 >= (self.trainer.max_epochs or 0)
        quantizer = self.rqvae.quantizer
        if not last_epoch and self._pool:  # never leave fresh, unused codes behind
            self.reset_count += quantizer.reset_dead_codes(
                self._counts.to(quantizer.codebooks.device), [p.to(self.device) for p in self._pool],
                self.config.dead_code_threshold, self._generator)
        self._counts.zero_()

    def on_train_epoch_start(self) -> None:
        self._reset_epoch_state(self.current_epoch)

    def _reset_epoch_state(self, epoch: int = 0) -> None:
        self._generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        self._counts = torch.zeros(self.config.levels, self.config.codebook_size, dtype=torch.long)
        self._pool: list[torch.Tensor] = []

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["reset_count"] = self.reset_count

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.reset_count = int(checkpoint.get("reset_count", 0))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.config.lr)


def fit_rqvae(
    x: np.ndarray,
    config: RQVAEConfig,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    kmeans_iters: int,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    init_state: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    ckpt_path: str | Path | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> RQVAEModule:
    """Train an RQ-VAE on x [N, in_dim]; pairs = (trigger_rows, target_rows, weights) into x.
    Returns the module (CPU, eval mode): the network is ``.rqvae``, ``.reset_count`` the dead
    codes re-seeded, ``.resumed_from`` the checkpoint file the fit continued from (or None).

    ``init_state`` (a previous ``RQVAE`` state_dict) warm-starts instead of PCA + k-means.
    ``checkpoint_dir`` gets Lightning's ``last.ckpt`` after every epoch; ``ckpt_path`` (a file)
    resumes from one (no init: the checkpoint holds the weights; its epochs are not run again).
    """
    if len(x) < config.codebook_size:
        raise ValueError(f"codebook.codebook_size={config.codebook_size} is larger than the item count "
                         f"{len(x)}; lower codebook.codebook_size to at most {len(x)}")
    L.seed_everything(seed, workers=True, verbose=False)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    module = RQVAEModule(config, seed=seed)
    resuming = ckpt_path is not None and epochs > 0  # trainer.fit restores weights, optimizer and epoch
    if not resuming and init_state is not None:
        module.rqvae.load_state_dict(init_state)
    elif not resuming:
        module.rqvae.init_from_data(xt, kmeans_iters, seed)
    if pairs is not None and len(pairs[0]) > 0:
        trig, targ, weight = pairs
        module.set_pairs(xt[torch.from_numpy(trig)], xt[torch.from_numpy(targ)], torch.from_numpy(weight))
    generator = torch.Generator()
    batches = BatchSampler(RandomSampler(range(len(xt)), generator=generator), min(batch_size, len(xt)), drop_last=False)
    sampler = EpochSeededSampler(batches, generator, seed, lambda: module.current_epoch)
    loader = DataLoader(TensorDataset(xt), sampler=sampler, batch_size=None)
    trainer = L.Trainer(max_epochs=epochs, accelerator="auto", devices=1, logger=False,
                        enable_checkpointing=checkpoint_dir is not None, callbacks=training_callbacks(checkpoint_dir, callbacks),
                        enable_progress_bar=False, enable_model_summary=False,
                        deterministic=True, num_sanity_val_steps=0)
    if epochs > 0:
        trainer.fit(module, train_dataloaders=loader, ckpt_path=str(ckpt_path) if ckpt_path else None)
        module.resumed_from = str(trainer.ckpt_path) if trainer.ckpt_path else None
    module = module.cpu().eval()
    if module.reset_count:
        log.info("dead-code reset re-seeded %d codes", module.reset_count)
    return module
