"""The command line every stage module shares: ``python -m pipelines.<stage> [--params] [--workdir] [--set]``."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from saviorrec.config import ParamsError, load_params, parse_set
from saviorrec.stages import run_stage
from saviorrec.workspace import StageError, Workspace


def stage_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--workdir", default=".", help="workspace root (default: current directory)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param for this run, e.g. --set ranker.lr=0.01")
    return parser


def add_ckpt_path_argument(parser: argparse.ArgumentParser) -> None:
    """``--ckpt-path``: the training stages' resume option (a Lightning checkpoint, or ``last``)."""
    parser.add_argument("--ckpt-path", default=None,
                        help="resume from this Lightning checkpoint, or `last` (what a retried run passes)")


def stage_main(
    run: Callable[..., dict],
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> dict:
    """Parse the common flags (+ stage flags), load params, run the stage through
    ``saviorrec.stages.run_stage`` (as Airflow and the benches do), print its summary.

    Exit code 1 with a one-paragraph message for StageError / ParamsError / ValueError
    (bad input), never a traceback for a problem the user can fix.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stage = Path(inspect.getfile(run)).stem  # `python -m pipelines.X` runs it as __main__
    prog = "saviorrec " + stage.replace("_", "-")
    parser = stage_parser(prog, description)
    if add_arguments:
        add_arguments(parser)
    args = vars(parser.parse_args(argv))
    params_path, workdir, sets = args.pop("params"), args.pop("workdir"), args.pop("set")
    options = {name: value for name, value in args.items() if value is not None}  # flags given
    try:
        params = load_params(params_path, overrides=parse_set(sets))
        summary = run_stage(stage, Workspace(Path(workdir).resolve(), params), **options)
    except (StageError, ParamsError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary
