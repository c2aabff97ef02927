"""One workspace per logical date: `<runs_root>/<logical date>/params.yaml` + the stages' outputs.

The run's params.yaml is the repository's params (or ``$SAVIORREC_PARAMS``) < the form's
preset < its overrides + a split keyed by the logical date, with every path that must outlive
the run (data source, registry, shared text cache) made absolute; it is written resolved, so
it loads without the repository's overlay files. Preparing the same logical date again starts
from a clean folder, so reruns and backfills give the same outputs; two logical dates never
share a folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saviorrec.atomic_files import write_json
from saviorrec.config import Params, load_params, resolve_raw, write_workspace_params
from saviorrec.orchestration.form import RunForm, base_params_file, form_overrides

MANIFEST = "run.json"  # written by the orchestration, read by later runs (cadence, reuse)
KEEP_ON_RESET = {".cache"}


def load_base_params() -> tuple[Params, Path]:
    path = base_params_file()
    return load_params(path), path.parent


def runs_root(params: Params, base_dir: Path) -> Path:
    root = os.environ.get("SAVIORREC_RUNS_ROOT") or params.airflow.runs_root
    return (base_dir / root).resolve()


def run_key(logical_date: dt.datetime | dt.date) -> str:
    """Folder name of a run: the date for scheduled runs, date + time for a manual one at another time."""
    if isinstance(logical_date, dt.datetime):
        if logical_date.time() == dt.time(0, 0):
            return logical_date.date().isoformat()
        return logical_date.strftime("%Y-%m-%dT%H-%M-%S")
    return logical_date.isoformat()


def _as_datetime(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def logical_datetime(manifest: dict[str, Any]) -> dt.datetime:
    """When a run folder's logical date is (older manifests: midnight of its date)."""
    return _as_datetime(dt.datetime.fromisoformat(manifest.get("logical_datetime") or manifest["logical_date"]))


def earlier_runs(runs_root: Path, when: dt.datetime | dt.date, exclude: Path | None = None) -> list[tuple[Path, dict]]:
    """(folder, manifest) of every run before ``when``, newest first. Never a later date: a run
    reuses or continues nothing of the future, so backfills stay reproducible."""
    when = logical_datetime({"logical_datetime": when.isoformat()})
    found = []
    for folder in sorted(Path(runs_root).iterdir()) if Path(runs_root).is_dir() else []:
        if not folder.is_dir() or (exclude is not None and folder.resolve() == Path(exclude).resolve()):
            continue
        manifest = read_manifest(folder)
        if not (manifest.get("logical_datetime") or manifest.get("logical_date")):
            continue
        run_at = logical_datetime(manifest)
        if run_at < when:
            found.append((run_at, folder, manifest))
    found.sort(key=lambda entry: (entry[0], entry[1].name), reverse=True)
    return [(folder, manifest) for _, folder, manifest in found]


def _absolute(value: str, base_dir: Path) -> str:
    return value if "://" in value else str((base_dir / value).resolve())


def date_keyed_overrides(raw: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """Make the run evaluate on its logical date where the source has such a day.

    synthetic: the generated window ends on the logical date (it is the evaluation day);
    parquet: train on days before it, evaluate on it; movielens: a fixed historical split.
    """
    source = raw["data"]["source"]
    if source == "synthetic":
        start = day - dt.timedelta(days=int(raw["synthetic"]["n_days"]) - 1)
        return {"synthetic.start_date": start.isoformat(), "split.train_end": None, "split.eval_end": None}
    if source == "parquet":
        return {"split.train_end": day.isoformat(), "split.eval_end": (day + dt.timedelta(days=1)).isoformat()}
    return {}


@dataclass(frozen=True)
class RunWorkspace:
    root: Path
    data_day: dt.date
    params_file: Path


def read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def update_manifest(root: Path, **fields: Any) -> dict[str, Any]:
    manifest = read_manifest(root) | fields
    write_json(Path(root) / MANIFEST, manifest)
    return manifest


def reset_folder(root: Path) -> None:
    """Empty a run folder for a fresh attempt, keeping caches that never change results."""
    if not root.exists():
        return
    for child in root.iterdir():
        if child.name in KEEP_ON_RESET:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prepare_run_workspace(
    logical_date: dt.datetime | dt.date,
    form: RunForm,
    *,
    day: dt.date | None = None,
    run_id: str | None = None,
    promote: str | None = None,
) -> RunWorkspace:
    """Create (or reset) the run's folder and write its resolved params.yaml.

    The folder is keyed by the logical date; ``day`` is the data day the run evaluates (the
    start of its data interval: the logical date for scheduled runs, the last complete day
    for a manual one), default the logical date's day. ``promote`` is the run's ``registry.promote``
    (default: the form's choice).
    """
    base, base_dir = load_base_params()
    base_file = base_params_file()
    if day is None:
        day = logical_date.date() if isinstance(logical_date, dt.datetime) else logical_date
    root = runs_root(base, base_dir) / run_key(logical_date)

    # a daily run continues the last validated ranker unless the form says otherwise
    overrides = {"ranker.warm_start": base.airflow.ranker_warm_start} | form_overrides(form, base, base_dir, promote)
    merged = resolve_raw(base_file, overrides)
    overrides |= date_keyed_overrides(merged, day)
    # Paths outside the workspace stay where the operator put them.
    overrides["data.path"] = _absolute(overrides.get("data.path", merged["data"]["path"]), base_dir)
    overrides["registry.uri"] = _absolute(merged["registry"]["uri"], base_dir)
    overrides["airflow.runs_root"] = str(runs_root(base, base_dir))
    overrides["airflow.data_root"] = _absolute(merged["airflow"]["data_root"], base_dir)
    overrides["paths.text_cache"] = str(runs_root(base, base_dir) / ".cache" / "text_features")

    root.mkdir(parents=True, exist_ok=True)
    reset_folder(root)
    # Validated while written: a bad override fails here, naming the key, not in a later stage.
    params_file = write_workspace_params(root, overrides, base=base_file)
    update_manifest(
        root,
        logical_date=_as_datetime(logical_date).date().isoformat(),
        logical_datetime=_as_datetime(logical_date).isoformat(),
        data_day=day.isoformat(),  # the evaluation day; training uses days before it
        run_id=run_id,
        form=form.model_dump(),
        overrides=overrides,
        prepared_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    return RunWorkspace(root=root, data_day=day, params_file=params_file)
