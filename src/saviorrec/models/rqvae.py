"""RQ-VAE on item embeddings: encoder MLP -> residual quantizer -> decoder MLP (the network).

Encoder and decoder are a linear path initialised from PCA plus an MLP correction whose last
layer starts at zero, and the codebooks start from residual k-means: before the first step the
model is exactly "PCA + residual k-means", so a few epochs only refine it (fast, and never worse
than the k-means it started from at reconstruction).

Training is :mod:`saviorrec.models.rqvae_module`; the saved model used for SIDs is
:mod:`saviorrec.models.codebook`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from saviorrec.config.model import Codebook as CodebookParams
from saviorrec.models.pca import principal_axes
from saviorrec.models.quantizer import QuantizerOutput, ResidualQuantizer


@dataclass(frozen=True)
class RQVAEConfig:
    in_dim: int
    latent_dim: int
    hidden_dim: int
    levels: int
    codebook_size: int
    commitment_weight: float = 0.25
    contrastive_weight: float = 0.1
    temperature: float = 0.1
    lr: float = 1e-3
    dead_code_threshold: int = 1

    @classmethod
    def from_params(cls, cb: CodebookParams, in_dim: int, **overrides) -> RQVAEConfig:
        fields = dict(in_dim=in_dim, latent_dim=cb.latent_dim, hidden_dim=cb.hidden_dim, levels=cb.levels,
                      codebook_size=cb.codebook_size, commitment_weight=cb.commitment_weight,
                      contrastive_weight=cb.contrastive_weight, temperature=cb.temperature, lr=cb.lr,
                      dead_code_threshold=cb.dead_code_threshold)
        fields.update(overrides)
        return cls(**fields)

    def shape(self) -> tuple[int, int, int, int]:
        """What must match for a warm start."""
        return (self.in_dim, self.latent_dim, self.levels, self.codebook_size)


class SkipMLP(nn.Module):
    """y = linear(x) + mlp(x); the MLP's last layer starts at zero (pure linear map at init)."""

    def __init__(self, d_in: int, d_out: int, hidden: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.mlp(x)


class RQVAE(nn.Module):
    def __init__(self, config: RQVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = SkipMLP(config.in_dim, config.latent_dim, config.hidden_dim)
        self.decoder = SkipMLP(config.latent_dim, config.in_dim, config.hidden_dim)
        self.quantizer = ResidualQuantizer(config.levels, config.codebook_size, config.latent_dim,
                                           config.commitment_weight)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, kmeans_iters: int, seed: int) -> None:
        """PCA for the linear paths, residual k-means (faiss) of the projected data for the codes."""
        self.init_linear_paths(x)
        self.quantizer.init_kmeans(self.encoder(x), kmeans_iters, seed)

    @torch.no_grad()
    def init_linear_paths(self, x: torch.Tensor) -> None:
        """Encoder = projection on x's principal axes, decoder = its transpose (MLPs start at zero)."""
        mean = x.mean(0)
        d = min(self.config.latent_dim, self.config.in_dim, len(x))
        axes = principal_axes(x, mean, d)
        proj = torch.zeros(self.config.latent_dim, self.config.in_dim)
        proj[:d] = axes
        self.encoder.linear.weight.copy_(proj)
        self.encoder.linear.bias.copy_(-proj @ mean)
        self.decoder.linear.weight.copy_(proj.T)
        self.decoder.linear.bias.copy_(mean)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        out = self.quantizer(self.encoder(x))
        return self.decoder(out.quantized), out

    @torch.no_grad()
    def assign(self, x: torch.Tensor, previous: torch.Tensor | None = None, margin: float = 0.0) -> torch.Tensor:
        h = self.encoder(x)
        if previous is None:
            return self.quantizer.assign(h)
        return self.quantizer.sticky_assign(h, previous, margin)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes))
