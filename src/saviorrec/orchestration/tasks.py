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
from saviorrec.stages import run_stage
from saviorrec.workspace import StageError, Workspace

log = logging.getLogger("saviorrec.orchestration")


class RunFailure(RuntimeError):
    """A problem retrying cannot fix (a failed gate, bad input); the message is the stage's."""


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_task(stage: str, root: str | Path, *, try_number: int = 1) -> dict:
    """Run one stage in a prepared run folder; RunFailure for problems the user must fix."""
    ws = Workspace.open(root)
    try:
        summary = run_stage(stage, ws, try_number=try_number)
    except (StageError, ParamsError, ValueError, FileNotFoundError) as err:
        raise RunFailure(f"{stage} failed: {err}") from err
    return _json_safe(summary)
