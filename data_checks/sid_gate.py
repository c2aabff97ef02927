"""validate_sids: semantic IDs (coverage, raw collisions, unique final IDs, utilization, churn vs production).

The production model comes from the registry unless ``production_workdir`` names a bundle folder.
"""

from __future__ import annotations

from data_checks import items as item_suite
from data_checks import sids as sid_suite
from data_checks.config import load_checks
from data_checks.gate import SUMMARY_KEYS, discard_verdict, run_gate
from data_checks.production import production_workspace
from saviorrec.config import Params
from saviorrec.data import io
from saviorrec.workspace import Workspace


def _last_day(ws: Workspace) -> str:
    days = ws.data_days()
    return str(days[-1]) if days else "undated"


def validate_sids(params: Params, ws: Workspace, production_workdir: str | None = None) -> dict:
    """Semantic IDs: coverage, raw collisions, unique final IDs, utilization, churn vs production."""
    discard_verdict(ws, "validate_sids")
    checks = load_checks(params)
    catalog = item_suite.load(ws)
    items, sids = sid_suite.load(ws, catalog)
    notes = []
    prod_ws, why = production_workspace(params, ws, production_workdir)
    production_sids = None
    if prod_ws is not None and prod_ws.path("sids").is_file():
        production_sids = io.read_parquet(prod_ws.path("sids"))
    else:
        why = why or f"the production bundle has no SID table at {prod_ws.path('sids')}"
        notes.append({"expectation": "validate_sids: churn", "check": "churn", "observed": "skipped",
                      "message": f"churn not measured: {why}"})
    summary, per_level, facts = sid_suite.summaries(ws, sids, production_sids)
    if not facts["codebook_metrics_found"]:
        notes.append({"expectation": "validate_sids: codebook metrics", "check": "codebook_metrics", "observed": "missing",
                      "message": f"no {ws.metrics_file('codebook')}: collision rate computed from the SID table only"})
    facts.update({k: (None if v != v else v) for k, v in summary.iloc[0].to_dict().items()})
    payload = run_gate(ws, "validate_sids", sid_suite.suites(items, summary, per_level, checks.sids), _last_day(ws),
                       notes=notes, facts=facts)
    return {k: payload[k] for k in SUMMARY_KEYS}
