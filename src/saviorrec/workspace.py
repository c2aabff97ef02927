"""The workspace: one folder holding a pipeline's data, artifacts, metrics and reports.

``dvc repro`` uses the repository root; each Airflow run, test and bench uses its own folder
with its own ``params.yaml``. Every path is ``root / params.paths.<name>``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saviorrec.atomic_files import write_json
from saviorrec.config import Params, load_params
from saviorrec.data import io

PARAMS_FILE = "params.yaml"

__all__ = ["PARAMS_FILE", "StageError", "Workspace", "write_json"]


class StageError(RuntimeError):
    """A stage cannot proceed; the message says why (a failed gate, bad input, ...)."""


@dataclass(frozen=True)
class Workspace:
    root: Path
    params: Params

    @classmethod
    def open(cls, root: str | Path, overrides: dict[str, Any] | None = None) -> Workspace:
        """The workspace of a folder that holds its own ``params.yaml`` (a run, a bundle, a test)."""
        root = Path(root).resolve()
        return cls(root, load_params(root / PARAMS_FILE, overrides=overrides))

    def path(self, name: str) -> Path:
        return self.root / getattr(self.params.paths, name)

    def metrics_file(self, name: str) -> Path:
        return self.path("metrics") / f"{name}.json"

    def gate_file(self, name: str) -> Path:
        return self.path("gates") / f"{name}.json"

    def data_days(self) -> list[dt.date]:
        return io.list_days(self.path("events"))

    def split(self) -> tuple[dt.date, dt.date]:
        """(train_end, eval_end): train on days < train_end, evaluate on [train_end, eval_end).

        With ``split.train_end: null`` the last day of data is the evaluation day.
        """
        split = self.params.split
        if split.train_end is not None:
            train_end = split.train_end
        else:
            days = self.data_days()
            if len(days) < 2:
                raise StageError(f"need at least 2 days of events under {self.path('events')}, found {len(days)}")
            train_end = days[-1]
        eval_end = split.eval_end or (train_end + dt.timedelta(days=1))
        return train_end, eval_end

