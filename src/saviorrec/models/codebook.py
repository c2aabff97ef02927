"""The saved RQ-VAE used for semantic IDs: ``load_codebook(dir).assign(z)`` gives the codes.

``<codebook>/model.pt`` holds the network's weights with its config and build facts
(``meta``); ``config.json`` the same config and meta, readable without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from saviorrec.data.vectors import nonfinite_rows
from saviorrec.file_integrity import load_torch
from saviorrec.models.rqvae import RQVAE, RQVAEConfig

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
ASSIGN_CHUNK = 65_536
# a damaged model is not a warm-start source; rebuilding it reassigns the SIDs, a person's call
REBUILD = "rebuild it with build_codebook --set codebook.full_rebuild=true (every SID is reassigned)"


class Codebook:
    """A trained RQ-VAE for inference: z -> semantic-ID code tuples (and back)."""

    def __init__(self, model: RQVAE, meta: dict | None = None):
        self.model = model.cpu().eval()
        self.config = model.config
        self.meta = meta or {}

    @property
    def levels(self) -> int:
        return self.config.levels

    def _chunks(self, z: np.ndarray):
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.in_dim:
            raise ValueError(f"embeddings must be [N, {self.config.in_dim}], got {list(z.shape)}")
        bad = np.flatnonzero(nonfinite_rows(z))
        if len(bad):
            raise ValueError(f"{len(bad)} embedding rows contain NaN/inf (row positions {bad[:10].tolist()})")
        for start in range(0, len(z), ASSIGN_CHUNK):
            yield start, torch.from_numpy(np.ascontiguousarray(z[start:start + ASSIGN_CHUNK]))

    def assign(self, z: np.ndarray, previous: np.ndarray | None = None, margin: float = 0.0) -> np.ndarray:
        """Codes [N, L] int32. ``previous`` ([N, L], -1 for unknown items) with ``margin`` > 0 keeps
        an item's previous codes while they quantize it within (1 + margin) of the best."""
        out = np.empty((len(z), self.levels), dtype=np.int32)
        with torch.inference_mode():
            for start, chunk in self._chunks(z):
                prev = None
                if previous is not None:
                    prev = torch.from_numpy(np.array(previous[start:start + len(chunk)], dtype=np.int64))
                out[start:start + len(chunk)] = self.model.assign(chunk, prev, margin).numpy()
        return out

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.decode_codes(torch.from_numpy(np.asarray(codes, dtype=np.int64))).numpy()

    def save(self, directory: Path, **meta) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"config": asdict(self.config), "meta": {**self.meta, **meta}}
        torch.save({"state_dict": self.model.state_dict(), **payload}, directory / MODEL_FILE)
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def load_codebook(directory: str | Path) -> Codebook:
    """The codebook saved in ``directory``; CorruptFileError when its model file is damaged."""
    directory = Path(directory)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no codebook model at {path} (run the build_codebook stage)")
    blob = load_torch(path, "codebook model", REBUILD, weights_only=False)
    model = RQVAE(RQVAEConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    return Codebook(model, blob.get("meta"))
