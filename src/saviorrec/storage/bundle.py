"""What a model bundle holds, laid out exactly like a workspace.

    artifacts/encoder/...            item encoder (weights + config)
    artifacts/codebook/...           RQ-VAE codebook
    artifacts/embeddings.parquet     z per catalog item
    artifacts/sids.parquet           semantic IDs (and sids_generic.parquet)
    artifacts/text_features.parquet  plain MiniLM vectors
    artifacts/ranker/...             ranker checkpoint + config
    data/items.parquet               the item catalog the model was trained with
    metrics/*.json, reports/gates/*.json
    params.yaml                      the resolved params (preset already applied)
    lineage.json                     git commit, dvc.lock hashes of the data
    manifest.json                    sha256 + size of every other file (written last), and
                                     model_summary(): setting, evaluation window + AUCs, gate verdicts

Because paths come from ``params.paths``, ``Workspace.open(bundle_dir)`` opens a bundle like any
workspace. Images are not bundled: catalog items
already have their z; new items bring their own images.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saviorrec.config import Params, dump_resolved_params
from saviorrec.storage.lineage import build_lineage, training_setting
from saviorrec.workspace import Workspace

REQUIRED = ("encoder", "codebook", "embeddings", "sids", "ranker", "items")
OPTIONAL = ("text_features", "sids_generic")
REPORT_DIRS = ("metrics", "gates")  # every *.json in them
GATES = ("validate_logs", "validate_sids", "validate_model")  # every one must pass before production moves
MANIFEST = "manifest.json"
PARAMS = "params.yaml"
LINEAGE = "lineage.json"


class BundleError(ValueError):
    """The workspace lacks something a bundle needs, or a bundle fails verification."""


@dataclass
class Bundle:
    files: dict[str, Path] = field(default_factory=dict)       # bundle key -> local file
    generated: dict[str, bytes] = field(default_factory=dict)  # bundle key -> content


def _add_path(bundle: Bundle, root: Path, rel: str) -> bool:
    path = root / rel
    if path.is_file():
        bundle.files[Path(rel).as_posix()] = path
        return True
    if path.is_dir():
        found = False
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
            bundle.files[file.relative_to(root).as_posix()] = file
            found = True
        return found
    return False


def resolved_params_yaml(params: Params) -> bytes:
    """Params with the preset overlay applied: the bundle loads without any overlay file."""
    return dump_resolved_params(params, f"Resolved params of this model (preset {params.preset!r} applied).").encode()


def collect_bundle(ws: Workspace) -> Bundle:
    """Every file of the model in workspace ``ws``; BundleError names what is missing."""
    bundle = Bundle()
    missing = [name for name in REQUIRED if not _add_path(bundle, ws.root, getattr(ws.params.paths, name))]
    if missing:
        where = ", ".join(f"{name} ({ws.path(name)})" for name in missing)
        raise BundleError(f"cannot bundle the model: missing {where}")
    for name in OPTIONAL:
        _add_path(bundle, ws.root, getattr(ws.params.paths, name))
    for name in REPORT_DIRS:
        folder = ws.path(name)
        for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            bundle.files[file.relative_to(ws.root).as_posix()] = file
    bundle.generated[PARAMS] = resolved_params_yaml(ws.params)
    bundle.generated[LINEAGE] = (json.dumps(build_lineage(ws), indent=2, sort_keys=True) + "\n").encode()
    return bundle


def build_manifest(version: str, name: str, entries: dict[str, tuple[str, int]],
                   extra: dict[str, Any] | None = None) -> bytes:
    manifest = {
        "model": name,
        "version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {key: {"sha256": sha, "size": size} for key, (sha, size) in sorted(entries.items())},
        **(extra or {}),
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _verdict(ws: Workspace, gate: str) -> dict[str, Any] | None:
    path = ws.gate_file(gate)
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return {"passed": False}


def evaluation_from_verdict(verdict: dict | None) -> dict[str, Any]:
    """The evaluation window and the candidate's AUCs, as the model gate's verdict recorded them."""
    facts = (verdict or {}).get("facts") or {}
    candidate = facts.get("candidate") or {}
    return {"train_end": facts.get("train_end"), "eval_end": facts.get("eval_end"),
            "auc": candidate.get("auc"), "new_auc": candidate.get("new_auc")}


def model_summary(ws: Workspace) -> dict[str, Any]:
    """What the manifest records about the model of ``ws`` for `registry list` / `promote`:

    ``setting`` (lineage.training_setting), ``evaluation`` (window and candidate AUCs, as the
    model gate measured them) and ``gates`` ({gate: passed, or None when it never ran}).
    """
    verdicts = {gate: _verdict(ws, gate) for gate in GATES}
    evaluation = evaluation_from_verdict(verdicts["validate_model"])
    if evaluation["train_end"] is None:
        try:
            train_end, eval_end = ws.split()
            evaluation.update(train_end=str(train_end), eval_end=str(eval_end))
        except Exception:  # noqa: BLE001 - a summary must not fail a publish over a missing events folder
            pass
    return {
        "setting": training_setting(ws.params, ws.root),
        "evaluation": evaluation,
        "gates": {gate: None if v is None else v.get("passed") is True for gate, v in verdicts.items()},
    }
