"""What every stage shares: the workspace (paths from params.paths), params, the CLI shell."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saviorrec.config import Params, ParamsError, load_params
from saviorrec.data import io

log = logging.getLogger("saviorrec")


class StageError(RuntimeError):
    """A stage cannot proceed; the message says why (a failed gate, bad input, ...)."""


@dataclass(frozen=True)
class Workspace:
    """A folder holding one pipeline's data, artifacts, metrics and reports.

    ``dvc repro`` uses the repository root; each Airflow run uses its own folder.
    Every path is ``root / params.paths.<name>``.
    """

    root: Path
    params: Params

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


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def parse_set(values: list[str]) -> dict[str, Any]:
    """``--set ranker.lr=0.01`` -> {"ranker.lr": 0.01} (values parsed as YAML scalars)."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(raw)
    return overrides


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--workdir", default=".", help="workspace root (default: current directory)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param for this run, e.g. --set ranker.lr=0.01")
    return parser


def add_ckpt_path_argument(parser: argparse.ArgumentParser) -> None:
    """``--ckpt-path``: the training stages' resume option (``run(..., ckpt_path=...)``)."""
    parser.add_argument("--ckpt-path", default=None, help="resume from this Lightning checkpoint (a retried run)")


def run_stage(
    run: Callable[..., dict],
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> dict:
    """Parse the common flags (+ stage flags), load params, call ``run``, print its summary.

    Exit code 1 with a one-paragraph message for StageError / ParamsError / ValueError
    (bad input), never a traceback for a problem the user can fix.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = stage_parser(description)
    if add_arguments:
        add_arguments(parser)
    args = vars(parser.parse_args(argv))
    params_path, workdir, sets = args.pop("params"), args.pop("workdir"), args.pop("set")
    try:
        params = load_params(params_path, overrides=parse_set(sets))
        summary = run(params, Workspace(Path(workdir).resolve(), params), **args)
    except (StageError, ParamsError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary
