"""Image tower: a small CNN on the item picture, or a frozen TorchScript backbone by path.

Pictures are read once into a float tensor [N, 3, S, S] in [0, 1] (S = encoder.image_size).
Items without a picture (no ``image_ref`` column, a null ref, or a file that does not exist:
MovieLens has none) get ``has_image = False`` and the tower returns a learned "no image"
vector for them instead, so the modality is masked rather than fed zeros. Each row is encoded
on its own: an item's picture (or its absence) never changes another item's z. A reference
that names no file is logged with the files it looked for; `saviorrec sid` / `score --items`
refuse such a catalog instead (:func:`unresolved_image_refs`), since the item would get
another z, and another SID, than with its picture.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

log = logging.getLogger(__name__)


def _given(ref) -> bool:
    """An image_ref that names a picture (not null, not empty)."""
    return isinstance(ref, str) and bool(ref)


def unresolved_image_refs(items: pd.DataFrame, data_dir: str | Path) -> list[str]:
    """The image_refs of ``items`` that name no file under ``data_dir`` (absolute refs as they are)."""
    if "image_ref" not in items:
        return []
    return [ref for ref in items["image_ref"].tolist() if _given(ref) and not (Path(data_dir) / ref).is_file()]


def load_images(items: pd.DataFrame, data_dir: str | Path | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels float32[N, 3, size, size], has_image bool[N]) for ``items`` rows in order."""
    from PIL import Image

    pixels = np.zeros((len(items), 3, size, size), np.float32)
    has = np.zeros(len(items), bool)
    refs = items["image_ref"] if "image_ref" in items else pd.Series([None] * len(items))
    unresolved: list[Path] = []
    for row, ref in enumerate(refs.tolist()):
        if not _given(ref) or data_dir is None:
            continue
        path = Path(data_dir) / ref  # an absolute ref stays as it is
        if not path.is_file():
            unresolved.append(path)
            continue
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            pixels[row] = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
        has[row] = True
    if unresolved:  # name the files looked for: refs may be absolute, data_dir is not always their base
        folders = sorted({str(path.parent) for path in unresolved})
        log.warning("%d of %d item picture(s) not found (e.g. %s; looked in %s); those items are encoded as "
                    "'no image'", len(unresolved), len(items), unresolved[0], ", ".join(folders[:3]))
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
