"""Daily runs continue yesterday's ranker: seed a run folder with the last validated one.

With ``ranker.warm_start`` on (the DAG turns it on with ``airflow.ranker_warm_start``),
``train_ranker`` loads the ranker in ``paths.ranker_seed`` and trains only on the days after
that ranker's ``trained_until``: the new day instead of the whole window. The DAG's ``prepare``
puts it there: the ranker of the latest earlier run whose ``validate_model`` gate passed (a
refused candidate is never continued), trained in the same data setting (preset, source,
world) and until a day before this run's training cut. Nothing qualifies on a first run, after a
change of setting, or when the window does not move (a fixed historical split, a same-day
rerun): the ranker then trains cold, as before. The baseline's ranker (``paths.baseline``) is
continued from the same run into ``paths.baseline_seed``, so the model gate's reference is as
cheap to refresh as the candidate.

The seed lives beside the stage's output, not in it: clearing and rerunning ``train_ranker``
in the same run continues the same seed again rather than its own finished output.
The rolling backtest seeds each variant from its own previous step with :func:`seed_ranker`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from saviorrec.orchestration.cadence import copy_artifact
from saviorrec.orchestration.workspace import earlier_runs, logical_datetime, read_manifest, update_manifest
from saviorrec.storage.lineage import training_setting
from saviorrec.workspace import Workspace

log = logging.getLogger("saviorrec.orchestration")

MODEL_GATE = "validate_model"
SEEDS = {"ranker": "ranker_seed", "baseline": "baseline_seed"}  # params.paths: what is continued -> where


def seed_ranker(source: Workspace, ws: Workspace, name: str = "ranker") -> bool:
    """Copy ``source``'s ranker folder (``paths.<name>``) to ``ws``'s seed for it; False when none."""
    return Path(source.path(name)).is_dir() and copy_artifact(source.path(name), ws.path(SEEDS[name]))


def _passed(ws: Workspace, gate: str) -> bool:
    try:
        return bool(json.loads(ws.gate_file(gate).read_text()).get("passed"))
    except (OSError, ValueError):
        return False


def _trained_until(ws: Workspace) -> dt.date | None:
    try:
        return dt.date.fromisoformat(json.loads((ws.path("ranker") / "config.json").read_text())["trained_until"])
    except (OSError, ValueError, KeyError):
        return None


def run_train_end(ws: Workspace) -> dt.date:
    """This run's training cut, known before its data is written: the fixed split, else its data day."""
    return ws.params.split.train_end or dt.date.fromisoformat(read_manifest(ws.root)["data_day"])


def ranker_to_continue(ws: Workspace, runs_root: Path) -> Workspace | None:
    """The latest earlier run whose ranker passed the model gate, in ``ws``'s data setting, trained
    until before this run's training cut (so the new days exist and none of them is evaluated)."""
    setting = training_setting(ws.params, ws.root)["fingerprint"]
    cut = run_train_end(ws)
    for folder, _ in earlier_runs(runs_root, logical_datetime(read_manifest(ws.root)), exclude=ws.root):
        try:
            run = Workspace.open(folder)
        except Exception as err:  # an old or damaged folder is skipped, never fatal to today's run
            log.info("warm start: skipping %s (%s)", folder, err)
            continue
        until = _trained_until(run)
        if (_passed(run, MODEL_GATE) and until is not None and until < cut
                and training_setting(run.params, run.root)["fingerprint"] == setting):
            return run
    return None


def seed_run_rankers(ws: Workspace, runs_root: Path) -> dict:
    """Seed the run in ``ws`` with the rankers to continue, and record in its manifest what was
    copied from where (``source`` None: the run trains cold)."""
    source = ranker_to_continue(ws, Path(runs_root)) if ws.params.ranker.warm_start else None
    if source is None:
        why = "no validated earlier ranker to continue" if ws.params.ranker.warm_start else "ranker.warm_start is off"
        record = {"source": None, "seeded": [], "reason": f"{why}: the rankers train cold"}
    else:
        seeded = [name for name in SEEDS if seed_ranker(source, ws, name)]
        record = {"source": str(source.root), "seeded": seeded,
                  "reason": f"seeded with the {' and '.join(seeded)} of {source.root} (trained until "
                            f"{_trained_until(source)}): they train on the days since"}
    log.info("%s", record["reason"])
    update_manifest(ws.root, ranker_warm_start=record)
    return record
