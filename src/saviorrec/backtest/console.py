"""Keep the backtest's console readable: one line per stage and per step on the terminal, the
stages' own output (Lightning banners, progress bars, gate verdict tables, warnings) in a log file
per step, ``<root>/logs/step-NNN.log``.

A backtest replays dozens of stage runs; their chatter on the terminal buried the per-step AUC
lines. Nothing is dropped: the log file keeps it all, and its path is printed once per step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from saviorrec.orchestration.tasks import route_library_logs


def step_log_path(root: Path, index: int) -> Path:
    return root / "logs" / f"step-{index:03d}.log"


@contextmanager
def stage_output_to(path: Path) -> Iterator[None]:
    """Send everything the code inside writes (stdout, stderr, logging at INFO and up, Python
    warnings) to ``path`` (appended)."""
    import lightning.pytorch  # noqa: F401  # imported first: it installs its own stderr handler at import

    route_library_logs()  # Lightning's records propagate to the root logger instead of the terminal
    path.parent.mkdir(parents=True, exist_ok=True)
    root_logger = logging.getLogger()
    level = root_logger.level
    with path.open("a", encoding="utf-8") as out, redirect_stdout(out), redirect_stderr(out):
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            root_logger.removeHandler(handler)
            root_logger.setLevel(level)
            out.flush()
