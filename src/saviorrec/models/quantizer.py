"""Residual vector quantizer: L levels x K codes, k-means init, dead-code reset, STE.

Level l picks the nearest code to the current residual and subtracts it
(r^l = r^(l-1) - e^l[c^l]); the code tuple (c^1..c^L) is the semantic ID.
Codebooks are trained by gradient (codebook + commitment loss, VQ-VAE style) and
the encoder sees the quantized vector through a straight-through estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def kmeans_centroids(x: np.ndarray, k: int, iters: int, seed: int) -> np.ndarray:
    """k centroids of x (float32 [N, d]) with faiss k-means (deterministic for a fixed seed)."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) < k:
        raise ValueError(f"k-means needs at least as many points as codes: {len(x)} points < {k} codes")
    km = faiss.Kmeans(x.shape[1], k, niter=iters, seed=seed, verbose=False, spherical=False,
                      max_points_per_centroid=100_000, min_points_per_centroid=1)
    km.train(x)
    return km.centroids.copy()


def nearest(residual: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code (squared L2) for each row of residual."""
    # ||r||^2 is constant per row: argmin_k ||e_k||^2 - 2 r.e_k
    scores = (codebook * codebook).sum(1) - 2.0 * residual @ codebook.T
    return scores.argmin(dim=1)


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor       # straight-through quantized vector [B, d]
    codes: torch.Tensor           # [B, L] int64
    loss: torch.Tensor            # codebook + commitment_weight * commitment
    residuals: list[torch.Tensor]  # input residual of each level (detached), for dead-code reset


class ResidualQuantizer(nn.Module):
    def __init__(self, levels: int, codebook_size: int, dim: int, commitment_weight: float = 0.25):
        super().__init__()
        self.levels = levels
        self.codebook_size = codebook_size
        self.dim = dim
        self.commitment_weight = commitment_weight
        self.codebooks = nn.Parameter(torch.randn(levels, codebook_size, dim) * 0.01)

    @torch.no_grad()
    def init_kmeans(self, x: torch.Tensor, iters: int, seed: int) -> None:
        """Residual k-means: level l's codebook = k-means of the level-l residuals of x."""
        residual = x.detach().float().cpu().numpy().astype(np.float32)
        for level in range(self.levels):
            centroids = kmeans_centroids(residual, self.codebook_size, iters, seed + level)
            self.codebooks[level].copy_(torch.from_numpy(centroids))
            codes = nearest(torch.from_numpy(residual), self.codebooks[level].cpu()).numpy()
            residual = residual - centroids[codes]

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Greedy residual assignment: [B, d] -> codes [B, L] int64."""
        residual = x
        codes = []
        for level in range(self.levels):
            book = self.codebooks[level]
            idx = nearest(residual, book)
            codes.append(idx)
            residual = residual - book[idx]
        return torch.stack(codes, dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the chosen codes: codes [B, L] -> [B, d]."""
        return sum(self.codebooks[level][codes[:, level]] for level in range(self.levels))

    @torch.no_grad()
    def sticky_assign(self, x: torch.Tensor, previous: torch.Tensor, margin: float) -> torch.Tensor:
        """Greedy codes, except rows whose ``previous`` codes (-1 = none) still quantize x
        within (1 + margin) of the greedy error keep them: day-to-day SID stability."""
        greedy = self.assign(x)
        if margin <= 0:
            return greedy
        known = (previous >= 0).all(dim=1)
        if not known.any():
            return greedy
        prev = previous.clamp(min=0)
        err_greedy = ((x - self.lookup(greedy)) ** 2).sum(1)
        err_prev = ((x - self.lookup(prev)) ** 2).sum(1)
        keep = known & (err_prev <= (1.0 + margin) * err_greedy + 1e-12)
        return torch.where(keep[:, None], prev, greedy)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        residual = x
        quantized = torch.zeros_like(x)
        codebook_loss = x.new_zeros(())
        commitment_loss = x.new_zeros(())
        codes, residuals = [], []
        for level in range(self.levels):
            book = self.codebooks[level]
            idx = nearest(residual.detach(), book.detach())
            chosen = book[idx]
            # codebook term moves codes to residuals; commitment term keeps residuals near codes
            codebook_loss = codebook_loss + F.mse_loss(chosen, residual.detach())
            commitment_loss = commitment_loss + F.mse_loss(residual, chosen.detach())
            residuals.append(residual.detach())
            codes.append(idx)
            quantized = quantized + chosen
            residual = residual - chosen.detach()
        # straight-through: forward uses the codes, backward passes gradients to x
        # (the codebook gradient reaches codes through the codebook term only)
        straight = x + (quantized - x).detach()
        return QuantizerOutput(straight, torch.stack(codes, dim=1),
                               codebook_loss + self.commitment_weight * commitment_loss, residuals)

    @torch.no_grad()
    def reset_dead_codes(self, counts: torch.Tensor, residuals: list[torch.Tensor], threshold: int,
                         generator: torch.Generator) -> int:
        """Re-seed codes used fewer than ``threshold`` times with random residuals of that level."""
        if threshold <= 0:
            return 0
        reset = 0
        for level in range(self.levels):
            dead = torch.nonzero(counts[level] < threshold).flatten()
            pool = residuals[level]
            if len(dead) == 0 or len(pool) == 0:
                continue
            pick = torch.randint(len(pool), (len(dead),), generator=generator)
            self.codebooks[level, dead] = pool[pick.to(pool.device)].to(self.codebooks.dtype)
            reset += len(dead)
        return reset
