"""Ranker training data streamed from day partitions (data larger than memory works).

:class:`DayStream` replays the event log day by day through a
:class:`~saviorrec.data.samples.SampleBuilder` (one day + the running state in memory),
shuffles each day's impressions and yields ready tensor batches. Consecutive small days are
merged into one chunk of at most about ``chunk_rows`` rows (real logs have thousands of sparse days). Days before ``emit_from``
only feed the state (history, counters): that is how a warm-started ranker trains on the
new day alone while still seeing each user's full past.

The replay is sequential by nature (the state of day d needs days < d), so with
``num_workers > 0`` only the first worker produces batches: loading runs in a background
process, it is not split.

Several training processes (``ranker.devices`` > 1, DDP): every rank replays the whole log (the
state needs it) but emits only its share of each chunk's shuffled impressions (positions
``rank, rank + world, ...`` of the same permutation), in batches of ``batch_size // world``: the
ranks' batches of one step together make the global batch of ``batch_size`` a single process
takes, and every rank makes the same number of steps (DDP needs that). As with
``DistributedSampler(drop_last=True)``, the last ``rows % world`` impressions of a chunk's
permutation are left out, and so is a chunk share of a single impression (see
:func:`batch_bounds`). The DataModule reads the rank and world size from the Trainer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from saviorrec.data.io import iter_event_days
from saviorrec.data.samples import (
    IdVocab,
    ItemFeatures,
    SampleBuilder,
    encode_rows,
    to_tensors,
    with_item_features,
)


def batch_bounds(rows: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each batch over ``rows`` impressions, never a batch of one: the ranker's
    BatchNorm cannot train on a single row (sparse months of a real log leave such tails). A lone
    last impression joins the batch before it; a share of one impression alone is left out. The
    rule depends on the row count only, so every DDP rank still makes the same number of steps."""
    if batch_size < 2:
        raise ValueError(f"batch size {batch_size}: the ranker's BatchNorm needs at least 2 rows a batch")
    bounds = [(start, min(start + batch_size, rows)) for start in range(0, rows, batch_size)]
    if bounds and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
        if bounds:
            bounds[-1] = (bounds[-1][0], rows)
    return bounds


class DayStream(IterableDataset):
    def __init__(self, events_root: str | Path, items: pd.DataFrame, features: ItemFeatures, vocab: IdVocab,
                 seq_len: int, batch_size: int, prior_strength: float, end: dt.date,
                 emit_from: dt.date | None = None, shuffle: bool = True, seed: int = 0, chunk_rows: int = 20000,
                 clusters: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, rows: int | None = None):
        super().__init__()
        self.events_root, self.items, self.features, self.vocab = events_root, items, features, vocab
        self.seq_len, self.batch_size, self.prior_strength = seq_len, batch_size, prior_strength
        self.end, self.emit_from, self.shuffle, self.seed = end, emit_from, shuffle, seed
        self.chunk_rows = chunk_rows
        self.clusters = clusters  # groupings for the user x group counters (SampleBuilder)
        self.rows = rows  # impressions an epoch emits, when the caller counted them: the progress ETA
        self.epoch = 0
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> None:
        """Emit only rank ``rank``'s share of every chunk (``world`` training processes)."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world} processes")
        self.rank, self.world = rank, world

    def expected_batches(self) -> int | None:
        """About how many batches an epoch yields on this rank (None: rows not given). An iterable
        dataset has no length, so without this a long epoch could not show an ETA; chunk tails
        (:func:`batch_bounds`) make the true count differ by at most one batch per chunk."""
        if self.rows is None:
            return None
        return -(-(self.rows // self.world) // max(2, self.batch_size // self.world))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        if worker is not None and worker.id > 0:
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        builder = SampleBuilder(self.items, self.seq_len, self.clusters)
        for emit, events in self._chunks():
            samples = builder.step(events, emit=emit)
            if samples is None or len(samples) == 0:
                continue
            arrays = encode_rows(samples, self.features, self.vocab, self.prior_strength)
            order = rng.permutation(len(samples)) if self.shuffle else np.arange(len(samples))
            order = order[:len(order) - len(order) % self.world][self.rank::self.world]
            # the global batch, rounded down to a multiple of the ranks (2 rows at least: BatchNorm)
            batch_size = max(2, self.batch_size // self.world)
            for start, stop in batch_bounds(len(order), batch_size):
                idx = order[start:stop]
                yield to_tensors(with_item_features({k: v[idx] for k, v in arrays.items()}, self.features))

    def _chunks(self) -> Iterator[tuple[bool, pd.DataFrame]]:
        """Consecutive days merged up to ``chunk_rows`` rows (sparse logs have many tiny days), never
        across the ``emit_from`` boundary; one chunk in memory at a time."""
        pending: list[pd.DataFrame] = []
        pending_emit, rows = None, 0
        for day, events in iter_event_days(self.events_root, end=self.end):
            emit = self.emit_from is None or day >= self.emit_from
            if pending and (emit != pending_emit or rows >= self.chunk_rows):
                yield pending_emit, pd.concat(pending, ignore_index=True)
                pending, rows = [], 0
            pending.append(events)
            pending_emit, rows = emit, rows + len(events)
        if pending:
            yield pending_emit, pd.concat(pending, ignore_index=True)


class RankerDataModule(L.LightningDataModule):
    """Training impressions of days ``[emit_from or first day, end)`` as shuffled per-day batches."""

    def __init__(self, stream: DayStream, num_workers: int = 0):
        super().__init__()
        self.stream, self.num_workers = stream, num_workers

    def setup(self, stage: str) -> None:
        if self.trainer is not None:  # one share per training process (Lightning's rank and world size)
            self.stream.shard(self.trainer.global_rank, self.trainer.world_size)

    def expected_batches(self) -> int | None:
        """Read by :class:`~saviorrec.progress.TrainingProgress` for the epoch's ETA."""
        return self.stream.expected_batches()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.stream, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=False)

    # Saved in the epoch checkpoints: a resumed fit shuffles its next epoch as an unbroken one would.
    def state_dict(self) -> dict[str, int]:
        return {"stream_epoch": self.stream.epoch}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.stream.epoch = state_dict["stream_epoch"]
