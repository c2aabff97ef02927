"""Image tower: a small CNN on the item picture, or a frozen TorchScript backbone by path.

Pictures are read once into a float tensor [N, 3, S, S] in [0, 1] (S = encoder.image_size).
Items without a picture (no ``image_ref`` column, a null ref, or a file that does not exist:
MovieLens has none) get ``has_image = False`` and the tower returns a learned "no image"
vector for them instead, so the modality is masked rather than fed zeros.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

log = logging.getLogger(__name__)


def load_images(items: pd.DataFrame, data_dir: str | Path | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels float32[N, 3, size, size], has_image bool[N]) for ``items`` rows in order."""
    from PIL import Image

    pixels = np.zeros((len(items), 3, size, size), np.float32)
    has = np.zeros(len(items), bool)
    refs = items["image_ref"] if "image_ref" in items else pd.Series([None] * len(items))
    unresolved = 0
    for row, ref in enumerate(refs.tolist()):
        if ref is None or (isinstance(ref, float) and np.isnan(ref)) or data_dir is None or not str(ref):
            continue
        path = Path(data_dir) / str(ref)
        if not path.is_file():
            unresolved += 1
            continue
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            pixels[row] = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
        has[row] = True
    if unresolved:
        log.warning("%d image_ref(s) do not resolve under %s; those items are encoded as 'no image'", unresolved, data_dir)
    if not has.any():  # no pictures at all (MovieLens): no pixel memory, the tower masks every row
        return torch.zeros((len(items), 0)), torch.from_numpy(has)
    return torch.from_numpy(pixels), torch.from_numpy(has)


class SmallCNN(nn.Module):
    """Two conv blocks + global pooling: enough for colour/shape cues on small pictures."""

    def __init__(self, out_dim: int, channels: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, channels // 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels // 2, channels, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(channels, out_dim),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels)


class BackboneFeatures(nn.Module):
    """A frozen TorchScript backbone (``encoder.image_backbone`` = local path) -> flat features."""

    def __init__(self, path: str):
        super().__init__()
        if not Path(path).is_file():
            raise ValueError(f"encoder.image_backbone: {path!r} is not 'cnn' nor an existing TorchScript file")
        self.backbone = torch.jit.load(path, map_location="cpu").eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixels).flatten(1)


class ImageTower(nn.Module):
    """pixels -> [B, out_dim]; rows without a picture take the learned ``no_image`` vector.

    With a backbone, the (frozen) backbone features are computed once per item outside the
    training loop and the tower is a linear head on them (``in_features`` = their width).
    """

    def __init__(self, out_dim: int, backbone_features: int | None = None):
        super().__init__()
        self.head = SmallCNN(out_dim) if backbone_features is None else nn.Linear(backbone_features, out_dim)
        self.no_image = nn.Parameter(torch.zeros(out_dim))

    def forward(self, pixels: torch.Tensor, has_image: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(pixels), self.no_image.shape[0], dtype=self.no_image.dtype, device=pixels.device)
        if bool(has_image.any()):
            out[has_image] = self.head(pixels[has_image])
        return torch.where(has_image[:, None], out, self.no_image.expand_as(out))
