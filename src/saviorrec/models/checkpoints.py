"""What a retried training task needs to resume: the per-epoch checkpoint (``<dir>/last.ckpt``),
draws seeded per epoch or the RNG state kept in the checkpoint (so a resumed fit replays like an
unbroken one) and staged outputs.

``ModelCheckpoint(save_last=True, save_top_k=0)`` writes nothing in Lightning 2.6 (it only
refreshes ``last`` after a top-k save), so the latest epoch is kept as the single "top-1"
checkpoint named ``last`` instead. Monitoring callbacks run after the LightningModule's
``on_train_epoch_end``, so the checkpoint includes what the module recorded for that epoch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import Sampler

from saviorrec.file_integrity import require_torch_archive, torch_archive_problem
from saviorrec.models.training_curve import TrainingCurve
from saviorrec.progress import TrainingProgress

log = logging.getLogger("saviorrec.checkpoints")

LAST = "last"
SET_ASIDE = ".corrupt"  # suffix of a damaged epoch checkpoint moved out of Lightning's way


def last_epoch_checkpoint(directory: str | Path) -> ModelCheckpoint:
    """Overwrites ``directory/last.ckpt`` at the end of every training epoch."""
    return ModelCheckpoint(dirpath=directory, filename=LAST, save_top_k=1, every_n_epochs=1,
                           enable_version_counter=False)


def training_callbacks(checkpoint_dir: str | Path | None, callbacks: Sequence[L.Callback] = ()) -> list[L.Callback]:
    """``callbacks``, batch progress with rate and ETA, the per-step loss curve and the
    ``last.ckpt`` writer when ``checkpoint_dir`` is given."""
    extra = [last_epoch_checkpoint(checkpoint_dir)] if checkpoint_dir is not None else []
    return [*callbacks, TrainingProgress(), TrainingCurve(), *extra]


class TorchRngState(L.Callback):
    """Keeps torch's random state (dropout, ID dropout) in the checkpoints: a fit resumed from the
    end of an epoch draws what an unbroken fit draws next. Saving reads the state, draws nothing."""

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["cuda_rng_states"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        if "cuda_rng_states" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_states"])


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s draws: depends on nothing a resumed fit does not know."""
    return seed + 7919 * epoch


class EpochSeededSampler(Sampler):
    """Wraps a ``sampler`` that draws from ``generator`` and reseeds that generator from
    (``seed``, ``epoch()``) at the first draw of each epoch, not when the loader is built (a
    resumed fit builds it before its epoch counter has moved on)."""

    def __init__(self, sampler: Sampler, generator: torch.Generator, seed: int, epoch: Callable[[], int]):
        self.sampler, self.generator, self.seed, self.epoch = sampler, generator, seed, epoch

    def __iter__(self):
        self.generator.manual_seed(epoch_seed(self.seed, self.epoch()))
        yield from self.sampler

    def __len__(self) -> int:
        return len(self.sampler)


def prepare_checkpoints(out_dir: str | Path, ckpt_path: str | Path | None) -> Path:
    """``out_dir/checkpoints``: cleared on a fresh run (never continue a stale fit), kept for
    ``ckpt_path="last"`` (Lightning's lookup of the ``last.ckpt`` there, a retry's resume); an
    explicit ``ckpt_path`` must exist and be intact.

    A damaged epoch checkpoint there (the crash that made the retry necessary may have cut its
    write short) is set aside with a warning naming it, and the fit starts from scratch: only the
    latest epoch is kept, so there is no earlier one to fall back on, and an automatic retry
    should still finish (seeded, a fresh fit gives what the unbroken one would) rather than wait
    for someone to delete a file. An explicit ``ckpt_path`` was a person's choice: a damaged
    one is an error."""
    checkpoints = Path(out_dir) / "checkpoints"
    if ckpt_path is None:
        if checkpoints.exists():
            shutil.rmtree(checkpoints)
        return checkpoints
    if str(ckpt_path) != LAST:
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"checkpoint to resume from not found: {ckpt_path}")
        require_torch_archive(ckpt_path, "checkpoint to resume from",
                              "pass an intact checkpoint, `last`, or no --ckpt-path to train from scratch")
    set_aside_damaged_checkpoints(checkpoints)
    return checkpoints


def set_aside_damaged_checkpoints(checkpoints: Path) -> list[Path]:
    """Rename every damaged ``*.ckpt`` under ``checkpoints`` to ``*.ckpt.corrupt`` (Lightning
    no longer finds it; the next successful fit removes the folder) with a warning; the damaged files."""
    damaged = []
    for ckpt in sorted(checkpoints.rglob("*.ckpt")) if checkpoints.is_dir() else []:
        problem = torch_archive_problem(ckpt)
        if problem is None:
            continue
        ckpt.replace(ckpt.with_name(ckpt.name + SET_ASIDE))
        log.warning("corrupt epoch checkpoint %s (%s): set aside as %s%s; this fit starts from scratch",
                    ckpt, problem, ckpt.name, SET_ASIDE)
        damaged.append(ckpt)
    return damaged


def last_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """``checkpoint_dir/last.ckpt`` when an interrupted fit left one there."""
    last = Path(checkpoint_dir) / f"{LAST}.ckpt"
    return last if last.is_file() else None


@contextmanager
def staged_output(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out_dir``; on success it replaces ``out_dir`` whole
    (checkpoints included). On failure ``out_dir``, the previous model and warm-start source, is untouched."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        staging = Path(tmp) / out_dir.name
        staging.mkdir()
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.move(str(staging), out_dir)
