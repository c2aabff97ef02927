"""Training on several devices with Lightning's own machinery (``devices``, ``strategy``, ``precision``
of the ``encoder:`` and ``ranker:`` params).

With ``strategy: ddp`` and ``devices: N`` Lightning runs one process per device: the process that
calls ``Trainer.fit`` becomes rank 0 and starts ranks 1..N-1 by re-running its own command line
(``python -m pipelines.<stage> ...``) with ``LOCAL_RANK`` set, or the ranks are started from
outside (``torchrun``, a cluster scheduler). Every rank re-runs the stage up to ``fit``; after it
only rank 0 goes on (writing artifacts, evaluating): the other ranks leave the process, so a
stage's outputs are written once and look the same as a one-process run's.
"""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

# one process on one device in full precision: what a section without the keys gets (a bench's or
# a test's plain namespace)
ONE_DEVICE = {"devices": 1, "strategy": "auto", "precision": "32-true"}


def trainer_devices(section: Any) -> dict[str, Any]:
    """The Trainer keyword arguments ``devices``, ``strategy``, ``precision`` of a params section."""
    return {key: getattr(section, key, default) for key, default in ONE_DEVICE.items()}


def require_relaunchable(trainer: L.Trainer, name: str, section: Any) -> None:
    """Refuse a multi-process fit whose extra ranks would re-run a command that is not a single
    stage (an Airflow worker, pytest, a CLI running several stages): they would start that again.

    ``name``: the params section (``ranker``, ``encoder``). Raises ValueError naming the setting
    and the commands that work.
    """
    launcher = trainer.strategy.launcher
    if trainer.world_size == 1 or not isinstance(launcher, _SubprocessScriptLauncher):
        return
    if trainer.strategy.cluster_environment.creates_processes_externally:
        return  # torchrun / SLURM started every rank already
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.startswith("pipelines."):
        return
    command = " ".join([spec.name if spec else sys.argv[0], *sys.argv[1:]])[:200]
    raise ValueError(
        f"{name}.devices={trainer.world_size} with {name}.strategy={getattr(section, 'strategy', '?')} starts one process per device "
        f"by re-running this process's command ({command}); run the stage alone as `python -m pipelines.<stage>` "
        f"(what dvc repro runs) or under torchrun, or set {name}.devices: 1")


def leave_unless_rank_zero(trainer: L.Trainer) -> None:
    """End a rank > 0 process after its fit (and after every collective call, e.g. save_checkpoint):
    writing artifacts and evaluating is rank 0's job."""
    if not trainer.is_global_zero:
        raise SystemExit(0)
