"""Promotion: publish a workspace's model bundle and move the production pointer, only after every gate.

Refuses unless validate_logs, validate_sids and validate_model each wrote a gate file with
``passed: true``. With ``registry.promote: false`` the bundle is published but production
stays where it is. Writes a small receipt (reports/promotion.json).
"""

from __future__ import annotations

import json
from pathlib import Path

from saviorrec.config import Params
from saviorrec.storage.artifacts import StorageError
from saviorrec.storage.bundle import BundleError
from saviorrec.storage.registry import RegistryError, open_registry
from saviorrec.workspace import StageError, Workspace, write_json

GATES = ("validate_logs", "validate_sids", "validate_model")


def receipt_path(ws: Workspace) -> Path:
    return ws.path("reports") / "promotion.json"


def check_gates(ws: Workspace) -> dict[str, bool]:
    """{gate: passed}; StageError naming every gate that is missing or did not pass."""
    verdicts, problems = {}, []
    for gate in GATES:
        path = ws.gate_file(gate)
        if not path.is_file():
            problems.append(f"{gate}: no verdict at {path} (run the gate first)")
            continue
        try:
            verdict = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            problems.append(f"{gate}: unreadable verdict {path} ({err})")
            continue
        verdicts[gate] = verdict.get("passed") is True
        if not verdicts[gate]:
            failures = [f.get("expectation", "?") for f in verdict.get("critical_failures") or []]
            problems.append(f"{gate}: failed" + (f" ({', '.join(failures)})" if failures else ""))
    if problems:
        raise StageError("refusing to promote: " + "; ".join(problems))
    return verdicts


def promote(params: Params, ws: Workspace) -> dict:
    """Publish ``ws``'s bundle and (with ``registry.promote``) make it production; a receipt of both."""
    gates = check_gates(ws)
    registry = open_registry(params, root=ws.root)
    try:
        version = registry.publish(ws)
        pointer = registry.promote(version) if params.registry.promote else registry.production()
    except (RegistryError, StorageError, BundleError) as err:
        raise StageError(f"promotion failed, production unchanged: {err}") from None
    summary = {
        "model": params.registry.model_name,
        "registry": registry.store.describe(registry.prefix),
        "version": version,
        "promoted": bool(params.registry.promote),
        "production": (pointer or {}).get("version"),
        "previous": (pointer or {}).get("previous"),
        "gates": gates,
    }
    write_json(receipt_path(ws), summary)
    return summary
