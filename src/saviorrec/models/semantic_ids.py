"""Semantic-ID tables: code tuples + a de-duplication digit -> unique "c1-c2-c3-dedup" strings.

The dedup digit is stable: an item whose code tuple did not change keeps its previous digit, and
new items take the smallest digit not held by another item with the same tuple, so a daily
rebuild or an ad-hoc assignment for new items never collides with an existing SID.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from saviorrec.data.vectors import require_finite, vectors_frame
from saviorrec.workspace import Workspace

log = logging.getLogger(__name__)

SPACES = {  # space -> (embeddings path name, sids path name, codebook sub-directory)
    "behavior": ("embeddings", "sids", ""),
    "generic": ("text_features", "sids_generic", "generic"),
}


def code_columns(levels: int) -> list[str]:
    return [f"c{level + 1}" for level in range(levels)]


def levels_of(table: pd.DataFrame) -> list[str]:
    return sorted((c for c in table.columns if c[:1] == "c" and c[1:].isdigit()), key=lambda c: int(c[1:]))


def assign_dedup(item_ids: np.ndarray, codes: np.ndarray, previous: pd.DataFrame | None = None,
                 reserve_absent: bool = False) -> np.ndarray:
    """The dedup digit per item (int32), unique within each code tuple.

    ``previous`` (a SID table) makes digits sticky: an item with the same tuple as before keeps its
    digit. With ``reserve_absent`` the digits of previous items not in ``item_ids`` stay taken (adding
    new items to an existing catalog); otherwise they are free (a rebuild of the whole catalog).
    """
    cols = code_columns(codes.shape[1])
    df = pd.DataFrame(codes, columns=cols).assign(item_id=np.asarray(item_ids, dtype=np.int64))
    df["dedup"] = -1
    frames = []
    if previous is not None and len(previous) and levels_of(previous) == cols:
        prev = previous[["item_id", *cols, "dedup"]].astype("int64")
        same = df.drop(columns="dedup").astype("int64").merge(prev, on=["item_id", *cols], how="left")["dedup"]
        df["dedup"] = same.fillna(-1).astype(np.int64).to_numpy()
        if reserve_absent:
            frames.append(prev[~prev["item_id"].isin(df["item_id"])][[*cols, "dedup"]])
    frames.append(df.loc[df["dedup"] >= 0, [*cols, "dedup"]].astype("int64"))
    taken = pd.concat(frames, ignore_index=True)
    todo = df[df["dedup"] < 0].sort_values("item_id", kind="stable")
    if len(todo):
        busy = taken.merge(todo[cols].drop_duplicates().astype("int64"), on=cols)
        order = todo.groupby(cols, sort=False).cumcount().to_numpy()
        if len(busy) == 0:  # fast path: no tuple of a new item is held yet
            df.loc[todo.index, "dedup"] = order
        else:
            held = busy.groupby(cols)["dedup"].agg(lambda s: set(int(v) for v in s)).to_dict()
            digits = []
            for key, group in todo.groupby(cols, sort=False):
                used = held.get(key if isinstance(key, tuple) else (key,), set())
                free = (d for d in range(len(group) + len(used) + 1) if d not in used)
                digits.append(pd.Series([next(free) for _ in range(len(group))], index=group.index))
            df.loc[todo.index, "dedup"] = pd.concat(digits).loc[todo.index].to_numpy()
    return df["dedup"].to_numpy(dtype=np.int32)


def sid_table(item_ids: np.ndarray, codes: np.ndarray, previous: pd.DataFrame | None = None,
              reserve_absent: bool = False) -> pd.DataFrame:
    """item_id, c1..cL (int32), dedup (int32), sid ("c1-...-cL-dedup"), sorted by item_id."""
    codes = np.asarray(codes, dtype=np.int32)
    cols = code_columns(codes.shape[1])
    table = pd.DataFrame(codes, columns=cols)
    table.insert(0, "item_id", np.asarray(item_ids, dtype=np.int64))
    table["dedup"] = assign_dedup(item_ids, codes, previous, reserve_absent)
    parts = [table[c].astype(str) for c in [*cols, "dedup"]]
    table["sid"] = parts[0].str.cat(parts[1:], sep="-").astype("str")
    return table.sort_values("item_id", kind="stable").reset_index(drop=True)


def previous_codes(item_ids: np.ndarray, previous: pd.DataFrame | None, levels: int) -> np.ndarray | None:
    """Previous codes aligned to item_ids ([N, L], -1 for items without a previous SID)."""
    if previous is None or len(previous) == 0 or len(levels_of(previous)) != levels:
        return None
    cols = code_columns(levels)
    aligned = pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64)}).merge(
        previous[["item_id", *cols]], on="item_id", how="left")
    return aligned[cols].fillna(-1).to_numpy(dtype=np.int64)


def embed_and_assign(model_ws: Workspace, items: pd.DataFrame, space: str = "behavior") -> tuple[pd.DataFrame, pd.DataFrame]:
    """z (or plain MiniLM for ``space="generic"``) and SIDs for catalog items, with no retraining.

    Items already in the model's SID table keep their stored vector and SID; new items are embedded
    from content alone and get SIDs whose dedup digit avoids every existing SID.
    Returns (embeddings_df[item_id, vector], sids_df[item_id, c1..cL, dedup, sid]) in ``items`` order.
    """
    from saviorrec.models.codebook import load_codebook

    if space not in SPACES:
        raise ValueError(f"space must be one of {sorted(SPACES)}, got {space!r}")
    vectors_name, sids_name, sub = SPACES[space]
    codebook = load_codebook(Path(model_ws.path("codebook")) / sub)
    ids = items["item_id"].astype("int64").to_numpy()
    existing = _read_optional(model_ws.path(sids_name))
    stored = _read_optional(model_ws.path(vectors_name))
    known = np.isin(ids, existing["item_id"].to_numpy()) if existing is not None else np.zeros(len(ids), bool)
    if stored is not None:
        known &= np.isin(ids, stored["item_id"].to_numpy())

    new_items = items[~known]
    new_vectors = np.zeros((0, codebook.config.in_dim), dtype=np.float32)
    if len(new_items):
        if space == "behavior":
            from saviorrec.models.encoder_io import load_item_encoder

            encoder = load_item_encoder(model_ws.path("encoder"))
            new_vectors = encoder.embed(new_items, model_ws.path("data"))
        else:
            from saviorrec.models.text import text_features

            new_vectors = text_features(new_items, model_ws.params.encoder, model_ws.path("text_cache"))
        new_vectors = require_finite(np.asarray(new_vectors, dtype=np.float32), new_items["item_id"].to_numpy(),
                                     "new items' embeddings")
    new_ids = new_items["item_id"].astype("int64").to_numpy()
    new_sids = sid_table(new_ids, codebook.assign(new_vectors), existing, reserve_absent=True) if len(new_ids) \
        else None

    frames_z = [vectors_frame(new_ids, new_vectors)]
    frames_sid = [new_sids] if new_sids is not None else []
    if known.any():
        frames_z.append(stored[stored["item_id"].isin(ids[known])])
        frames_sid.append(existing[existing["item_id"].isin(ids[known])])
    order = pd.DataFrame({"item_id": ids})
    emb = order.merge(pd.concat(frames_z, ignore_index=True), on="item_id", how="left")
    sids = order.merge(pd.concat(frames_sid, ignore_index=True), on="item_id", how="left")
    cols = levels_of(sids)
    sids[[*cols, "dedup"]] = sids[[*cols, "dedup"]].astype("int32")
    return emb, sids


def _read_optional(path) -> pd.DataFrame | None:
    from saviorrec.data import io

    return io.read_parquet(path) if Path(path).exists() else None
