"""Rate and ETA of long steps (text encoding, training epochs), on a terminal and in Airflow task logs.

A terminal gets a tqdm bar. Anything else (a task log, a redirected file) gets one log line every
``interval`` seconds in tqdm's own format ("300/1000 [00:12<00:28, 25.00 title/s]"): carriage-return
bars turn into one unreadable line in a log file.

    with Progress("encoding item texts", total=len(texts), unit="title") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))
"""

from __future__ import annotations

import logging
import sys
import time

import lightning as L
from tqdm import tqdm

log = logging.getLogger("saviorrec.progress")

LOG_INTERVAL_S = 30.0


class Progress:
    def __init__(self, what: str, total: int, unit: str, interval: float = LOG_INTERVAL_S):
        self.what, self.total, self.unit, self.interval = what, total, unit, interval
        self.done = 0
        self.started = self.last_logged = time.monotonic()
        self.bar = tqdm(total=total, desc=what, unit=unit, leave=False) if sys.stderr.isatty() else None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last_logged >= self.interval and (not self.total or self.done < self.total):
            self.last_logged = now
            log.info("%s: %s", self.what, self.meter(now))

    def meter(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.started
        # an unknown total (0) gets the count and the rate, without a share or an ETA
        return tqdm.format_meter(self.done, self.total or None, elapsed, unit=f" {self.unit}", ncols=0)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if time.monotonic() - self.started >= self.interval:  # a long step ends with its totals
            log.info("%s: done, %s", self.what, self.meter())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingProgress(L.Callback):
    """Batches of the running epoch with rate and ETA, for fits long enough to need it. A streamed
    epoch (an iterable dataset) takes its length from the DataModule's ``expected_batches()``, and
    without one it logs the count and the rate."""

    def __init__(self, interval: float = LOG_INTERVAL_S):
        self.interval = interval
        self.progress: Progress | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        total = trainer.num_training_batches
        if total == float("inf"):  # a streamed epoch has no length: its DataModule may know about how long it is
            expected = getattr(trainer.datamodule, "expected_batches", None)
            total = (expected() if callable(expected) else None) or 0
        what = f"{type(module).__name__} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        self.progress = Progress(what, int(total), "batch", self.interval)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args) -> None:
        if self.progress is not None:
            self.progress.update(1)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
