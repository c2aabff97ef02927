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

from saviorrec.models.variants import BLOCKS  # name -> (query/key space, value space)

POOLINGS = ("softmax", "sigmoid")


class TargetAttention(nn.Module):
    """``pooling="softmax"``: weights sum to 1 (a weighted mean of the sequence).
    ``pooling="sigmoid"``: DIN's un-normalised weights in (0, 1), summed and divided by the
    sequence length, so *how many* past clicks match the candidate survives the pooling
    (a softmax average looks the same for one matching click or ten)."""

    def __init__(self, dim: int, hidden: int = 32, pooling: str = "softmax"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown attention pooling {pooling!r}; expected one of {POOLINGS}")
        self.pooling = pooling
        self.score = nn.Sequential(nn.Linear(4 * dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def logits(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """score([q, k, q - k, q * k]) per position, [B, N].

        Same weights as the concatenated form, but the first layer is split by input block:
        W [q; k; q-k; q*k] = (Wq + Wd) q + (Wk - Wd) k + Wm (q * k). The query term is computed
        once per row instead of once per position: about half the work of the concatenation.
        """
        first, act, last = self.score
        w_q, w_k, w_d, w_m = first.weight.split(query.shape[-1], dim=1)
        per_row = nn.functional.linear(query, w_q + w_d, first.bias)
        pre = per_row.unsqueeze(1) + keys @ (w_k - w_d).T + (query.unsqueeze(1) * keys) @ w_m.T
        return last(act(pre)).squeeze(-1)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """query [B, d], keys [B, N, d], values [B, N, dv], mask [B, N] (True = valid) -> [B, dv].

        A user with no history gets a zero vector (not NaN).
        """
        logits = self.logits(query, keys)
        if self.pooling == "sigmoid":
            weights = torch.sigmoid(logits) * mask / keys.shape[1]
        else:
            logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
            weights = torch.softmax(logits, dim=-1) * mask
        return torch.einsum("bn,bnd->bd", weights, values)


class BiDirectionalAttention(nn.Module):
    """The chosen subset of the four blocks; outputs concatenated in BLOCKS order."""

    def __init__(self, blocks: list[str], dim: int, hidden: int = 32, pooling: str = "softmax"):
        super().__init__()
        unknown = set(blocks) - set(BLOCKS)
        if unknown:
            raise ValueError(f"unknown attention blocks {sorted(unknown)}; expected a subset of {list(BLOCKS)}")
        self.blocks = [b for b in BLOCKS if b in blocks]
        self.attn = nn.ModuleDict({b: TargetAttention(dim, hidden, pooling) for b in self.blocks})
        self.out_dim = dim * len(self.blocks)

    def forward(self, cand: dict[str, torch.Tensor], seq: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """cand[space]: [B, d]; seq[space]: [B, N, d] for space in {"behavior", "modal"}."""
        outs = []
        for name in self.blocks:
            qk, v = BLOCKS[name]
            outs.append(self.attn[name](cand[qk], seq[qk], seq[v], mask))
        return torch.cat(outs, dim=-1)
