"""A trained ranker on disk: the files ``train_ranker`` writes and everything serving loads back.

Files in ``ws.path("ranker")``:
- ``config.json`` (:data:`META_FILE`): variant, model config, category vocabulary,
  ``trained_until``, sample settings, the counters and dense columns it was trained with;
- ``id_vocab.npy`` (:data:`ID_VOCAB_FILE`): item IDs owning a behavior-ID row (row = position + 2;
  0 pad, 1 OOV);
- ``model.ckpt`` (:data:`MODEL_FILE`): the Lightning checkpoint (absent for ``heuristic``);
- the content / text cluster centroids (``saviorrec.models.content_clusters.CENTROIDS_FILES``).

The item tables (z / MiniLM vectors, SIDs) are the model workspace's own; serving completes them
for catalog items listed after the encoder ran. Nothing here trains: scoring imports this
module, not ``ranker_training``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saviorrec.data.io import REWRITE, read_parquet
from saviorrec.data.samples import IdVocab, ItemFeatures, sid_columns
from saviorrec.file_integrity import load_npy, load_torch, read_json, require_torch_archive
from saviorrec.models import content_clusters
from saviorrec.models.ranker_module import RankerModule
from saviorrec.models.variants import VARIANTS, VariantSpec
from saviorrec.workspace import Workspace

log = logging.getLogger(__name__)

META_FILE = "config.json"
ID_VOCAB_FILE = "id_vocab.npy"
MODEL_FILE = "model.ckpt"

RETRAIN = content_clusters.RETRAIN  # what to do about any damaged file of a ranker
# the stage that writes each item table (what to rerun when one is damaged)
WRITTEN_BY = {"embeddings": "train_encoder", "text_features": "train_encoder", "sids": "build_codebook",
              "sids_generic": "build_codebook"}

# the plain text vectors alone (for the text clusters of variants whose item vectors are z)
TEXT_VECTORS = VariantSpec("text_features", None, False, ())
# embedding space of each item table, for the items missing from it (semantic_ids.embed_and_assign)
SPACE = {"embeddings": "behavior", "sids": "behavior", "text_features": "generic", "sids_generic": "generic"}


def read_meta(ranker_dir: str | Path) -> dict[str, Any] | None:
    """The ranker's ``config.json``, or None when there is no ranker in ``ranker_dir``."""
    path = Path(ranker_dir) / META_FILE
    return read_json(path, "ranker config", RETRAIN) if path.is_file() else None


def write_meta(ranker_dir: str | Path, meta: dict[str, Any]) -> None:
    (Path(ranker_dir) / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_id_vocab(ranker_dir: str | Path) -> np.ndarray:
    """The item IDs owning a behavior-ID row, as saved."""
    return load_npy(Path(ranker_dir) / ID_VOCAB_FILE, "ranker ID vocabulary", RETRAIN)


def read_checkpoint(ranker_dir: str | Path) -> dict[str, Any]:
    """The ranker's Lightning checkpoint (``model.ckpt``) as a dict: what a warm start reads."""
    return load_torch(Path(ranker_dir) / MODEL_FILE, "ranker checkpoint", RETRAIN, weights_only=False)


def save_id_vocab(ranker_dir: str | Path, vocab: IdVocab) -> None:
    np.save(Path(ranker_dir) / ID_VOCAB_FILE, vocab.item_ids)


def load_ranker(ranker_dir: str | Path) -> tuple[RankerModule | None, dict[str, Any], IdVocab | None]:
    """(module in eval mode or None for ``heuristic``, config.json, ID vocabulary)."""
    ranker_dir = Path(ranker_dir)
    meta = read_meta(ranker_dir)
    if meta is None:
        raise FileNotFoundError(f"no ranker at {ranker_dir} (config.json missing): run train_ranker first")
    if not VARIANTS[meta["variant"]].neural:
        return None, meta, None
    checkpoint = require_torch_archive(ranker_dir / MODEL_FILE, "ranker checkpoint", RETRAIN)
    module = RankerModule.load_from_checkpoint(checkpoint, map_location="cpu")
    module.eval()
    return module, meta, IdVocab(read_id_vocab(ranker_dir))


def _read_table(ws: Workspace, name: str) -> pd.DataFrame:
    path = ws.path(name)
    if not Path(path).exists():
        raise FileNotFoundError(f"{name} table not found at {path}: run the stage that writes it first")
    return read_parquet(path, fix=f"rerun {WRITTEN_BY[name]} to rewrite it" if name in WRITTEN_BY else REWRITE)


def item_tables(ws: Workspace, spec: VariantSpec, items: pd.DataFrame | None = None,
                fill_missing: bool = False) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The variant's (vectors, sids) tables from ``ws``; with ``fill_missing``, catalog items absent
    from them get z / SIDs from content via ``semantic_ids.embed_and_assign`` (no retraining)."""
    vectors = _read_table(ws, spec.content) if spec.content else None
    sids = _read_table(ws, spec.sids) if spec.sids else None
    if fill_missing and items is not None and (vectors is not None or sids is not None):
        have = [set(t["item_id"].astype("int64")) for t in (vectors, sids) if t is not None]
        missing = items[~items["item_id"].isin(set.intersection(*have))]
        if len(missing):
            # the content encoders load only when some item needs them
            from saviorrec.models.semantic_ids import embed_and_assign

            space = SPACE[spec.content or spec.sids]
            log.info("embedding %d catalog items missing from the %s tables", len(missing), space)
            new_vectors, new_sids = embed_and_assign(ws, missing, space=space)
            if vectors is not None:
                vectors = pd.concat([vectors[~vectors["item_id"].isin(new_vectors["item_id"])], new_vectors[["item_id", "vector"]]], ignore_index=True)
            if sids is not None:
                cols = ["item_id", *sid_columns(sids)]
                sids = pd.concat([sids[~sids["item_id"].isin(new_sids["item_id"])][cols], new_sids[cols]], ignore_index=True)
    return vectors, sids


def cluster_vectors(ws: Workspace, features: ItemFeatures, kind: str, items: pd.DataFrame,
                    fill_missing: bool = False) -> np.ndarray:
    """[N, d] vectors clustering ``kind`` groups, in ``features.item_ids`` order (zero = no content)."""
    if kind == "cl":
        return features.content[1:]
    vectors, _ = item_tables(ws, TEXT_VECTORS, items, fill_missing=fill_missing)
    return ItemFeatures.build(items, np.array([], dtype=object), vectors, None).content[1:]


def load_item_features(model_ws: Workspace, meta: dict[str, Any], items: pd.DataFrame) -> ItemFeatures:
    """The item inputs of the ranker ``meta`` describes, for every item of ``items``: its tables
    completed for new items, and each content clustering it was trained with, assigned by the
    saved centroids (the same clusters as in training)."""
    ranker_dir = model_ws.path("ranker")
    vectors, sids = item_tables(model_ws, VARIANTS[meta["variant"]], items, fill_missing=True)
    features = ItemFeatures.build(items, np.array(meta["category_vocab"], dtype=object), vectors, sids)
    for kind, key in content_clusters.META_KEYS.items():
        if not meta.get(key):
            continue
        centroids = content_clusters.load(ranker_dir, kind)
        if centroids is None:
            raise FileNotFoundError(f"ranker at {ranker_dir} uses {key.replace('_', ' ')} but "
                                    f"{content_clusters.CENTROIDS_FILES[kind]} is missing")
        vectors = cluster_vectors(model_ws, features, kind, items, fill_missing=True)
        features.set_clusters(kind, content_clusters.assign(vectors, centroids))
    return features
