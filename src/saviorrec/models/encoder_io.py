"""The saved item encoder: ``<encoder>/config.json`` (everything needed to rebuild the network:
dims, vocabularies, text model, image settings) and ``model.pt`` (its weights).

    enc = load_item_encoder("artifacts/encoder")
    z = enc.embed(items, data_dir)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from saviorrec.atomic_files import atomic_path, write_text_atomic
from saviorrec.file_integrity import load_torch, read_json
from saviorrec.models.encoder import ItemEncoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
# a damaged encoder is no warm-start source; a fresh one moves z (and then the SIDs), a person's call
RETRAIN = "retrain it with train_encoder --set encoder.warm_start=false"


def save_item_encoder(encoder: ItemEncoder, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # the image backbone is a packaged pretrained model: rebuilt from the config, not saved
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items() if not k.startswith("_backbone.")}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        torch.save(state, tmp)
    # column order of the vocabularies = table order: never sort the keys
    write_text_atomic(directory / CONFIG_FILE, json.dumps(encoder.config, indent=2) + "\n")
    return directory


def read_config(directory: str | Path) -> dict[str, Any] | None:
    """The saved encoder's config, None when ``directory`` holds no complete encoder."""
    path = Path(directory) / CONFIG_FILE
    complete = path.is_file() and (Path(directory) / WEIGHTS_FILE).is_file()
    return read_json(path, "encoder config", RETRAIN) if complete else None


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    return load_torch(Path(directory) / WEIGHTS_FILE, "encoder weights", RETRAIN, weights_only=True)


def load_item_encoder(directory: str | Path) -> ItemEncoder:
    """Rebuild the encoder saved by the train_encoder stage (CPU, eval mode)."""
    config = read_config(directory)
    if config is None:
        raise FileNotFoundError(f"no trained encoder in {directory} (expected {CONFIG_FILE} and {WEIGHTS_FILE}); run train_encoder")
    encoder = ItemEncoder(config)
    encoder.load_state_dict(read_weights(directory))
    return encoder.eval()
