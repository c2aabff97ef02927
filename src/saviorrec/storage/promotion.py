"""Promotion: publish a workspace's model bundle and move the production pointer, only after every gate.

Refuses unless validate_logs, validate_sids and validate_model each wrote a gate file with
``passed: true``. With ``registry.promote: false`` the bundle is published but production
stays where it is. Writes a small receipt (reports/promotion.json).

Two runs promoting at the same time: the registry moves the production pointer with a
compare-and-swap, so exactly one of them wins. The other one fails with one line saying so:
"production of NAME moved to vN by another run while vM was being promoted; ...". Its version
stays published and complete (`saviorrec registry list` shows it), but it is not promoted
behind the operator's back: its validate_model compared it with the production model of
before, not with vN. The operator re-runs validate_model (in Airflow: clear the run's
validate_model, promote follows) or promotes it as it is with `saviorrec registry promote vM`.
No automatic retry: a retried task would publish the bundle again and skip that comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

from saviorrec.config import Params
from saviorrec.storage.artifacts import StorageError
from saviorrec.storage.bundle import BundleError
from saviorrec.storage.registry import Registry, RegistryConflict, RegistryError, open_registry
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


def _production_version(registry: Registry) -> str | None:
    try:
        return (registry.production() or {}).get("version")
    except StorageError:  # the store failed right after the race: the message still names our version
        return None


def lost_race_message(model: str, version: str, production: str | None) -> str:
    return (f"production of {model} moved to {production} by another run while {version} was being promoted; "
            f"{version} is published but was gated against the production model of before: re-run validate_model "
            f"to gate it against {production} (then promote), or promote it as it is with "
            f"`saviorrec registry promote {version}`")


def promote(params: Params, ws: Workspace) -> dict:
    """Publish ``ws``'s bundle and (with ``registry.promote``) make it production; a receipt of both."""
    gates = check_gates(ws)
    registry = open_registry(params, root=ws.root)
    try:
        version = registry.publish(ws)
    except (RegistryError, StorageError, BundleError) as err:
        raise StageError(f"promotion failed, production unchanged: {err}") from None
    try:
        pointer = registry.promote(version) if params.registry.promote else registry.production()
    except RegistryConflict:
        raise StageError(lost_race_message(registry.name, version, _production_version(registry))) from None
    except (RegistryError, StorageError) as err:
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
