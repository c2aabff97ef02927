"""validate_sids: gate on semantic IDs (coverage, raw collisions, unique final IDs, utilization, churn vs production).

    python -m pipelines.validate_sids [--params params.yaml] [--workdir DIR] [--production-workdir DIR]

The production model comes from the registry (``registry:`` in params) unless
``--production-workdir`` names a bundle folder. Writes reports/gates/validate_sids.json and
the Data Docs (path printed); a failed critical expectation raises StageError.
"""

from __future__ import annotations

from data_checks import items as item_suite
from data_checks import sids as sid_suite
from data_checks.config import load_checks
from data_checks.gate import run_gate
from data_checks.production import add_production_argument, production_workspace
from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.data import io
from saviorrec.workspace import Workspace

GATE = "validate_sids"


def _as_of(ws: Workspace) -> str:
    days = ws.data_days()
    return str(days[-1]) if days else "undated"


def run(params: Params, ws: Workspace, production_workdir: str | None = None) -> dict:
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
        notes.append({"expectation": f"{GATE}: churn", "check": "churn", "observed": "skipped",
                      "message": f"churn not measured: {why}"})
    summary, per_level, facts = sid_suite.summaries(ws, sids, production_sids)
    if not facts["codebook_metrics_found"]:
        notes.append({"expectation": f"{GATE}: codebook metrics", "check": "codebook_metrics", "observed": "missing",
                      "message": f"no {ws.metrics_file('codebook')}: collision rate computed from the SID table only"})
    facts.update({k: (None if v != v else v) for k, v in summary.iloc[0].to_dict().items()})
    payload = run_gate(ws, GATE, sid_suite.suites(items, summary, per_level, checks.sids), _as_of(ws),
                       notes=notes, facts=facts)
    return {k: payload[k] for k in ("gate", "passed", "data_docs", "run", "warnings")}


def main(argv=None) -> None:
    stage_main(run, __doc__, add_arguments=add_production_argument, argv=argv)


if __name__ == "__main__":
    main()
