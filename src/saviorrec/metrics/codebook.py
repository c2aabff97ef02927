"""Codebook health: collisions, uniqueness, per-level utilization and entropy, reconstruction, churn."""

from __future__ import annotations

import numpy as np
import pandas as pd


def raw_collision_rate(codes: np.ndarray) -> float:
    """Share of items whose code tuple (before de-duplication) is shared with another item."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return 0.0
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.ravel()] > 1).mean())


def unique_fraction(sids: pd.Series | np.ndarray) -> float:
    """Distinct final IDs / items (1.0 when de-duplication worked)."""
    values = pd.Series(sids)
    return float(values.nunique() / len(values)) if len(values) else 1.0


def utilization(codes: np.ndarray, codebook_size: int) -> list[float]:
    """Per level: share of the K codes used by at least one item."""
    codes = np.asarray(codes)
    return [float(len(np.unique(codes[:, level])) / codebook_size) for level in range(codes.shape[1])]


def entropy(codes: np.ndarray, codebook_size: int) -> tuple[list[float], list[float]]:
    """Per level: Shannon entropy of the code distribution in bits, and that over log2(K)."""
    from scipy.stats import entropy as shannon

    bits, normalized = [], []
    for level in range(np.asarray(codes).shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        h = float(shannon(counts, base=2)) if counts.sum() else 0.0
        bits.append(h)
        normalized.append(h / np.log2(codebook_size))
    return bits, normalized


def reconstruction_mse(z: np.ndarray, reconstructed: np.ndarray) -> float:
    """Mean squared error per element between z and its reconstruction from the codes."""
    return float(np.mean((np.asarray(z, dtype=np.float64) - reconstructed) ** 2))


def churn(previous: pd.DataFrame | None, current: pd.DataFrame, column: str = "sid") -> float | None:
    """Share of previously known items (still in the catalog) whose ``column`` changed; None without history."""
    if previous is None or len(previous) == 0:
        return None
    joined = previous[["item_id", column]].merge(current[["item_id", column]], on="item_id",
                                                  suffixes=("_prev", "_now"))
    if len(joined) == 0:
        return None
    return float((joined[f"{column}_prev"].astype(str) != joined[f"{column}_now"].astype(str)).mean())


def codebook_report(z: np.ndarray, codes: np.ndarray, reconstructed: np.ndarray, sids: pd.DataFrame,
                    codebook_size: int, previous: pd.DataFrame | None) -> dict:
    bits, normalized = entropy(codes, codebook_size)
    return {
        "n_items": int(len(codes)),
        "raw_collision_rate": raw_collision_rate(codes),
        "unique_fraction": unique_fraction(sids["sid"]),
        "utilization": utilization(codes, codebook_size),
        "level1_utilization": utilization(codes[:, :1], codebook_size)[0] if len(codes) else 0.0,
        "entropy": bits,
        "entropy_normalized": normalized,
        "reconstruction_mse": reconstruction_mse(z, reconstructed),
        # error relative to the embedding's own variance: comparable across spaces and dims
        "reconstruction_mse_relative": reconstruction_mse(z, reconstructed) / max(float(np.var(z)), 1e-12),
        "max_dedup": int(sids["dedup"].max()) if len(sids) else 0,
        "churn": churn(previous, sids),
        # the same, ignoring the de-duplication digit
        "churn_codes": churn(previous.assign(codes_key=_tuple_key(previous)), sids.assign(codes_key=_tuple_key(sids)),
                             "codes_key") if previous is not None else None,
    }


def _tuple_key(sids: pd.DataFrame) -> pd.Series:
    levels = [c for c in sids.columns if c.startswith("c") and c[1:].isdigit()]
    return sids[levels].astype(str).agg("-".join, axis=1)
