"""Symmetric in-batch InfoNCE, the contrastive loss of the encoder and of the RQ-VAE.

Row i of ``a`` and row i of ``b`` are a positive pair; every other row of the batch is a
negative. ``logits = a @ b.T / temperature``: pass L2-normalised rows for cosine similarity.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float,
             item_ids: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean of the a -> b and b -> a cross-entropies over the batch.

    ``item_ids`` (the items of the rows of ``a`` and of ``b``) turns on the duplicate mask: a row
    that is the same item as the positive or the anchor is not counted as a negative (pairs are
    drawn with replacement, so one item can sit in a batch several times). Without it every other
    row is a negative.
    """
    logits = a @ b.T / temperature
    if item_ids is not None:
        ids_a, ids_b = item_ids
        eye = torch.eye(len(a), dtype=torch.bool, device=a.device)
        same = ((ids_b[None, :] == ids_b[:, None]) | (ids_b[None, :] == ids_a[:, None])
                | (ids_a[None, :] == ids_a[:, None]) | (ids_a[:, None] == ids_b[None, :]))
        logits = logits.masked_fill(same & ~eye, torch.finfo(logits.dtype).min)
    labels = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
