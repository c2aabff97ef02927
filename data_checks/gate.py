"""From expectation results to the gate verdict that `promote` reads."""

from __future__ import annotations

import logging

from data_checks.runner import Suite, run_suites
from saviorrec.workspace import StageError, Workspace, write_json

log = logging.getLogger("saviorrec.checks")

# what a gate stage returns of its verdict
SUMMARY_KEYS = ("gate", "passed", "data_docs", "run", "warnings")


def _entry(result: dict) -> dict:
    return {"expectation": result["expectation"], "check": result["check"],
            "observed": result["observed"], "message": result["message"]}


def _evaluated(result: dict) -> dict:
    return {k: result[k] for k in ("check", "expectation", "severity", "success", "observed")}


def discard_verdict(ws: Workspace, gate: str) -> None:
    """Remove ``gate``'s previous verdict before judging again: a gate that stops before it can
    validate (no data to read) must leave no verdict, so that promote refuses instead of
    trusting an earlier run's."""
    ws.gate_file(gate).unlink(missing_ok=True)


def run_gate(ws: Workspace, gate: str, suites: list[Suite], as_of: str, notes: list[dict] | None = None,
             facts: dict | None = None) -> dict:
    """Validate, write ``ws.gate_file(gate)`` and the Data Docs, then raise on a critical failure.

    ``notes`` are warnings found outside GX (e.g. "no production model: comparison skipped");
    ``facts`` are numbers worth keeping beside the verdict (trailing CTR, AUCs, ...).
    """
    results, run, docs = run_suites(ws, gate, suites, as_of)
    failed = [r for r in results if not r["success"]]
    critical = [_entry(r) for r in failed if r["severity"] == "critical"]
    warnings = [_entry(r) for r in failed if r["severity"] != "critical"] + list(notes or [])
    payload = {
        "gate": gate,
        "passed": not critical,
        "critical_failures": critical,
        "warnings": warnings,
        "data_docs": docs,
        "run": run,
        "as_of": as_of,
        "expectations": len(results),
        "checks": [_evaluated(r) for r in results],  # every expectation evaluated, passed or not
        "facts": facts or {},
    }
    write_json(ws.gate_file(gate), payload)
    print(f"Data Docs: {docs}")
    for warning in warnings:
        log.warning("%s: %s (observed %s)", gate, warning["expectation"], warning["observed"])
    if critical:
        lines = "\n".join(f"  - {c['expectation']}: {c['message']} (observed {c['observed']})" for c in critical)
        raise StageError(f"gate {gate} failed {len(critical)} critical expectation(s):\n{lines}\n"
                         f"Data Docs: {docs}")
    return payload
