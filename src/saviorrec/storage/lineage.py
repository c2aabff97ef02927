"""Where a model came from: the git commit and the DVC hashes of the data it was trained on."""

from __future__ import annotations

import datetime as dt
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
