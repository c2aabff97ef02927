"""How deep the codebook must be for this catalog: fewer collisions need more levels.

A fixed L x K codebook collides more as the catalog grows: the share of items whose code
tuple is shared grows about in proportion to the item count, and each extra level of 256 codes
cuts it about ten-fold (docs/results.md, "Semantic-ID collisions against catalog size"). So the
depth is chosen from the catalog itself: residual k-means on the same PCA projection the RQ-VAE
starts from, one level at a time from ``codebook.levels``, stopping at the first depth whose
codes leave at most ``codebook.depth_collision_target`` of the items sharing a tuple (or at
``codebook.max_levels``). The RQ-VAE then trains at that depth; its own k-means init reruns
with the same seeds on the same projection and lands on these centroids, so the choice is what
the SIDs get.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch

from saviorrec.metrics.codebook import raw_collision_rate
from saviorrec.models.quantizer import kmeans_centroids, nearest
from saviorrec.models.rqvae import RQVAE, RQVAEConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepthChoice:
    levels: int
    collision_rate_by_depth: dict[int, float]  # the k-means init's collisions at each depth tried


def choose_depth(projected: np.ndarray, codebook_size: int, *, min_levels: int, max_levels: int,
                 target: float, iters: int, seed: int) -> DepthChoice:
    """The fewest levels in [min_levels, max_levels] whose residual k-means codes of ``projected``
    ([N, d], the RQ-VAE's PCA projection) collide for at most ``target`` of the rows."""
    residual = np.ascontiguousarray(projected, dtype=np.float32)
    codes: list[np.ndarray] = []
    rates: dict[int, float] = {}
    for level in range(max_levels):
        # the same seeds as ResidualQuantizer.init_kmeans, so the RQ-VAE starts from these codes
        centroids = kmeans_centroids(residual, codebook_size, iters, seed + level)
        assigned = nearest(torch.from_numpy(residual), torch.from_numpy(centroids)).numpy()
        codes.append(assigned)
        residual = residual - centroids[assigned]
        depth = level + 1
        if depth < min_levels:
            continue
        rates[depth] = raw_collision_rate(np.stack(codes, axis=1))
        if rates[depth] <= target:
            break
    chosen = max(rates)
    if rates[chosen] > target:
        log.warning("codebook: %d levels x %d codes still leave %.1f%% of %d items colliding (target %.1f%%): "
                    "raise codebook.max_levels or codebook.codebook_size", chosen, codebook_size,
                    100 * rates[chosen], len(projected), 100 * target)
    return DepthChoice(chosen, rates)


def projection(x: np.ndarray, config: RQVAEConfig) -> np.ndarray:
    """x through the RQ-VAE encoder as it starts (PCA on x), without touching the global RNG."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        network = RQVAE(replace(config, levels=1))
        network.init_linear_paths(xt)
        return network.encoder(xt).numpy()


def checkpoint_levels(ckpt_path, default: int) -> int:
    """The depth an interrupted fit was training at (its Lightning checkpoint's codebooks)."""
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False).get("state_dict", {})
    codebooks = state.get("rqvae.quantizer.codebooks")
    return int(codebooks.shape[0]) if codebooks is not None else default
