"""validate_logs: the behavior log (every day partition) and the item catalog, checked with Great Expectations."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from data_checks import items as item_suite
from data_checks import logs as log_suite
from data_checks.config import load_checks
from data_checks.gate import SUMMARY_KEYS, discard_verdict, run_gate
from data_checks.runner import Suite
from saviorrec.config import Params
from saviorrec.workspace import Workspace


def validate_logs(params: Params, ws: Workspace) -> dict:
    """The behavior log (every day partition) and the item catalog."""
    discard_verdict(ws, "validate_logs")
    checks = load_checks(params)
    catalog = item_suite.load(ws)
    catalog_ids = set(pd.to_numeric(catalog["item_id"], errors="coerce").dropna().astype("int64")) \
        if "item_id" in catalog else None
    stats = log_suite.load_stats(ws, checks.logs)
    as_of = str(stats["ds"].iloc[-1])
    day_suite, event_suite = log_suite.suites(stats, ws, catalog_ids, checks.logs, dt.datetime.now(dt.UTC))
    suites = [day_suite, event_suite,
              Suite("catalog", catalog, item_suite.suite_expectations(catalog, checks.items, as_of))]
    facts = {
        "days": len(stats),
        "rows_checked": event_suite.rows,
        "items": len(catalog),
        "last_day": {k: (None if pd.isna(v) else v) for k, v in stats.iloc[-1].to_dict().items()},
    }
    payload = run_gate(ws, "validate_logs", suites, as_of, facts=facts)
    return {k: payload[k] for k in SUMMARY_KEYS}
