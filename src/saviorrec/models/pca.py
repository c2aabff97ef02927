"""Principal axes of a large [N, d] matrix from its d x d scatter matrix.

An SVD of the centred matrix holds float64 copies of it and of U (N x d each): its peak RSS was
6.2x the input for 100k x 384 (tests/test_pca.py), about 9 GB for a million MiniLM vectors. The
scatter matrix, summed over row chunks in float64, needs d x d plus one chunk (1.4x there, and
flat in N), and its eigenvectors are the same axes to float64 rounding.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 16_384  # rows centred and cast to float64 at a time (48 MiB at d = 384)


def principal_axes(x: torch.Tensor, mean: torch.Tensor, k: int) -> torch.Tensor:
    """[k, d] float32 unit axes of ``x`` around ``mean``, by decreasing variance; each axis's sign
    makes its largest-magnitude entry positive, so BLAS builds agree."""
    scatter = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for start in range(0, len(x), CHUNK_ROWS):
        centred = (x[start:start + CHUNK_ROWS] - mean).double()
        scatter += centred.T @ centred
    _, vectors = torch.linalg.eigh(scatter)  # ascending eigenvalues, eigenvectors in columns
    axes = vectors.flip(1).T[:k].float()
    return axes * torch.sign(axes[torch.arange(len(axes)), axes.abs().argmax(1)])[:, None]
