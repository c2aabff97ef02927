"""Categorical attributes (category, brand, price_bucket, attr_*) -> one embedding per column.

Row 0 of every table is "unknown/missing": values never seen in training (a new brand) or
nulls map there, so inference never fails on a new value. Vocabularies are stored in the
encoder's config.json and only ever grow (warm start appends new values as new rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

BASE_COLUMNS = ("category", "brand", "price_bucket")


def attribute_columns(items: pd.DataFrame) -> list[str]:
    return [c for c in BASE_COLUMNS if c in items] + sorted(c for c in items.columns if c.startswith("attr_"))


def _values(series: pd.Series) -> pd.Series:
    return series.astype("object").where(series.notna(), None)


def build_vocabularies(items: pd.DataFrame, previous: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """{column: [value, ...]} (index + 1 = row); previous vocabularies keep their rows."""
    vocabs = {col: list(values) for col, values in (previous or {}).items()}
    for col in attribute_columns(items):
        known = vocabs.setdefault(col, [])
        seen = set(known)
        new = sorted({str(v) for v in _values(items[col]).dropna().tolist() if str(v) != ""} - seen)
        known.extend(new)
    return vocabs


def encode_attributes(items: pd.DataFrame, vocabs: dict[str, list[str]]) -> torch.Tensor:
    """long[N, n_columns]: vocabulary row per (item, column); 0 = unknown or missing."""
    out = np.zeros((len(items), len(vocabs)), np.int64)
    for j, (col, values) in enumerate(vocabs.items()):
        if col not in items:
            continue
        index = {v: i + 1 for i, v in enumerate(values)}
        out[:, j] = [index.get(str(v), 0) if v is not None else 0 for v in _values(items[col]).tolist()]
    return torch.from_numpy(out)


class AttributeEmbedding(nn.Module):
    """One table per column (sizes from the vocabularies), concatenated."""

    def __init__(self, vocab_sizes: list[int], dim: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n + 1, dim) for n in vocab_sizes)
        for table in self.tables:  # the "unknown" row starts neutral; attribute dropout trains it
            nn.init.zeros_(table.weight[0:1])
        self.out_dim = dim * len(vocab_sizes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if not self.tables:
            return codes.new_zeros((codes.shape[0], 0), dtype=torch.float32)
        return torch.cat([table(codes[:, j]) for j, table in enumerate(self.tables)], dim=1)
