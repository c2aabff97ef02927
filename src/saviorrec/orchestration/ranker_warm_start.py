"""Daily runs continue yesterday's ranker: seed a run folder with the last validated ranker.

With ``ranker.warm_start`` on (the DAG turns it on with ``airflow.ranker_warm_start``),
``train_ranker`` loads the ranker already in its folder and trains only on the days after that
ranker's ``trained_until``: one new day instead of the whole window. This module puts that
ranker there. The source is the latest earlier run of the same data setting whose
``validate_model`` gate passed (a rejected candidate is never continued), else the registry's
production bundle when it was trained in that setting, else nothing (the ranker trains cold). The baseline ranker (``paths.baseline``) is continued from the same
run when it has one, so the model gate's reference is as cheap to refresh as the candidate.

The rolling backtest seeds each variant from its own previous step with :func:`seed_ranker`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

from saviorrec.orchestration.workspace import logical_datetime, read_manifest, update_manifest
from saviorrec.storage.lineage import training_setting
from saviorrec.storage.registry import open_registry
from saviorrec.workspace import Workspace

log = logging.getLogger("saviorrec.orchestration")

MODEL_GATE = "validate_model"
CONTINUED = ("ranker", "baseline")  # params.paths names train_ranker and baseline warm-start from


def seed_ranker(source: Workspace, ws: Workspace, name: str = "ranker") -> bool:
    """Copy ``source``'s ranker folder (``paths.<name>``) into ``ws``; False when it has none."""
    src, target = Path(source.path(name)), Path(ws.path(name))
    if not src.is_dir():
        return False
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, target)
    return True


def model_gate_passed(ws: Workspace) -> bool:
    report = Path(ws.path("gates")) / f"{MODEL_GATE}.json"
    try:
        return bool(json.loads(report.read_text()).get("passed"))
    except (OSError, ValueError):
        return False


def same_setting(a: Workspace, b: Workspace) -> bool:
    """Trained on the same data setting (preset, source, world): a ranker of another setting
    must not be continued (its trained_until means nothing for this data)."""
    return training_setting(a.params, a.root)["fingerprint"] == training_setting(b.params, b.root)["fingerprint"]


def latest_validated_model_run(ws: Workspace, runs_root: Path) -> Workspace | None:
    """The latest run before ``ws``'s logical date, in its setting, whose ranker passed the model gate."""
    when = logical_datetime(read_manifest(ws.root))
    earlier: list[tuple[dt.datetime, Path]] = []
    for folder in sorted(runs_root.iterdir()) if runs_root.is_dir() else []:
        if not folder.is_dir() or folder.resolve() == Path(ws.root).resolve():
            continue
        manifest = read_manifest(folder)
        if not (manifest.get("logical_datetime") or manifest.get("logical_date")) or not (folder / "params.yaml").is_file():
            continue
        run_at = logical_datetime(manifest)
        if run_at < when:  # never continue a ranker of a later date: backfills stay reproducible
            earlier.append((run_at, folder))
    for _, folder in sorted(earlier, reverse=True):
        run = Workspace.open(folder)
        if model_gate_passed(run) and same_setting(run, ws):
            return run
    return None


def seed_run_rankers(ws: Workspace, runs_root: Path, *, use_production: bool = True) -> dict:
    """Seed the run in ``ws`` with the ranker (and baseline) to continue, and record in its
    manifest what was copied from where (``source`` None: the run trains cold)."""
    found = _pick_source(ws, Path(runs_root), use_production) if ws.params.ranker.warm_start else None
    if found is None:
        why = "no validated ranker to continue" if ws.params.ranker.warm_start else "ranker.warm_start is off"
        record = {"source": None, "seeded": [], "reason": f"{why}: the ranker trains cold"}
    else:
        source, kind = found
        seeded = [name for name in CONTINUED if seed_ranker(source, ws, name)]
        record = {"source": str(source.root), "source_kind": kind, "seeded": seeded,
                  "reason": f"continuing the {kind} ranker of {source.root} ({', '.join(seeded) or 'nothing to copy'})"}
    log.info("%s", record["reason"])
    update_manifest(ws.root, ranker_warm_start=record)
    return record


def _pick_source(ws: Workspace, runs_root: Path, use_production: bool) -> tuple[Workspace, str] | None:
    """An earlier run with a validated ranker, else (``use_production``) the production bundle."""
    run = latest_validated_model_run(ws, runs_root)
    if run is not None:
        return run, "run"
    production = open_registry(ws.params).production_workspace() if use_production else None
    return (production, "production") if production is not None and same_setting(production, ws) else None
