"""Score impressions with a trained ranker: ``score_events(model_ws, events, history, items)``.

``model_ws`` is any Workspace whose artifacts are the model (the current run, or a registry
bundle with the same layout): the ranker from ``model_ws.path("ranker")``, z / MiniLM vectors
and SIDs from its tables. Catalog items missing from those tables (listed after the encoder
ran) get them from content through ``semantic_ids.embed_and_assign``; item IDs the ranker never
saw use the OOV behavior row; history items unknown to the catalog have no content and no code.

Features are computed exactly as in training: history and counters replayed in time order
over ``history`` and then ``events`` themselves (each impression sees everything strictly
before its timestamp, including earlier scored impressions' outcomes).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from saviorrec.data.samples import (
    DENSE_FEATURES,
    LEGACY_DENSE_FEATURES,
    DaySamples,
    IdVocab,
    ItemFeatures,
    SampleBuilder,
    encode_batch,
    to_tensors,
)
from saviorrec.models.heuristic import heuristic_ctr
from saviorrec.models.ranker_artifacts import load_item_features, load_ranker
from saviorrec.models.ranker_module import RankerModule
from saviorrec.models.variants import VARIANTS
from saviorrec.workspace import Workspace

log = logging.getLogger(__name__)


def replay(events: pd.DataFrame, history: pd.DataFrame | None, items: pd.DataFrame, seq_len: int,
           chunk_rows: int = 20000, clusters: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
    """Yield DaySamples of ``events`` in time order, state built from ``history`` + earlier events.

    Consecutive days are processed together up to ``chunk_rows`` rows (sparse logs have many tiny days).
    """
    frames = [events.assign(_score=True)]
    if history is not None and len(history):
        history = history[~history["event_id"].isin(events["event_id"])]
        frames.insert(0, history.assign(_score=False))
    log_ = pd.concat(frames, ignore_index=True)
    day = pd.to_datetime(log_["ts"], utc=True).dt.strftime("%Y-%m-%d")
    builder = SampleBuilder(items, seq_len, clusters)
    pending: list[pd.DataFrame] = []
    rows = 0
    groups = list(log_.groupby(day, sort=True))
    for i, (_, frame) in enumerate(groups):
        pending.append(frame)
        rows += len(frame)
        if rows < chunk_rows and i < len(groups) - 1:
            continue
        chunk = pd.concat(pending, ignore_index=True)
        pending, rows = [], 0
        scored = chunk["_score"].to_numpy(bool)
        samples = builder.step(chunk, emit=bool(scored.any()))
        if samples is None:
            continue
        keep = np.flatnonzero(samples.frame["event_id"].isin(chunk.loc[scored, "event_id"]).to_numpy())
        yield samples.take(keep)


class Scorer:
    """A loaded ranker + item tables; ``predict(samples)`` -> (p_ctr, p_ctcvr)."""

    def __init__(self, module: RankerModule | None, meta: dict, vocab: IdVocab | None, features: ItemFeatures | None,
                 batch_size: int = 8192):
        """An in-memory ranker (``module`` None = ``heuristic``); :meth:`load` reads one from a workspace."""
        self.module, self.meta, self.vocab, self.features = module, meta, vocab, features
        self.spec = VARIANTS[meta["variant"]]
        self.batch_size = batch_size
        # models saved before a dense column was added read the columns they were trained on
        names = meta.get("dense_features", LEGACY_DENSE_FEATURES)
        self.dense_columns = [DENSE_FEATURES.index(n) for n in names]
        self.clusters = None if features is None else features.counter_clusters(sid=bool(meta.get("sid_counters")))

    @classmethod
    def load(cls, model_ws: Workspace, items: pd.DataFrame, batch_size: int = 8192) -> Scorer:
        module, meta, vocab = load_ranker(model_ws.path("ranker"))
        features = None if module is None else load_item_features(model_ws, meta, items)
        return cls(module, meta, vocab, features, batch_size)

    @torch.no_grad()
    def predict(self, samples: DaySamples) -> tuple[np.ndarray, np.ndarray]:
        k = self.meta["prior_strength"]
        if self.module is None:
            p_ctr = heuristic_ctr(samples, k)
            return p_ctr, p_ctr * (self.meta.get("conversion_per_click") or 1.0)
        module: RankerModule = self.module
        device = module.device
        arrays = encode_batch(samples, self.features, self.vocab, k)
        arrays["dense"] = arrays["dense"][:, self.dense_columns]
        out_ctr, out_ctcvr = [], []
        for start in range(0, len(samples), self.batch_size):
            batch = {key: v.to(device) for key, v in to_tensors({k_: a[start:start + self.batch_size] for k_, a in arrays.items()}).items()}
            ctr_logit, cvr_logit = module(batch)
            out_ctr.append(torch.sigmoid(ctr_logit).cpu().numpy())
            out_ctcvr.append((torch.sigmoid(ctr_logit) * torch.sigmoid(cvr_logit)).cpu().numpy())
        if not out_ctr:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(out_ctr), np.concatenate(out_ctcvr)


def score_events(model_ws: Workspace, events: pd.DataFrame, history: pd.DataFrame | None, items: pd.DataFrame) -> pd.DataFrame:
    """DataFrame[event_id, p_ctr, p_ctcvr] for ``events`` (same rows, time order)."""
    scorer = Scorer.load(model_ws, items)
    frames = []
    for samples in replay(events, history, items, scorer.meta["seq_len"], clusters=scorer.clusters):
        p_ctr, p_ctcvr = scorer.predict(samples)
        frames.append(pd.DataFrame({"event_id": samples.frame["event_id"].to_numpy(), "p_ctr": p_ctr.astype(np.float64),
                                    "p_ctcvr": p_ctcvr.astype(np.float64)}))
    if not frames:
        return pd.DataFrame({"event_id": pd.Series(dtype="int64"), "p_ctr": pd.Series(dtype=float), "p_ctcvr": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True)
