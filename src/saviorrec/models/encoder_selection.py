"""Choose the encoder on items it never trained on: the epoch and correction scale with the best cold hit@k.

Before the first epoch (the starting point: plain content for a fresh residual encoder, the previous
encoder for a warm start) and after every epoch, z of the whole catalog is scored on the cold pairs
(pairs touching an item whose pairs were held out of training) for each scale in
``encoder.correction_scales``. The best (epoch, scale) is kept in memory and restored when training
ends, so z is never further from plain content than the cold items show it should be: a scale of 0
is the MiniLM vector on its principal axes. Candidates are visited simplest first (by epoch, then
by scale from 0 up), and one replaces the kept choice only when it finds more cold targets by more
than ``margin`` standard errors of the query-by-query difference: with a few thousand cold pairs,
hit@30 moves by a few pairs from noise alone, and noise must not buy behavior the content cannot
support (a one-standard-error rule, shrinking towards plain content).
Training stops once ``encoder.patience`` epochs in a row have not raised the highest cold hit@k of
a trained epoch (the starting point does not count: a correction that starts at zero needs a few
epochs before it finds anything).
"""

from __future__ import annotations

import logging

import faiss
import lightning as L
import numpy as np
import pandas as pd
import torch

from saviorrec.metrics.retrieval import hits_at_k
from saviorrec.models.encoder import EncoderInputs, ItemEncoder

log = logging.getLogger(__name__)


class ColdSelection(L.Callback):
    def __init__(self, features: EncoderInputs, item_ids: np.ndarray, cold_pairs: pd.DataFrame, k: int,
                 scales: list[float], patience: int | None = None, margin: float = 1.0,
                 max_triggers: int | None = None, seed: int = 0):
        self.features = features
        self.margin = margin
        self.patience = patience
        self.item_ids = np.asarray(item_ids, np.int64)
        self.cold_pairs = cold_pairs
        self.k = k
        self.max_triggers, self.seed = max_triggers, seed  # hit@k's trigger sample (metrics.retrieval)
        self.scales = sorted(set(float(s) for s in scales))
        self.best: dict | None = None  # {"hit", "epoch", "scale"}
        self.peak: tuple[float, int] = (-1.0, 0)  # (highest cold hit of a trained epoch, that epoch): what patience waits on
        self.best_hits: np.ndarray | None = None  # per cold query, of the kept choice
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict] = []  # one row per (epoch, scale) scored

    def candidates(self, encoder: ItemEncoder) -> list[tuple[float | None, np.ndarray]]:
        """(scale, z) per candidate scale; a plain (non-residual) encoder has one candidate."""
        if not encoder.content_residual:
            return [(None, encoder.embed_features(self.features))]
        content, correction = encoder.embed_parts(self.features)
        out = []
        for scale in self.scales:
            z = content + scale * correction
            out.append((scale, z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)))
        return out

    def better(self, hits: np.ndarray) -> bool:
        """Does ``hits`` beat the kept choice's by more than ``margin`` standard errors?"""
        if self.best_hits is None:
            return True
        diff = hits.astype(np.float64) - self.best_hits
        if len(diff) < 2:
            return bool(diff.mean() > 0)
        return bool(diff.mean() > self.margin * diff.std(ddof=1) / np.sqrt(len(diff)))

    def score(self, encoder: ItemEncoder, epoch: int) -> float:
        best_here = -1.0
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # a threaded search may break a near-tie at rank k either way: same choice on any box
        try:
            scored = [(scale, hits_at_k(self.item_ids, z, self.cold_pairs, self.k,
                                         max_triggers=self.max_triggers, seed=self.seed)) for scale, z in self.candidates(encoder)]
        finally:
            faiss.omp_set_num_threads(threads)
        for scale, hits in scored:
            hit = float(hits.mean()) if len(hits) else 0.0
            self.history.append({"epoch": epoch, "scale": scale, "cold_hit": hit})
            best_here = max(best_here, hit)
            if epoch > 0 and hit > self.peak[0]:  # the starting point sets no peak: the correction starts at 0
                self.peak = (hit, epoch)
            if self.better(hits):
                self.best, self.best_hits = {"hit": hit, "epoch": epoch, "scale": scale}, hits.astype(np.float64)
                self.best_state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
        log.info("epoch %d: cold hit@%d %.4f (best %.4f at epoch %d, scale %s)", epoch, self.k, best_here,
                 self.best["hit"], self.best["epoch"], self.best["scale"])
        return best_here

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.best is None:  # not when resuming: the checkpoint brought the scores so far
            self.score(pl_module.encoder, trainer.current_epoch)
        elif self.patience and trainer.current_epoch - self.peak[1] >= self.patience:
            trainer.should_stop = True  # the interrupted fit had already stopped early

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        self.score(pl_module.encoder, epoch)
        if self.patience and epoch - self.peak[1] >= self.patience:
            log.info("no better cold hit@%d for %d epochs: stopping after epoch %d", self.k, self.patience, epoch)
            trainer.should_stop = True

    def restore(self, encoder: ItemEncoder) -> None:
        """Put the chosen epoch's weights and scale into ``encoder``."""
        if self.best_state is None:
            return
        encoder.load_state_dict(self.best_state)
        if encoder.content_residual and self.best["scale"] is not None:
            encoder.correction_scale.fill_(self.best["scale"])

    def state_dict(self) -> dict:
        # tensors, not numpy arrays: Lightning reads checkpoints with torch.load(weights_only=True)
        hits = None if self.best_hits is None else torch.from_numpy(self.best_hits)
        return {"best": self.best, "best_hits": hits, "peak": list(self.peak), "best_state": self.best_state, "history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best, self.best_state = state_dict.get("best"), state_dict.get("best_state")
        hits = state_dict.get("best_hits")
        self.best_hits = None if hits is None else hits.numpy()
        self.peak = tuple(state_dict.get("peak", (-1.0, 0)))
        self.history = list(state_dict.get("history", []))
