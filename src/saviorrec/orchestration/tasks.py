"""What an Airflow task does: open the run's workspace and run the stage there.

The DAG stays declarative; this module is the one bridge between a task and
``saviorrec.stages.run_stage``, the same call the CLI, the benches and the tests make.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from saviorrec.config import ParamsError
from saviorrec.stages import run_stage, stage_module
from saviorrec.workspace import StageError, Workspace

log = logging.getLogger("saviorrec.orchestration")

# Libraries that install their own stderr handler at import (Lightning does when the root logger
# has none, as in a scheduler that preloaded it before Airflow configured logging).
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")


class RunFailure(RuntimeError):
    """A problem retrying cannot fix (a failed gate, bad input); the message is the stage's."""


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def route_library_logs() -> None:
    """Send library log lines through the task's logging at their own level.

    Airflow records everything a task writes to stderr as ERROR, so Lightning's info lines
    ("GPU available: False", ...) written by its own stderr handlers showed as red errors. Without
    those handlers the records propagate to the root logger, which Airflow routes into the task
    log with their real level; Python warnings go the same way (as WARNING) instead of to stderr.
    """
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # exactly a console handler, nothing else
                logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)


def run_task(stage: str, root: str | Path, *, try_number: int = 1) -> dict:
    """Run one stage in a prepared run folder; RunFailure for problems the user must fix."""
    stage_module(stage)  # its imports first: Lightning adds its handlers when imported
    route_library_logs()
    ws = Workspace.open(root)
    try:
        summary = run_stage(stage, ws, try_number=try_number)
    except (StageError, ParamsError, ValueError, FileNotFoundError) as err:
        raise RunFailure(f"{stage} failed: {err}") from err
    return _json_safe(summary)
