"""DIN-style target attention and the four blocks of SaviorRec's bi-directional attention.

A target attention scores every sequence position against the candidate with a small MLP
over ``[q, k, q - k, q * k]`` (DIN), softmaxes the scores over the valid positions and
returns the weighted sum of the values. The four blocks differ only in which space the
query/key and the value come from (method.md section 3):

    Modal TA        q = candidate multimodal  k = sequence multimodal  v = sequence multimodal
    Modal2Behav TA  q = candidate multimodal  k = sequence multimodal  v = sequence behavior
    Behav2Modal TA  q = candidate behavior    k = sequence behavior    v = sequence multimodal
    Behavior TA     q = candidate behavior    k = sequence behavior    v = sequence behavior
"""

from __future__ import annotations

import torch
from torch import nn

BLOCKS = {
    # name: (query/key space, value space)
    "modal": ("modal", "modal"),
    "modal2behav": ("modal", "behavior"),
    "behav2modal": ("behavior", "modal"),
    "behavior": ("behavior", "behavior"),
}


class TargetAttention(nn.Module):
    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(4 * dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """query [B, d], keys [B, N, d], values [B, N, dv], mask [B, N] (True = valid) -> [B, dv].

        A user with no history gets a zero vector (not NaN).
        """
        q = query.unsqueeze(1).expand_as(keys)
        logits = self.score(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        weights = torch.softmax(logits, dim=-1) * mask
        return torch.einsum("bn,bnd->bd", weights, values)


class BiDirectionalAttention(nn.Module):
    """The chosen subset of the four blocks; outputs concatenated in BLOCKS order."""

    def __init__(self, blocks: list[str], dim: int, hidden: int = 32):
        super().__init__()
        unknown = set(blocks) - set(BLOCKS)
        if unknown:
            raise ValueError(f"unknown attention blocks {sorted(unknown)}; expected a subset of {list(BLOCKS)}")
        self.blocks = [b for b in BLOCKS if b in blocks]
        self.attn = nn.ModuleDict({b: TargetAttention(dim, hidden) for b in self.blocks})
        self.out_dim = dim * len(self.blocks)

    def forward(self, cand: dict[str, torch.Tensor], seq: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """cand[space]: [B, d]; seq[space]: [B, N, d] for space in {"behavior", "modal"}."""
        outs = []
        for name in self.blocks:
            qk, v = BLOCKS[name]
            outs.append(self.attn[name](cand[qk], seq[qk], seq[v], mask))
        return torch.cat(outs, dim=-1)
