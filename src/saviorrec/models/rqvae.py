"""RQ-VAE on item embeddings: encoder MLP -> residual quantizer -> decoder MLP.

Loss = reconstruction of z + codebook/commitment + contrastive_weight * InfoNCE between the
*reconstructed* trigger and target embeddings of behavior pairs (method.md section 1).

Encoder and decoder are a linear path initialised from PCA plus an MLP correction whose last
layer starts at zero, and the codebooks start from residual k-means: before the first step the
model is exactly "PCA + residual k-means", so a few epochs only refine it (fast, and never worse
than the k-means it started from at reconstruction). ``load_codebook(dir).assign(z)`` gives SIDs.

Batches, contrastive pair draws and dead-code reseeding are seeded from (seed, epoch), so a fit
resumed from a Lightning checkpoint (``ckpt_path``) continues exactly like an uninterrupted one;
the checkpoint holds the trained state, so PCA + k-means init is not re-run over it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from saviorrec.models.checkpoints import EpochSeededSampler, epoch_seed, training_callbacks
from saviorrec.models.quantizer import ResidualQuantizer

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
ASSIGN_CHUNK = 65_536


@dataclass(frozen=True)
class RQVAEConfig:
    in_dim: int
    latent_dim: int
    hidden_dim: int
    levels: int
    codebook_size: int
    commitment_weight: float = 0.25
    contrastive_weight: float = 0.1
    temperature: float = 0.1
    lr: float = 1e-3
    dead_code_threshold: int = 1

    @classmethod
    def from_params(cls, cb, in_dim: int, **overrides) -> RQVAEConfig:
        fields = dict(in_dim=in_dim, latent_dim=cb.latent_dim, hidden_dim=cb.hidden_dim, levels=cb.levels,
                      codebook_size=cb.codebook_size, commitment_weight=cb.commitment_weight,
                      contrastive_weight=cb.contrastive_weight, temperature=cb.temperature, lr=cb.lr,
                      dead_code_threshold=cb.dead_code_threshold)
        fields.update(overrides)
        return cls(**fields)

    def shape(self) -> tuple[int, int, int, int]:
        """What must match for a warm start."""
        return (self.in_dim, self.latent_dim, self.levels, self.codebook_size)


class SkipMLP(nn.Module):
    """y = linear(x) + mlp(x); the MLP's last layer starts at zero (pure linear map at init)."""

    def __init__(self, d_in: int, d_out: int, hidden: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.mlp(x)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric in-batch InfoNCE: row i of a matches row i of b, the other rows are negatives."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = a @ b.T / temperature
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


class RQVAE(L.LightningModule):
    def __init__(self, config: RQVAEConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.encoder = SkipMLP(config.in_dim, config.latent_dim, config.hidden_dim)
        self.decoder = SkipMLP(config.latent_dim, config.in_dim, config.hidden_dim)
        self.quantizer = ResidualQuantizer(config.levels, config.codebook_size, config.latent_dim,
                                           config.commitment_weight)
        self.seed = seed
        self.register_buffer("pair_trigger", torch.zeros(0, config.in_dim), persistent=False)
        self.register_buffer("pair_target", torch.zeros(0, config.in_dim), persistent=False)
        self.register_buffer("pair_weight", torch.zeros(0), persistent=False)
        self.reset_count = 0
        self._reset_epoch_state()

    # ---- initialisation ------------------------------------------------------------------
    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, kmeans_iters: int, seed: int) -> None:
        """PCA for the linear paths, residual k-means (faiss) of the projected data for the codes."""
        mean = x.mean(0)
        centered = x - mean
        d = min(self.config.latent_dim, self.config.in_dim, len(x))
        # right singular vectors = principal axes; sign fixed for determinism across BLAS builds
        _, _, vt = torch.linalg.svd(centered.double(), full_matrices=False)
        axes = vt[:d].float()
        axes = axes * torch.sign(axes[:, axes.abs().argmax(1)].diagonal())[:, None]
        proj = torch.zeros(self.config.latent_dim, self.config.in_dim)
        proj[:d] = axes
        self.encoder.linear.weight.copy_(proj)
        self.encoder.linear.bias.copy_(-proj @ mean)
        self.decoder.linear.weight.copy_(proj.T)
        self.decoder.linear.bias.copy_(mean)
        self.quantizer.init_kmeans(self.encoder(x), kmeans_iters, seed)

    def set_pairs(self, trigger: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> None:
        self.pair_trigger, self.pair_target, self.pair_weight = trigger.float(), target.float(), weight.float()

    # ---- model -------------------------------------------------------------------------------
    def reconstruct(self, x: torch.Tensor):
        out = self.quantizer(self.encoder(x))
        return self.decoder(out.quantized), out

    def training_step(self, batch, batch_idx):
        (x,) = batch
        recon, out = self.reconstruct(x)
        recon_loss = F.mse_loss(recon, x)
        loss = recon_loss + out.loss
        if self.config.contrastive_weight > 0 and len(self.pair_weight) > 1:
            pick = torch.multinomial(self.pair_weight.cpu(), min(len(x), len(self.pair_weight)),
                                     replacement=True, generator=self._generator).to(self.device)
            trig, _ = self.reconstruct(self.pair_trigger[pick])
            targ, _ = self.reconstruct(self.pair_target[pick])
            loss = loss + self.config.contrastive_weight * info_nce(trig, targ, self.config.temperature)
        with torch.no_grad():
            for level in range(self.config.levels):
                self._counts[level] += torch.bincount(out.codes[:, level].cpu(),
                                                      minlength=self.config.codebook_size)
            self._pool = [r.cpu() for r in out.residuals]
        return loss

    def on_train_epoch_end(self) -> None:
        last_epoch = self.current_epoch + 1 >= (self.trainer.max_epochs or 0)
        if not last_epoch and self._pool:  # never leave fresh, unused codes behind
            self.reset_count += self.quantizer.reset_dead_codes(
                self._counts.to(self.quantizer.codebooks.device), [p.to(self.device) for p in self._pool],
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

    # ---- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def assign(self, x: torch.Tensor, previous: torch.Tensor | None = None, margin: float = 0.0) -> torch.Tensor:
        h = self.encoder(x)
        if previous is None:
            return self.quantizer.assign(h)
        return self.quantizer.sticky_assign(h, previous, margin)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes))


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
) -> RQVAE:
    """Train an RQ-VAE on x [N, in_dim]; pairs = (trigger_rows, target_rows, weights) into x.

    ``init_state`` (a previous model's state_dict) warm-starts instead of PCA + k-means.
    ``checkpoint_dir`` gets Lightning's ``last.ckpt`` after every epoch; ``ckpt_path`` resumes
    from one (no init: the checkpoint holds the weights; its epochs are not run again).
    """
    if len(x) < config.codebook_size:
        raise ValueError(f"codebook.codebook_size={config.codebook_size} is larger than the item count "
                         f"{len(x)}; lower codebook.codebook_size to at most {len(x)}")
    L.seed_everything(seed, workers=True, verbose=False)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    model = RQVAE(config, seed=seed)
    if ckpt_path is not None and epochs > 0:
        pass  # trainer.fit restores the interrupted run's weights, optimizer and epoch
    elif init_state is not None:
        model.load_state_dict(init_state)
    else:
        model.init_from_data(xt, kmeans_iters, seed)
    if pairs is not None and len(pairs[0]) > 0:
        trig, targ, weight = pairs
        model.set_pairs(xt[torch.from_numpy(trig)], xt[torch.from_numpy(targ)], torch.from_numpy(weight))
    generator = torch.Generator()
    batches = BatchSampler(RandomSampler(range(len(xt)), generator=generator), min(batch_size, len(xt)), drop_last=False)
    sampler = EpochSeededSampler(batches, generator, seed, lambda: model.current_epoch)
    loader = DataLoader(TensorDataset(xt), sampler=sampler, batch_size=None)
    trainer = L.Trainer(max_epochs=epochs, accelerator="auto", devices=1, logger=False,
                        enable_checkpointing=checkpoint_dir is not None, callbacks=training_callbacks(checkpoint_dir, callbacks),
                        enable_progress_bar=False, enable_model_summary=False,
                        deterministic=True, num_sanity_val_steps=0)
    if epochs > 0:
        trainer.fit(model, train_dataloaders=loader, ckpt_path=str(ckpt_path) if ckpt_path else None)
    model = model.cpu().eval()
    if model.reset_count:
        log.info("dead-code reset re-seeded %d codes", model.reset_count)
    return model


class Codebook:
    """A trained RQ-VAE for inference: z -> semantic-ID code tuples (and back)."""

    def __init__(self, model: RQVAE, meta: dict | None = None):
        self.model = model.cpu().eval()
        self.config = model.config
        self.meta = meta or {}

    @property
    def levels(self) -> int:
        return self.config.levels

    def _chunks(self, z: np.ndarray):
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.in_dim:
            raise ValueError(f"embeddings must be [N, {self.config.in_dim}], got {list(z.shape)}")
        if not np.isfinite(z).all():
            bad = np.flatnonzero(~np.isfinite(z).all(axis=1))
            raise ValueError(f"{len(bad)} embedding rows contain NaN/inf (row positions {bad[:10].tolist()})")
        for start in range(0, len(z), ASSIGN_CHUNK):
            yield start, torch.from_numpy(np.ascontiguousarray(z[start:start + ASSIGN_CHUNK]))

    def assign(self, z: np.ndarray, previous: np.ndarray | None = None, margin: float = 0.0) -> np.ndarray:
        """Codes [N, L] int32. ``previous`` ([N, L], -1 for unknown items) with ``margin`` > 0 keeps
        an item's previous codes while they quantize it within (1 + margin) of the best."""
        out = np.empty((len(z), self.levels), dtype=np.int32)
        with torch.inference_mode():
            for start, chunk in self._chunks(z):
                prev = None
                if previous is not None:
                    prev = torch.from_numpy(np.array(previous[start:start + len(chunk)], dtype=np.int64))
                out[start:start + len(chunk)] = self.model.assign(chunk, prev, margin).numpy()
        return out

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.decode_codes(torch.from_numpy(np.asarray(codes, dtype=np.int64))).numpy()

    def save(self, directory: Path, **meta) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"config": asdict(self.config), "meta": {**self.meta, **meta}}
        torch.save({"state_dict": self.model.state_dict(), **payload}, directory / MODEL_FILE)
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def load_codebook(directory: str | Path) -> Codebook:
    directory = Path(directory)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no codebook model at {path} (run the build_codebook stage)")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = RQVAE(RQVAEConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    return Codebook(model, blob.get("meta"))
