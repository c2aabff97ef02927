"""A Lightning callback that kills a fit at the start of a given epoch, as a lost worker would.

The resume tests of the three training stages (encoder, codebook, ranker) crash a real fit with
it, then check that the retry continues from ``last.ckpt``.
"""

from __future__ import annotations

import lightning as L

MESSAGE = "simulated worker loss"


class CrashAtEpoch(L.Callback):
    """Raises ``RuntimeError(MESSAGE)`` when epoch ``epoch`` (0-based) starts."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(MESSAGE)


def trainer_crashing_at(make_trainer, epoch: int):
    """``make_trainer`` whose trainers also carry ``CrashAtEpoch(epoch)`` (for monkeypatching a stage's factory)."""

    def make(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.callbacks.append(CrashAtEpoch(epoch))
        return trainer

    return make
