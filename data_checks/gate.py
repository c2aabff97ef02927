"""From expectation results to the gate verdict that `promote` reads."""

from __future__ import annotations

import logging
from pathlib import Path

from data_checks.runner import Suite, _kwargs_label, run_suites
from saviorrec.workspace import StageError, Workspace, write_json

log = logging.getLogger("saviorrec.checks")

# what a gate stage returns of its verdict
SUMMARY_KEYS = ("gate", "passed", "data_docs", "run", "warnings")
OBSERVED_WIDTH = 48  # a verdict table row stays one terminal line; the Data Docs have the rest


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def threshold_text(config) -> str:
    """What an expectation demands, in a few words (``config``: a GX ExpectationConfiguration)."""
    kwargs = config.kwargs
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        text = f"[{_number(low)}, {_number(high)}]"
    elif low is not None:
        text = f">= {_number(low)}"
    elif high is not None:
        text = f"<= {_number(high)}"
    elif "value_set" in kwargs:
        values = list(kwargs["value_set"])
        text = "in {" + ", ".join(_number(v) for v in values[:4]) + (", ..." if len(values) > 4 else "") + "}"
    elif "column_set" in kwargs:
        text = f"columns = {{{', '.join(sorted(map(str, kwargs['column_set'])))}}}"
    elif "regex" in kwargs:
        text = f"not /{kwargs['regex']}/"
    else:  # expect_column_values_to_be_unique -> "values to be unique"
        text = config.type.removeprefix("expect_").removeprefix("column_").replace("_", " ")
    if kwargs.get("mostly") not in (None, 1, 1.0):
        text += f" (mostly {kwargs['mostly']:g})"
    return text


def _thresholds(gate: str, suites: list[Suite]) -> dict[tuple[str, str], str]:
    """Threshold text per (expectation label, check), the keys the runner's results carry."""
    out: dict[tuple[str, str], str] = {}
    for suite in suites:
        for expectation in suite.expectations:
            config = expectation.configuration
            label = f"{gate}.{suite.name}: {config.type}{_kwargs_label(config)}"
            out.setdefault((label, (config.meta or {}).get("check", config.type)), threshold_text(config))
    return out


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _auc(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _model_rows(facts: dict) -> list[tuple[str, str, str, str]]:
    """Candidate, production and baseline AUCs (overall and new-item), when the model gate recorded them."""
    rows = []
    for name in ("candidate", "production", "baseline"):
        aucs = facts.get(name)
        if name in facts and aucs is None:
            rows.append((name, "n/a", "n/a", "no production model" if name == "production" else ""))
            continue
        if not isinstance(aucs, dict):
            continue
        label = f"{name} ({aucs['variant']})" if aucs.get("variant") else name
        new_n = f"{aucs['new_n']} new-item impressions" if aucs.get("new_n") is not None else ""
        rows.append((label, _auc(aucs.get("auc")), _auc(aucs.get("new_auc")), new_n))
    return rows


def verdict_table(payload: dict) -> str:
    """A short plain-text verdict of one gate run: one row per check (observed, threshold,
    pass/FAIL/warn), then for the model gate the AUCs compared, then the Data Docs page."""
    checks = payload.get("checks") or []
    failed = sum(not c["success"] for c in checks)
    verdict = "PASSED" if payload["passed"] else "FAILED"
    lines = [f"{payload['gate']}: {verdict} ({len(checks)} checks; {failed} not met, "
             f"{len(payload.get('critical_failures') or [])} of them critical)"]
    rows = [("check", "observed", "threshold", "verdict")]
    for c in sorted(checks, key=lambda c: (c["success"], c["severity"] != "critical")):  # failures first
        state = "pass" if c["success"] else ("FAIL" if c["severity"] == "critical" else "warn")
        rows.append((c["check"], _cell(c["observed"], OBSERVED_WIDTH), _cell(c.get("threshold", ""), 32), state))
    lines += _columns(rows)
    model = _model_rows(payload.get("facts") or {})
    if model:
        lines.append("")
        lines += _columns([("model", "CTR AUC", "new-item CTR AUC", ""), *model])
    for note in payload.get("warnings") or []:
        if note.get("observed") == "skipped":
            lines.append(f"note: {note['message']}")
    lines.append(f"Data Docs: {payload['data_docs']}")
    if payload.get("data_docs_page") and payload["data_docs_page"] != payload["data_docs"]:
        lines.append(f"this gate's page: {payload['data_docs_page']}")
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def data_docs_page(payload: dict) -> str:
    """The gate run's Data Docs page most worth opening: its first failing suite's validation
    page, else its first suite's; the site index when no page of this run is found."""
    index = Path(payload["data_docs"])
    gate, run = payload["gate"], payload.get("run") or ""
    failing = [c["expectation"] for c in payload.get("checks") or [] if not c["success"]]
    ordered = failing + [c["expectation"] for c in payload.get("checks") or []]
    for expectation in ordered:
        suite = expectation.split(":")[0].removeprefix(f"{gate}.")
        pages = sorted((index.parent / "validations" / gate / suite / run).glob("*.html"))
        if pages:
            return str(pages[0])
    return str(index)


def _entry(result: dict) -> dict:
    return {"expectation": result["expectation"], "check": result["check"],
            "observed": result["observed"], "message": result["message"]}


def _evaluated(result: dict, thresholds: dict[tuple[str, str], str]) -> dict:
    return {**{k: result[k] for k in ("check", "expectation", "severity", "success", "observed")},
            "threshold": thresholds.get((result["expectation"], result["check"]), "")}


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
    thresholds = _thresholds(gate, suites)
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
        "checks": [_evaluated(r, thresholds) for r in results],  # every expectation evaluated, passed or not
        "facts": facts or {},
    }
    payload["data_docs_page"] = data_docs_page(payload)
    write_json(ws.gate_file(gate), payload)
    print(verdict_table(payload), flush=True)  # stdout: the DVC stage's output, an INFO line in Airflow
    for warning in warnings:
        log.warning("%s: %s (observed %s)", gate, warning["expectation"], warning["observed"])
    if critical:
        lines = "\n".join(f"  - {c['expectation']}: {c['message']} (observed {c['observed']})" for c in critical)
        raise StageError(f"gate {gate} failed {len(critical)} critical expectation(s):\n{lines}\n"
                         f"Data Docs: {payload['data_docs_page']}")
    return payload
