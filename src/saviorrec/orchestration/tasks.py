"""What an Airflow task does: open the run's workspace and call the stage's `run`.

The DAG stays declarative; this module is the one bridge between a task and
`pipelines.<stage>.run(params, ws)`, the same function `dvc repro` calls.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

from saviorrec.config import ParamsError
from saviorrec.orchestration.resume import resume_options
from saviorrec.orchestration.workspace import open_workspace

log = logging.getLogger("saviorrec.orchestration")


class RunFailure(RuntimeError):
    """A problem retrying cannot fix (a failed gate, bad input); the message is the stage's."""


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_stage(stage: str, root: str | Path, *, try_number: int = 1) -> dict:
    """Run one stage in a prepared run folder; RunFailure for problems the user must fix."""
    from pipelines._common import StageError

    ws = open_workspace(root)
    module = importlib.import_module(f"pipelines.{stage}")
    options = resume_options(stage, module.run, ws, try_number)
    if options:
        log.info("%s: try %d resumes with %s", stage, try_number, options)
    try:
        summary = module.run(ws.params, ws, **options)
    except (StageError, ParamsError, ValueError, FileNotFoundError) as err:
        raise RunFailure(f"{stage} failed: {err}") from err
    return _json_safe(summary or {})
