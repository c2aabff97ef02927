"""The training loss as a curve over optimizer steps (the ``plots/*_training.csv`` a DVC line plot
draws): one row every ``every_n_steps`` steps with the mean loss of those steps, and one row at
the end of each epoch with that epoch's mean loss.

One point per epoch says nothing about a fit that runs one epoch (the rankers do). Losses are
summed on the training device and read back only when a row is written, not at every step.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

EVERY_N_STEPS = 10


def _loss(outputs: Any) -> torch.Tensor | None:
    """The loss a ``training_step`` returned (a tensor, or a dict with ``loss``)."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]
    return None


class TrainingCurve(L.Callback):
    """Rows ``{"step", "epoch", "kind", "loss"}``: ``kind`` is ``steps`` (mean over the last steps)
    or ``epoch`` (mean over the epoch); ``step`` counts training steps (batches) of this fit (from 1),
    ``epoch`` is Lightning's (from 0, as in the checkpoints)."""

    def __init__(self, every_n_steps: int = EVERY_N_STEPS):
        self.every_n_steps = every_n_steps
        self.rows: list[dict[str, Any]] = []
        self._window: list[torch.Tensor] = []
        self._epoch: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = _loss(outputs)
        if loss is None:
            return
        loss = loss.detach()
        self._window.append(loss)
        self._epoch.append(loss)
        if len(self._window) >= self.every_n_steps:
            self._flush(trainer, "steps", self._window)
            self._window = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._window:  # the epoch's last, shorter window
            self._flush(trainer, "steps", self._window)
            self._window = []
        if self._epoch:
            self._flush(trainer, "epoch", self._epoch)
            self._epoch = []

    def _flush(self, trainer: L.Trainer, kind: str, losses: list[torch.Tensor]) -> None:
        # batches, not trainer.global_step: that counts every optimizer's steps (two a batch with
        # sparse ID gradients)
        self.rows.append({"step": trainer.fit_loop.epoch_loop.total_batch_idx + 1, "epoch": int(trainer.current_epoch), "kind": kind,
                          "loss": float(torch.stack(losses).float().mean())})


def training_curve(trainer: L.Trainer, kind: str = "steps") -> list[dict[str, Any]]:
    """``trainer``'s :class:`TrainingCurve` rows of ``kind`` (``steps`` or ``epoch``), without the
    ``kind`` column; empty without the callback."""
    rows = next((cb.rows for cb in trainer.callbacks if isinstance(cb, TrainingCurve)), [])
    return [{k: v for k, v in row.items() if k != "kind"} for row in rows if row["kind"] == kind]
