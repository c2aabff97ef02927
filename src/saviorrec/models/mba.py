"""MBA block (Modal-Behavior Alignment): z~ = z + FusionMLP([A^1[c^1]; ...; A^L[c^L]]).

One trainable table A^l per SID level, one row per code, initialised at ZERO, and a fusion
MLP without biases whose hidden activation is GELU (GELU(0) = 0 with slope 1/2): at
initialisation the block is exactly the identity on z (day one = the plain content
embedding), yet gradients reach the tables from the first step.

Items without a code (``c = -1``: unknown item, missing SID) read the extra last row of each
table, which is also trained.

Codebook refresh: rows belong to *codes*, not items. After the codebook is rebuilt, an item
whose SID is unchanged keeps exactly its learned residual; an item whose SID changed reads
the rows of its new codes, i.e. what the ranker learned for the cluster that code stood for
(warm-started codebooks keep codes' meaning close, so this is a small shift; a
``codebook.full_rebuild`` re-draws the codes, and the rows then only carry over by index
until the next ranker training re-learns them). Nothing is re-keyed by item.
"""

from __future__ import annotations

import torch
from torch import nn


class MBA(nn.Module):
    def __init__(self, levels: int, codebook_size: int, content_dim: int, code_dim: int, hidden: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.tables = nn.ModuleList(nn.Embedding(codebook_size + 1, code_dim) for _ in range(levels))
        for table in self.tables:
            nn.init.zeros_(table.weight)
        self.fusion = nn.Sequential(
            nn.Linear(levels * code_dim, hidden, bias=False),
            nn.GELU(),
            nn.Linear(hidden, content_dim, bias=False),
        )

    def forward(self, z: torch.Tensor, sid: torch.Tensor) -> torch.Tensor:
        """z: [..., content_dim] frozen content; sid: [..., L] codes (-1 = none)."""
        codes = torch.where((sid < 0) | (sid >= self.codebook_size), torch.full_like(sid, self.codebook_size), sid)
        looked_up = [table(codes[..., level]) for level, table in enumerate(self.tables)]
        return z + self.fusion(torch.cat(looked_up, dim=-1))
