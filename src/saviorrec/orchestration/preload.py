"""Run an Airflow command with the pipeline's heavy libraries imported first.

LocalExecutor workers are forked from the scheduler, Celery's prefork pool from its worker, and
on Linux every task process is a bare ``os.fork`` of those (Airflow's supervisor execs a fresh
interpreter only on macOS). Whatever this process imported is therefore inherited by each task
instead of being imported again: torch, Lightning, pandas, Great Expectations cost several
seconds per task on 2 cores, over a dozen tasks per run (`bench/bench_dag.py` measures it).
Nothing runs at import (no torch threads exist yet), so forking stays safe.

    python -m saviorrec.orchestration.preload scheduler --skip-serve-logs
"""

from __future__ import annotations

import logging
import sys
import time

from saviorrec.stages import STAGES, stage_module

log = logging.getLogger(__name__)


def preload() -> float:
    """Import every stage (they pull in torch, Lightning, pandas, pyarrow, GX); a stage that fails
    to import is logged and left to the task (same error there, with the full traceback)."""
    start = time.perf_counter()
    for name in STAGES:
        try:
            stage_module(name)
        except Exception as exc:
            log.warning("preload of stage %s failed: %s", name, exc)
    return time.perf_counter() - start


def main() -> None:
    seconds = preload()
    print(f"saviorrec: preloaded pipeline modules in {seconds:.1f} s", file=sys.stderr, flush=True)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
