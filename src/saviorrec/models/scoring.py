"""Score impressions with a trained ranker: ``score_events(model_ws, events, history, items)``.

``model_ws`` is any Workspace whose artifacts are the model (the current run, or a registry
bundle with the same layout): the ranker from ``model_ws.path("ranker")``, z / MiniLM vectors
and SIDs from its tables. Catalog items missing from those tables (listed after the encoder
ran) get them from content through ``semantic_ids.embed_and_assign``; item IDs the ranker never
saw use the OOV behavior row; history items unknown to the catalog have no content and no code.

Features are computed exactly as in training: history and counters replayed in time order
over ``history`` and then ``events`` themselves (each impression sees everything strictly
before its timestamp, including earlier scored impressions' outcomes). :func:`read_window` and
:meth:`EvaluationWindow.score` do the same for a workspace's evaluation window with the history
streamed from its day partitions, never held whole.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saviorrec.data.io import iter_event_days, list_days, read_events
from saviorrec.data.samples import (
    DENSE_FEATURES,
    LEGACY_DENSE_FEATURES,
    DaySamples,
    IdVocab,
    ItemFeatures,
    SampleBuilder,
    encode_rows,
    to_tensors,
    with_item_features,
)
from saviorrec.models.heuristic import heuristic_ctr
from saviorrec.models.ranker_artifacts import load_item_features, load_ranker
from saviorrec.models.ranker_module import RankerModule
from saviorrec.models.variants import VARIANTS
from saviorrec.progress import Progress
from saviorrec.workspace import StageError, Workspace

log = logging.getLogger(__name__)


def replay(events: pd.DataFrame, history: pd.DataFrame | None, items: pd.DataFrame, seq_len: int,
           chunk_rows: int = 20000, clusters: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
    """Yield DaySamples of ``events`` in time order, state built from ``history`` + earlier events."""
    frames = [events.assign(_score=True)]
    if history is not None and len(history):
        history = history[~history["event_id"].isin(events["event_id"])]
        frames.insert(0, history.assign(_score=False))
    log_ = pd.concat(frames, ignore_index=True)
    day = pd.to_datetime(log_["ts"], utc=True).dt.strftime("%Y-%m-%d")
    yield from replay_days((frame for _, frame in log_.groupby(day, sort=True)), items, seq_len, chunk_rows, clusters)


def replay_days(days: Iterable[pd.DataFrame], items: pd.DataFrame, seq_len: int, chunk_rows: int = 20000,
                clusters: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Iterator[DaySamples]:
    """Yield DaySamples of the rows to score of ``days`` (day frames in time order, a bool ``_score``
    column: False rows only feed the state), one chunk of days in memory at a time.

    Consecutive days are processed together up to ``chunk_rows`` rows (sparse logs have many tiny days).
    """
    builder = SampleBuilder(items, seq_len, clusters)
    pending: list[pd.DataFrame] = []
    rows = 0
    for frame in days:
        pending.append(frame)
        rows += len(frame)
        if rows >= chunk_rows:
            yield from _replay_chunk(builder, pending)
            pending, rows = [], 0
    if pending:
        yield from _replay_chunk(builder, pending)


def _replay_chunk(builder: SampleBuilder, frames: list[pd.DataFrame]) -> Iterator[DaySamples]:
    chunk = pd.concat(frames, ignore_index=True)
    scored = chunk["_score"].to_numpy(bool)
    samples = builder.step(chunk, emit=bool(scored.any()))
    if samples is not None:
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
        arrays = encode_rows(samples, self.features, self.vocab, k)
        arrays["dense"] = arrays["dense"][:, self.dense_columns]
        out_ctr, out_ctcvr = [], []
        for start in range(0, len(samples), self.batch_size):
            rows = {k_: a[start:start + self.batch_size] for k_, a in arrays.items()}
            batch = {key: v.to(device) for key, v in to_tensors(with_item_features(rows, self.features)).items()}
            ctr_logit, cvr_logit = module(batch)
            out_ctr.append(torch.sigmoid(ctr_logit).cpu().numpy())
            out_ctcvr.append((torch.sigmoid(ctr_logit) * torch.sigmoid(cvr_logit)).cpu().numpy())
        if not out_ctr:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(out_ctr), np.concatenate(out_ctcvr)


def score_events(model_ws: Workspace, events: pd.DataFrame, history: pd.DataFrame | None, items: pd.DataFrame) -> pd.DataFrame:
    """DataFrame[event_id, p_ctr, p_ctcvr] for ``events`` (same rows, time order)."""
    scorer = Scorer.load(model_ws, items)
    return _predictions(scorer, replay(events, history, items, scorer.meta["seq_len"], clusters=scorer.clusters))


def score_days(model_ws: Workspace, days: Iterable[pd.DataFrame], items: pd.DataFrame) -> pd.DataFrame:
    """:func:`score_events` over day frames streamed in time order (see :func:`replay_days`): the rows
    whose ``_score`` is True are scored, the others only feed the state; one chunk of days in memory."""
    scorer = Scorer.load(model_ws, items)
    return _predictions(scorer, replay_days(days, items, scorer.meta["seq_len"], clusters=scorer.clusters))


def _predictions(scorer: Scorer, replayed: Iterable[DaySamples]) -> pd.DataFrame:
    frames = []
    for samples in replayed:
        p_ctr, p_ctcvr = scorer.predict(samples)
        frames.append(pd.DataFrame({"event_id": samples.frame["event_id"].to_numpy(), "p_ctr": p_ctr.astype(np.float64),
                                    "p_ctcvr": p_ctcvr.astype(np.float64)}))
    if not frames:
        return pd.DataFrame({"event_id": pd.Series(dtype="int64"), "p_ctr": pd.Series(dtype=float), "p_ctcvr": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class EvaluationWindow:
    """A workspace's evaluation window and what its history contributes, the history streamed.

    Only the window's own events are held (the metrics need every row); the days before it are
    read one partition at a time, to count impressions per item and to replay the user state a
    model scores the window with, so memory grows with the catalog and users, not with the log.
    """

    events_root: str | Path
    train_end: dt.date
    eval_end: dt.date
    history_days: list[dt.date]
    events: pd.DataFrame           # the window's events, in (ds, ts, event_id) order
    train_impressions: pd.Series   # item_id -> impressions before train_end (the item buckets)

    def score(self, model_ws: Workspace, items: pd.DataFrame) -> pd.DataFrame:
        """DataFrame[event_id, p_ctr, p_ctcvr] of the window's events by ``model_ws``'s ranker, each
        impression seeing everything strictly before it (the whole history, replayed day by day)."""
        return score_days(model_ws, self._replayed_days(), items)

    def _replayed_days(self) -> Iterator[pd.DataFrame]:
        window_days = list(self.events.groupby("ds", sort=True))
        window_ids = self.events["event_id"]
        with Progress(f"scoring {len(window_days)} window days after {len(self.history_days)} days of history",
                      total=len(self.history_days) + len(window_days), unit="day") as bar:
            for _, day in iter_event_days(self.events_root, end=self.train_end):
                yield day.loc[~day["event_id"].isin(window_ids)].assign(_score=False)  # a window event is scored, once
                bar.update(1)
            for _, day in window_days:
                yield day.assign(_score=True)
                bar.update(1)


def read_window(ws: Workspace) -> EvaluationWindow:
    """``ws``'s evaluation window [train_end, eval_end): its events, and its history's impressions per
    item counted one day partition at a time."""
    train_end, eval_end = ws.split()
    root = ws.path("events")
    days = list_days(root)
    if not any(train_end <= d < eval_end for d in days):
        raise StageError(f"no events in the evaluation window [{train_end}, {eval_end}) under {root}")
    history_days = [d for d in days if d < train_end]
    counts = pd.Series(dtype="int64", index=pd.Index([], dtype="int64", name="item_id"), name="count")
    for _, day in iter_event_days(root, end=train_end, columns=["item_id"]):
        counts = counts.add(day["item_id"].value_counts(), fill_value=0).astype("int64")
    events = read_events(root, start=train_end, end=eval_end)
    return EvaluationWindow(root, train_end, eval_end, history_days, events, counts)
