"""Run suites as Great Expectations Checkpoints in the workspace's persistent file context.

Each gate run validates a few in-memory batches (one per suite); each batch is one
ValidationDefinition + Checkpoint with ``UpdateDataDocsAction``. Results are stored by run
(``run_name = <gate>-<day>``, ``run_time = now``) so nothing is overwritten, and the Data Docs
site lives at ``ws.path("data_docs")``.

A streamed suite (``Suite.batches``: a table too big for memory, e.g. the behavior log) is
validated one batch at a time; each batch is dropped before the next is read, and the batch
results are added up (``data_checks.batches``) into ONE validation result of the suite, stored
under the same run id and rendered as one Data Docs page, like any other suite of the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from saviorrec.workspace import Workspace

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics over the network

import great_expectations as gx  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.validator.v1_validator import Validator  # noqa: E402

from data_checks.batches import MergedResult  # noqa: E402
from data_checks.docs import site_config  # noqa: E402

log = logging.getLogger("saviorrec.checks")


def _quiet_gx() -> None:
    """GX logs every config save at INFO; some of its loggers are named by file path."""
    for name in [n for n in logging.root.manager.loggerDict if "great_expectations" in n] + ["great_expectations"]:
        logging.getLogger(name).setLevel(logging.WARNING)


_quiet_gx()

SITE = "saviorrec"
DATASOURCE = "saviorrec"


@dataclass
class Suite:
    """One table to validate: a frame (or its batches) and the expectations built for it."""

    name: str                       # suite, asset and checkpoint name, e.g. "logs_days"
    frame: pd.DataFrame | None
    expectations: list[Any]
    index_columns: list[str] = field(default_factory=list)  # e.g. ["ds"]: name failing rows by day
    # streamed instead of ``frame``: (label, frame) pairs read lazily, e.g. ("2024-01-01..2024-01-07", rows)
    batches: Iterable[tuple[str, pd.DataFrame]] | None = None
    rows: int = 0                   # rows over all batches (sizes the spill of unique-column values)


def _project_lock(folder: Path) -> FileLock:
    """One gate at a time per GX project (parallel Airflow tasks share the file context); waits as long as it takes."""
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / ".saviorrec.lock")


def open_context(project_dir: Path, docs_dir: Path):
    """The persistent file context, with our Data Docs site pointing at ``docs_dir``."""
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    _quiet_gx()
    site = site_config(docs_dir)
    sites = context.list_data_docs_sites()
    outdated = SITE in sites and sites[SITE] != site
    if sites.get(SITE) != site:
        if SITE in sites:
            context.update_data_docs_site(SITE, site)
        else:
            context.add_data_docs_site(SITE, site)
    if "local_site" in sites:  # the template's default site would render a second copy
        context.delete_data_docs_site("local_site")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.variables.save()
    if outdated:  # pages written under the old site config (e.g. loading CDNs) are rebuilt once
        context.build_data_docs(site_names=[SITE])
    _quiet_gx()
    return context


def _batch_definition(context, name: str):
    sources = context.data_sources
    source = sources.get(DATASOURCE) if DATASOURCE in sources.all() else sources.add_pandas(DATASOURCE)
    asset = source.get_asset(name) if name in source.get_asset_names() else source.add_dataframe_asset(name)
    existing = [b.name for b in asset.batch_definitions]
    return asset.get_batch_definition("whole") if "whole" in existing \
        else asset.add_batch_definition_whole_dataframe("whole")


def _result_format(index_columns: list[str]) -> dict:
    fmt: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
    if index_columns:
        fmt["unexpected_index_column_names"] = index_columns
    return fmt


def run_suites(ws: Workspace, gate: str, suites: list[Suite], as_of: str) -> tuple[list[dict], str, str]:
    """Validate every suite; return (per-expectation results, run id, Data Docs index path)."""
    project_dir, docs_dir = ws.path("gx_project"), ws.path("data_docs")
    run_time = dt.datetime.now(dt.UTC)
    run_id = RunIdentifier(run_name=f"{gate}-{as_of}", run_time=run_time)
    results: list[dict] = []
    with _project_lock(project_dir):
        context = open_context(project_dir, docs_dir)
        for suite in suites:
            name = f"{gate}.{suite.name}"
            expectation_suite = gx.ExpectationSuite(name=name, expectations=suite.expectations)
            expectation_suite = context.suites.add_or_update(expectation_suite)
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=_batch_definition(context, name.replace(".", "__")), suite=expectation_suite)
            )
            checkpoint = context.checkpoints.add_or_update(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[definition],
                    actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[SITE])],
                    result_format=_result_format(suite.index_columns),
                )
            )
            if suite.batches is None:
                outcome = checkpoint.run(batch_parameters={"dataframe": suite.frame}, run_id=run_id)
                validations = list(outcome.run_results.values())
            else:
                validations = [_run_streamed(context, definition, suite, run_id)]
            for validation in validations:
                for result in validation.results:
                    results.append(_describe(name, result, suite.index_columns))
    index = docs_dir / "index.html"
    return results, f"{run_id.run_name}/{run_id.to_tuple()[1]}", str(index)


def _run_streamed(context, definition, suite: Suite, run_id: RunIdentifier):
    """Validate ``suite.batches`` one at a time; store and render their sum as one validation result."""
    result_format = _result_format(suite.index_columns)
    merged = MergedResult(suite.index_columns, suite.rows)
    for label, frame in suite.batches:
        validator = Validator(batch_definition=definition.batch_definition, result_format=result_format,
                              batch_parameters={"dataframe": frame})
        merged.add(label, frame, validator.validate_expectation_suite(definition.suite))
        log.info("%s: validated %s (%d rows)", definition.name, label, len(frame))
        del validator, frame  # the batch goes before the next one is read
    result = merged.result()
    rows = sum(b["rows"] for b in merged.batches)
    failing = [b["days"] for b in merged.batches if not b["success"]]
    result.meta.update({
        "run_id": run_id, "validation_time": run_id.run_time, "validation_id": definition.id, "checkpoint_id": None,
        # the page's "Batch Parameters" table: what was validated, batch by batch
        "batch_parameters": {
            "dataframe": f"{rows} rows in {len(merged.batches)} batch(es), validated one at a time",
            "batches": ", ".join(f"{b['days']} ({b['rows']} rows)" for b in merged.batches[:50])
            + (f", ... ({len(merged.batches) - 50} more)" if len(merged.batches) > 50 else ""),
            "failing batches": ", ".join(failing) or "none",  # on their own; repeats across batches: see uniqueness
        },
        # the first batch's markers, less its data fingerprint (which would describe that batch only)
        "batch_markers": {k: v for k, v in (result.meta.get("batch_markers") or {}).items() if k != "pandas_data_fingerprint"},
    })
    suite_key = ExpectationSuiteIdentifier(name=definition.suite.name)
    key = ValidationResultIdentifier(expectation_suite_identifier=suite_key, run_id=run_id,
                                     batch_identifier=result.batch_id)
    context.validation_results_store.store_validation_results(
        suite_validation_result=result, suite_validation_result_identifier=key,
        expectation_suite_identifier=suite_key)
    context.build_data_docs(site_names=[SITE], resource_identifiers=[key, suite_key])  # as UpdateDataDocsAction
    return result


def _kwargs_label(config) -> str:
    kwargs = config.kwargs
    for key in ("column", "column_A"):
        if key in kwargs:
            label = kwargs[key] if key == "column" else f"{kwargs['column_A']}, {kwargs['column_B']}"
            return f"({label})"
    return ""


def _describe(suite: str, result, index_columns: list[str]) -> dict:
    config = result.expectation_config
    meta = config.meta or {}
    exception = (result.exception_info or {}).get("exception_message") if result.exception_info else None
    return {
        "suite": suite,
        "check": meta.get("check", config.type),
        "expectation": f"{suite}: {config.type}{_kwargs_label(config)}",
        "severity": getattr(config.severity, "value", str(config.severity)),
        "success": bool(result.success),
        "observed": exception or observed_text(result.result or {}, index_columns),
        "message": meta.get("message", config.type),
    }


def observed_text(result: dict, index_columns: list[str] = ()) -> str:
    """A short human reading of what GX observed (aggregate value or the failing rows)."""
    if "observed_value" in result:
        value = result["observed_value"]
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    if "unexpected_count" in result:
        text = f"{result['unexpected_count']} of {result.get('element_count')} rows"
        examples = result.get("partial_unexpected_list") or []
        if examples:
            text += f", e.g. {', '.join(_short(v) for v in examples[:5])}"
        index = result.get("partial_unexpected_index_list") or []
        keys = sorted({f"{k}={row[k]}" for row in index if isinstance(row, dict) for k in index_columns if k in row})
        if keys:
            text += f" (at {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"
        return text
    return str(result)[:200]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return str(value)
