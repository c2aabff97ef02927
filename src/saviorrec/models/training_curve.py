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
        # running (sum, count) of the window and of the epoch. Not a list of every step's loss: each
        # kept tensor is a small allocation that outlives the step's large ones, and on the CPU the
        # heap between them cannot be handed back, so memory grew with the batches of an epoch
        # (3 GiB over one encoder epoch of `large` x0.2).
        self._window: tuple[torch.Tensor, int] | None = None
        self._epoch: tuple[torch.Tensor, int] | None = None

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = _loss(outputs)
        if loss is None:
            return
        loss = loss.detach().float()
        self._window = _add(self._window, loss)
        self._epoch = _add(self._epoch, loss)
        if self._window[1] >= self.every_n_steps:
            self._flush(trainer, "steps", self._window)
            self._window = None

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._window is not None:  # the epoch's last, shorter window
            self._flush(trainer, "steps", self._window)
            self._window = None
        if self._epoch is not None:
            self._flush(trainer, "epoch", self._epoch)
            self._epoch = None

    def _flush(self, trainer: L.Trainer, kind: str, total: tuple[torch.Tensor, int]) -> None:
        # batches, not trainer.global_step: that counts every optimizer's steps (two a batch with
        # sparse ID gradients)
        self.rows.append({"step": trainer.fit_loop.epoch_loop.total_batch_idx + 1, "epoch": int(trainer.current_epoch), "kind": kind,
                          "loss": float(total[0]) / total[1]})


def _add(total: tuple[torch.Tensor, int] | None, loss: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``total`` plus one step's loss, summed in place: no allocation a step."""
    if total is None:
        return loss.clone(), 1
    return total[0].add_(loss), total[1] + 1


def training_curve(trainer: L.Trainer, kind: str = "steps") -> list[dict[str, Any]]:
    """``trainer``'s :class:`TrainingCurve` rows of ``kind`` (``steps`` or ``epoch``), without the
    ``kind`` column; empty without the callback."""
    rows = next((cb.rows for cb in trainer.callbacks if isinstance(cb, TrainingCurve)), [])
    return [{k: v for k, v in row.items() if k != "kind"} for row in rows if row["kind"] == kind]
