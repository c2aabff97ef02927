"""SaviorEnc's item encoder (the network): text + image + attributes -> behavior-aware embedding z.

    enc = load_item_encoder("artifacts/encoder")   # saviorrec.models.encoder_io
    z = enc.embed(items, data_dir)          # float32[N, embedding_dim], rows L2-normalised

z is computed from content only (no item ids), so it works for items listed today, unseen
attribute values (-> "unknown" row) and missing pictures (-> learned "no image" vector).
``z`` is L2-normalised: cosine similarity = dot product. The stage writes embeddings with
this same ``embed`` call. The config (:func:`encoder_config`) holds everything needed to
rebuild the network (dims, vocabularies, text model, image settings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from saviorrec.data.vectors import require_finite
from saviorrec.models.attributes import AttributeEmbedding, build_vocabularies, encode_attributes
from saviorrec.models.image import BackboneFeatures, ImageTower, load_images
from saviorrec.models.text import TEXT_DIM, text_features

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class EncoderInputs:
    """The encoder's precomputed per-item inputs; training batches index into them."""

    text: torch.Tensor       # float32[N, 384] MiniLM sentence vectors
    pixels: torch.Tensor     # float32[N, 3, S, S], or [N, F] backbone features
    has_image: torch.Tensor  # bool[N]
    attributes: torch.Tensor  # long[N, n_columns]

    def __len__(self) -> int:
        return len(self.text)

    def take(self, index: torch.Tensor) -> EncoderInputs:
        return EncoderInputs(self.text[index], self.pixels[index], self.has_image[index], self.attributes[index])

    def to(self, device: torch.device | str) -> EncoderInputs:
        return EncoderInputs(self.text.to(device), self.pixels.to(device), self.has_image.to(device), self.attributes.to(device))


def encoder_config(cfg, items: pd.DataFrame, previous: dict[str, Any] | None = None, backbone_features: int | None = None) -> dict[str, Any]:
    """The config.json payload for params.encoder ``cfg`` and a catalog (vocabularies grow from ``previous``)."""
    return {
        "format_version": FORMAT_VERSION,
        "text_model": cfg.text_model,
        "text_dim": TEXT_DIM,
        "text_batch_size": cfg.text_batch_size,
        "image_backbone": cfg.image_backbone,
        "image_size": cfg.image_size,
        "backbone_features": backbone_features,
        "vocabularies": build_vocabularies(items, (previous or {}).get("vocabularies")),
        "attribute_dim": cfg.attribute_dim,
        "hidden_dim": cfg.hidden_dim,
        "embedding_dim": cfg.embedding_dim,
        "dropout": cfg.dropout,
        # z = content + scale * behavior correction (see ItemEncoder); false: the paper's plain fusion
        "content_residual": bool(cfg.content_residual),
    }


def compatible(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Can ``new`` start from weights saved with ``old``? (same architecture; vocabularies may grow)."""
    keys = ["format_version", "text_model", "text_dim", "image_backbone", "image_size", "attribute_dim", "hidden_dim",
            "embedding_dim", "content_residual"]
    return all(old.get(k) == new.get(k) for k in keys) and all(
        new["vocabularies"].get(col, [])[: len(vals)] == vals for col, vals in old.get("vocabularies", {}).items()
    )


class ItemEncoder(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = config
        hidden = config["hidden_dim"]
        self.text = nn.Sequential(nn.Linear(config["text_dim"], hidden), nn.LayerNorm(hidden))
        self.image = ImageTower(hidden, config.get("backbone_features"))
        self.image_norm = nn.LayerNorm(hidden)
        self.attributes = AttributeEmbedding([len(v) for v in config["vocabularies"].values()], config["attribute_dim"])
        fused = 2 * hidden + self.attributes.out_dim
        self.fuse = nn.Sequential(
            nn.Linear(fused, hidden), nn.GELU(), nn.Dropout(config.get("dropout", 0.0)),
            nn.Linear(hidden, config["embedding_dim"]),
        )
        self._backbone: BackboneFeatures | None = None
        self.content_residual = bool(config.get("content_residual", False))
        if self.content_residual:
            # z = normalize(content + scale * correction). content: the MiniLM vector on its top
            # principal axes (as good as the full vector for nearest neighbours, measured in
            # docs/method.md); correction: the fusion network, starting at zero. ``scale`` is
            # chosen after training on items the encoder never saw (0 = plain content).
            self.register_buffer("text_mean", torch.zeros(config["text_dim"]))
            self.register_buffer("text_basis", torch.zeros(config["text_dim"], config["embedding_dim"]))
            self.register_buffer("correction_scale", torch.ones(()))
            nn.init.zeros_(self.fuse[-1].weight)
            nn.init.zeros_(self.fuse[-1].bias)

    def set_text_basis(self, text: np.ndarray, max_rows: int = 50_000) -> None:
        """The content part's projection: the top principal axes of the catalog's MiniLM vectors
        (eigenvectors of their covariance, signs fixed). Computed on one thread from at most
        ``max_rows`` evenly spaced rows, so the same catalog gives the same basis, bit for bit,
        whatever the thread count (on one machine and library build), in about a second at any
        catalog size."""
        dim = self.config["embedding_dim"]
        if dim > self.config["text_dim"] or len(text) <= dim:
            raise ValueError(f"encoder.embedding_dim={dim} needs more than {dim} listed items and at most "
                             f"{self.config['text_dim']} text dimensions (the content part is the text's top "
                             f"{dim} principal axes); got {len(text)} items: lower encoder.embedding_dim or "
                             "set encoder.content_residual: false")
        rows = np.unique(np.linspace(0, len(text) - 1, min(len(text), max_rows)).astype(np.int64))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a multi-threaded reduction changes the last bits, and eigh amplifies them
        try:
            x = torch.as_tensor(np.asarray(text, np.float64)[rows])
            mean = x.mean(0)
            cov = (x - mean).T @ (x - mean) / max(len(x) - 1, 1)
            _, vectors = torch.linalg.eigh(cov)
        finally:
            torch.set_num_threads(threads)
        basis = vectors[:, -self.config["embedding_dim"]:].flip(1)
        signs = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
        self.text_mean.copy_(mean.float())
        self.text_basis.copy_((basis * signs).float())

    def content(self, text: torch.Tensor) -> torch.Tensor:
        """The plain-content part of z: unit-length MiniLM vector on the principal axes."""
        return F.normalize((text - self.text_mean) @ self.text_basis, dim=1)

    def correction(self, feats: EncoderInputs) -> torch.Tensor:
        parts = [
            self.text(feats.text),
            self.image_norm(self.image(feats.pixels, feats.has_image)),
            self.attributes(feats.attributes),
        ]
        return self.fuse(torch.cat(parts, dim=1))

    # ---- network -------------------------------------------------------------------------
    def forward(self, feats: EncoderInputs, scale: float | torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised z; ``scale`` overrides the correction scale (training uses 1)."""
        correction = self.correction(feats)
        if not self.content_residual:
            return F.normalize(correction, dim=1)
        scale = self.correction_scale if scale is None else scale
        return F.normalize(self.content(feats.text) + scale * correction, dim=1)

    # ---- content -> features -------------------------------------------------------------
    def featurize(
        self,
        items: pd.DataFrame,
        data_dir: str | Path | None,
        text_vectors: np.ndarray | None = None,
        text_cache: str | Path | None = None,
    ) -> EncoderInputs:
        """Inputs for ``items`` rows. ``text_vectors`` (the MiniLM rows, if already computed)
        skips the text model; otherwise they come from ``text_cache`` or are encoded."""
        cfg = self.config
        if text_vectors is None:
            text_cfg = SimpleNamespace(text_model=cfg["text_model"], text_batch_size=cfg.get("text_batch_size", 128))
            text_vectors = text_features(items, text_cfg, text_cache)
        require_finite(np.asarray(text_vectors), items.get("item_id", np.arange(len(items))), "text features")
        pixels, has_image = load_images(items, data_dir, cfg["image_size"])
        if cfg["image_backbone"] != "cnn" and pixels.dim() == 4:  # [N, 0] = no pictures at all
            pixels = self.backbone_features(pixels)
        return EncoderInputs(
            torch.as_tensor(np.asarray(text_vectors, np.float32)), pixels, has_image,
            encode_attributes(items, cfg["vocabularies"]),
        )

    def backbone_features(self, pixels: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        if self._backbone is None:
            self._backbone = BackboneFeatures(self.config["image_backbone"])
        return torch.cat([self._backbone(pixels[i:i + batch_size]) for i in range(0, len(pixels), batch_size)] or
                         [torch.zeros(0, self.config["backbone_features"])])

    @torch.no_grad()
    def embed_features(self, feats: EncoderInputs, batch_size: int = 4096, scale: float | None = None) -> np.ndarray:
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [
            self(feats.take(torch.arange(i, min(i + batch_size, len(feats)))).to(device), scale).float().cpu()
            for i in range(0, len(feats), batch_size)
        ]
        self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, self.config["embedding_dim"]), np.float32)

    @torch.no_grad()
    def embed_parts(self, feats: EncoderInputs, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """(content, correction) of a residual encoder, each float32[N, embedding_dim], unscaled:
        z at any scale s is normalize(content + s * correction)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        contents, corrections = [], []
        for i in range(0, len(feats), batch_size):
            part = feats.take(torch.arange(i, min(i + batch_size, len(feats)))).to(device)
            contents.append(self.content(part.text).float().cpu())
            corrections.append(self.correction(part).float().cpu())
        self.train(was_training)
        return torch.cat(contents).numpy(), torch.cat(corrections).numpy()

    def embed(
        self,
        items: pd.DataFrame,
        data_dir: str | Path | None = None,
        *,
        text_vectors: np.ndarray | None = None,
        text_cache: str | Path | None = None,
    ) -> np.ndarray:
        """float32[N, embedding_dim], L2-normalised z for ``items`` rows (in order)."""
        z = self.embed_features(self.featurize(items, data_dir, text_vectors, text_cache))
        require_finite(z, items.get("item_id", np.arange(len(items))), "encoder embeddings")
        return z.astype(np.float32)

    # ---- warm start ----------------------------------------------------------------------
    def load_grown(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights saved with smaller vocabularies: old rows are copied, new rows keep their init."""
        own = self.state_dict()
        for key, value in state.items():
            if key not in own:
                continue
            if own[key].shape == value.shape:
                own[key].copy_(value)
            elif own[key].dim() == 2 and own[key].shape[1] == value.shape[1] and own[key].shape[0] > value.shape[0]:
                own[key][: value.shape[0]].copy_(value)
            else:
                raise ValueError(f"cannot warm-start {key}: saved shape {tuple(value.shape)} vs {tuple(own[key].shape)}")

