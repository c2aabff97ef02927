"""Promotion: publish a workspace's model bundle and move the production pointer, only after every gate.

Refuses unless validate_logs, validate_sids and validate_model each wrote a gate file with
``passed: true``. Then the bundle is published, and ``registry.promote`` decides whether
production moves to it:

- ``always``: yes (scheduled runs, or a run that asks: ``-S registry.promote=always``);
- ``never``: no, the version is only published;
- ``first`` (default): only while the registry has no production model, so a fresh
  ``make run`` ends with a promoted model and a later ``dvc exp run`` does not replace it.

Production never moves to a model trained on another setting (data source, preset, world;
``saviorrec.storage.lineage``) than the production model: its gate could not compare them.
Whenever production stays, the run prints how to promote the version by hand. Writes a small
receipt (reports/promotion.json).

``promote_version`` is the manual promotion (`saviorrec registry promote`): it refuses a
version whose gates did not all pass or whose setting differs from production's, unless
forced, and records who promoted and what a force overrode.

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

import getpass
import json
import logging
import os
from pathlib import Path
from typing import Any

from saviorrec.config import Params
from saviorrec.storage.artifacts import StorageError
from saviorrec.storage.bundle import GATES, BundleError
from saviorrec.storage.lineage import setting_differences, setting_label, training_setting
from saviorrec.storage.registry import Registry, RegistryConflict, RegistryError, open_registry
from saviorrec.workspace import StageError, Workspace, write_json

log = logging.getLogger("saviorrec.promote")  # stderr: the stage's stdout stays its JSON summary
ACTOR_ENV = "SAVIORREC_PROMOTED_BY"  # who or what promotes, as `registry list` shows it (wins over detection)


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


def stage_actor() -> str:
    """Who runs the promote stage: $SAVIORREC_PROMOTED_BY, else what the environment says
    (Airflow exports its context to task processes, DVC names the stage and the experiment)."""
    env = os.environ
    if env.get(ACTOR_ENV):
        return env[ACTOR_ENV]
    if env.get("AIRFLOW_CTX_DAG_RUN_ID"):
        return f"airflow run {env['AIRFLOW_CTX_DAG_RUN_ID']}"
    if env.get("DVC_EXP_NAME"):
        return f"dvc exp run {env['DVC_EXP_NAME']}"
    if env.get("DVC_STAGE"):
        return f"dvc {env['DVC_STAGE']} stage"
    return f"promote stage ({_user()})"


def cli_actor() -> str:
    return os.environ.get(ACTOR_ENV) or f"cli ({_user()})"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "unknown user"


def how_to_promote(version: str) -> str:
    return (f"to make it production: `saviorrec registry promote {version}`, "
            f"or rerun with `-S registry.promote=always` (`--set registry.promote=always`)")


def setting_mismatch(registry: Registry, version_setting: dict[str, Any], production: str,
                     root: Path | None = None) -> str | None:
    """Why ``version_setting`` cannot replace ``production`` (None: the same setting)."""
    prod_setting, recorded = registry.setting(production, root)
    diffs = setting_differences(version_setting, prod_setting)
    if not diffs:
        return None
    derived = "" if recorded else " (derived from its params.yaml: published before settings were recorded)"
    return (f"trained on another setting than production {production} "
            f"[{setting_label(version_setting)} vs {setting_label(prod_setting)}{derived}]: {'; '.join(diffs)}")


def promote(params: Params, ws: Workspace) -> dict:
    """Publish ``ws``'s bundle and (as ``registry.promote`` says) make it production; a receipt of both."""
    gates = check_gates(ws)
    registry = open_registry(params, root=ws.root)
    policy = params.registry.promote
    actor = stage_actor()
    try:
        version = registry.publish(ws, by=actor)
        current = registry.production()
    except (RegistryError, StorageError, BundleError) as err:
        raise StageError(f"promotion failed, production unchanged: {err}") from None
    stays = None  # why production does not move to `version`
    if policy == "never":
        stays = "registry.promote is never"
    elif policy == "first" and current is not None:
        stays = f"registry.promote is first and {current['version']} is production already"
    elif current is not None:
        try:
            stays = setting_mismatch(registry, training_setting(params, ws.root), current["version"], ws.root)
        except (RegistryError, StorageError) as err:
            raise StageError(f"promotion failed, production unchanged: {err}") from None
    pointer = current
    if stays is None:
        try:
            # the decision above read `current`: a pointer moved since then is a lost race, not ours to overwrite
            pointer = registry.promote(version, by=actor, expected=(current or {}).get("version"))
        except RegistryConflict:
            if policy != "first":
                raise StageError(lost_race_message(registry.name, version, _production_version(registry))) from None
            pointer = registry.production()  # another first run won: production exists, as asked
            stays = f"registry.promote is first and {(pointer or {}).get('version')} became production meanwhile"
        except (RegistryError, StorageError) as err:
            raise StageError(f"promotion failed, production unchanged: {err}") from None
    if stays:
        log.info(f"published {registry.name} {version}; production stays {(pointer or {}).get('version')} "
                 f"({stays}); {how_to_promote(version)}")
    else:
        log.info(f"published {registry.name} {version} and made it production (registry.promote: {policy})")
    summary = {
        "model": params.registry.model_name,
        "registry": registry.store.describe(registry.prefix),
        "version": version,
        "policy": policy,
        "promoted": stays is None,
        "production": (pointer or {}).get("version"),
        "previous": (pointer or {}).get("previous"),
        "gates": gates,
        **({"not_promoted_because": stays, "to_promote": f"saviorrec registry promote {version}"} if stays else {}),
    }
    write_json(receipt_path(ws), summary)
    return summary


def promotion_blockers(registry: Registry, version: str, root: Path | None = None) -> list[str]:
    """Why ``version`` should not become production: gates not all passed, another setting
    than the current production model's. Empty: nothing stands in the way."""
    summary = registry.summary(version)
    blockers = []
    gates = summary["gates"]
    bad = [f"{gate} {'failed' if gates.get(gate) is False else 'has no verdict'}" for gate in GATES
           if gates.get(gate) is not True]
    if bad:
        blockers.append(f"its gates did not all pass ({', '.join(bad)})")
    current = (registry.production() or {}).get("version")
    if current and current != version:
        mismatch = setting_mismatch(registry, summary["setting"], current, root)
        if mismatch:
            blockers.append(mismatch)
    return blockers


class PromotionRefused(RegistryError):
    """A manual promotion that needs --force; the message says why."""


def promote_version(registry: Registry, version: str, force: bool = False, by: str | None = None,
                    root: Path | None = None) -> dict[str, Any]:
    """Move production to ``version`` (the CLI's `registry promote`): refuses with every reason
    unless ``force``; a forced promotion records what it overrode."""
    current = registry.production()
    if current is not None and current.get("version") == version:  # nothing to move, nothing to refuse
        return {**current, "overrode": [], "unchanged": True}
    blockers = promotion_blockers(registry, version, root)
    if blockers and not force:
        raise PromotionRefused(f"refusing to promote {registry.name} {version}: {'; '.join(blockers)}. "
                               f"Promote it anyway with --force")
    pointer = registry.promote(version, by=by or cli_actor(), overrode=blockers or None,
                               expected=(current or {}).get("version"))  # the production the blockers were checked against
    return {**pointer, "overrode": blockers}
