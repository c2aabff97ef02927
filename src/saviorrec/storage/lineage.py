"""Where a model came from: the git commit, the DVC hashes of the data it was trained on, and its setting
(data source, preset, world) that decides which models may be compared on one window."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from saviorrec.workspace import Workspace

# Stage outputs that are data (what the model was trained on), keyed by params.paths name.
DATA_PATHS = ("events", "items", "images")


def git_state(root: Path) -> dict[str, Any]:
    """{"commit", "dirty"}; nulls outside a git checkout (e.g. an Airflow run folder)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def dvc_lock_hashes(root: Path) -> dict[str, dict[str, str]]:
    """{stage: {path: md5}} for every dep and out recorded in ``dvc.lock`` (empty without one)."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    hashes: dict[str, dict[str, str]] = {}
    for stage, entry in stages.items():
        for item in (entry.get("deps") or []) + (entry.get("outs") or []):
            if "md5" in item:
                hashes.setdefault(stage, {})[item["path"]] = item["md5"]
    return hashes


def build_lineage(ws: Workspace) -> dict[str, Any]:
    """Lineage of the model in workspace ``ws``."""
    locked = dvc_lock_hashes(ws.root)
    all_hashes = {path: md5 for stage in locked.values() for path, md5 in stage.items()}
    data = {getattr(ws.params.paths, name): all_hashes.get(getattr(ws.params.paths, name)) for name in DATA_PATHS}
    try:
        train_end, eval_end = ws.split()
        split = {"train_end": str(train_end), "eval_end": str(eval_end)}
    except Exception:  # noqa: BLE001 - lineage must not fail a promotion over a missing events folder
        split = None
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(ws.root),
        "data": data,                # dvc.lock md5 of each data input (null when not run by DVC)
        "dvc_lock": locked,          # every stage's dep/out hashes
        "preset": ws.params.preset,
        "seed": ws.params.seed,
        "data_source": ws.params.data.source,
        "split": split,
    }


# ---- the setting a model was trained on -------------------------------------------------------
#
# Two models are comparable on one evaluation window only when they learned the same world:
# the same data source, preset and catalog. The setting leaves out what moves from run to run
# of one world (the evaluation window: split.*, synthetic.start_date; the log length n_days)
# and the knobs that change no data (synthetic.partition_rows).

SYNTHETIC_RUN_KEYS = ("start_date", "n_days", "partition_rows")
SAMPLING_KEYS = ("max_users", "max_items")  # movielens subsetting seeded by `seed`


def _location(path: str, root: Path) -> str:
    """A data path as one spelling: URIs as given, local paths absolute (relative to ``root``)."""
    if "://" in path:
        return path.rstrip("/")
    return str((Path(root) / path).resolve())


def training_setting(params: Any, root: Path) -> dict[str, Any]:
    """{"preset", "data_source", "world": {...}, "fingerprint"} of a model trained with ``params``.

    world: synthetic: the generator's parameters and the seed (they make the users, items and
    tastes); movielens: the folder, the label thresholds and the subsetting (with the seed when
    it samples users or items); parquet: the folder. Relative folders resolve against ``root``.
    """
    source = params.data.source
    if source == "synthetic":
        world = {f"synthetic.{k}": v for k, v in params.synthetic.model_dump(mode="json").items()
                 if k not in SYNTHETIC_RUN_KEYS and (k != "drift" or params.synthetic.drift.enabled)}  # off: as before drift
        world["seed"] = params.seed
    elif source == "movielens":
        movielens = params.movielens.model_dump(mode="json")
        world = {"data.path": _location(params.data.path, root), **{f"movielens.{k}": v for k, v in movielens.items()}}
        if any(movielens.get(k) is not None for k in SAMPLING_KEYS):
            world["seed"] = params.seed
    else:
        world = {"data.path": _location(params.data.path, root)}
    setting = {"preset": params.preset, "data_source": source, "world": dict(sorted(world.items()))}
    digest = hashlib.sha256(json.dumps(setting, sort_keys=True, default=str).encode()).hexdigest()
    return {**setting, "fingerprint": digest[:12]}


def setting_label(setting: dict[str, Any]) -> str:
    """``preset tiny, synthetic world 1a2b3c4d5e6f``: one short line for tables and messages."""
    return f"preset {setting['preset']}, {setting['data_source']} world {setting['fingerprint']}"


def setting_differences(candidate: dict[str, Any], production: dict[str, Any], limit: int = 6) -> list[str]:
    """``["preset tiny vs default", "synthetic.n_users 300 vs 1500", ...]`` (empty: the same setting)."""
    diffs = [f"{key} {candidate[key]} vs {production[key]}" for key in ("preset", "data_source")
             if candidate[key] != production[key]]
    a, b = candidate["world"], production["world"]
    diffs += [f"{key} {a.get(key, '-')} vs {b.get(key, '-')}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    if not diffs and candidate["fingerprint"] != production["fingerprint"]:  # recorded by another version of this code
        diffs = [f"fingerprint {candidate['fingerprint']} vs {production['fingerprint']}"]
    return diffs[:limit] + ([f"... {len(diffs) - limit} more"] if len(diffs) > limit else [])


def bundle_setting(bundle_root: Path, params: Any, root: Path) -> tuple[dict[str, Any], bool]:
    """(setting, recorded) of a model folder: the one its manifest recorded at publish time, else
    (versions published before settings were recorded, plain workspaces) derived from its own
    resolved params.yaml, relative data folders read against ``root``; ``recorded`` says which."""
    manifest = Path(bundle_root) / "manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text()).get("setting")
        if recorded:
            return recorded, True
    return training_setting(params, root), False
