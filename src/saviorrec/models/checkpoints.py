"""The per-epoch checkpoint a retried training task resumes from (``<dir>/last.ckpt``).

``ModelCheckpoint(save_last=True, save_top_k=0)`` writes nothing in Lightning 2.6 (it only
refreshes ``last`` after a top-k save), so the latest epoch is kept as the single "top-1"
checkpoint named ``last`` instead. Monitoring callbacks run after the LightningModule's
``on_train_epoch_end``, so the checkpoint includes what the module recorded for that epoch.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

LAST = "last"


def last_epoch_checkpoint(directory: str | Path) -> ModelCheckpoint:
    """Overwrites ``directory/last.ckpt`` at the end of every training epoch."""
    return ModelCheckpoint(dirpath=directory, filename=LAST, save_top_k=1, every_n_epochs=1,
                           enable_version_counter=False)
