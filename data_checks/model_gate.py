"""validate_model: the candidate ranker against the production model and the baseline on the same evaluation window.

Checks predictions (present for every evaluation event, no NaN, inside [0, 1]), calibration (mean
pCTR vs observed CTR), that the new-item CTR AUC is not below the plain-content baseline's (the
baseline stage's ``baseline_predictions``, same events) by more than
``checks.model.baseline_new_auc_tolerance`` and, when a production model exists (registry, or
``production_workdir``), that overall and new-item CTR AUC are not worse than production's on the
same events by more than the tolerances. With no production model the comparison is skipped and
recorded as a warning, as is the baseline comparison on a window without new-item AUC.

Production is compared only when it was trained on the candidate's setting (data source, preset,
world: ``saviorrec.storage.lineage.training_setting``): otherwise its AUCs on this window mean
nothing (a default-world model scored on a tiny window), so the ``same_setting`` check fails,
naming what differs, and production is not scored. The production setting is the one its
manifest recorded at publish time; for versions published before that, it is derived from the
bundle's own resolved params.yaml (a note in the verdict says so).
"""

from __future__ import annotations

import json
from pathlib import Path

from data_checks import model as model_suite
from data_checks.config import load_checks
from data_checks.gate import SUMMARY_KEYS, discard_verdict, run_gate
from data_checks.production import production_workspace
from saviorrec.config import Params
from saviorrec.data.io import read_items, read_parquet
from saviorrec.models.scoring import EvaluationWindow, read_window
from saviorrec.storage.lineage import bundle_setting, setting_differences, setting_label, training_setting
from saviorrec.workspace import StageError, Workspace


def _skip(check: str, why: str) -> dict:
    return {"expectation": f"validate_model: {check}", "check": check, "observed": "skipped", "message": why}


def validate_model(params: Params, ws: Workspace, production_workdir: str | None = None) -> dict:
    """The candidate ranker's predictions and calibration, and its AUCs against production's and the baseline's on the same events."""
    discard_verdict(ws, "validate_model")
    checks = load_checks(params)
    train_end, eval_end = ws.split()
    if not ws.path("predictions").is_file():
        raise StageError(f"no predictions at {ws.path('predictions')}: run evaluate first")
    if not ws.path("baseline_predictions").is_file():
        raise StageError(f"no baseline predictions at {ws.path('baseline_predictions')}: run the baseline stage first")
    window = read_window(ws)  # the history streamed day by day, as the evaluate stage reads it
    items = read_items(ws.path("items"))
    df = model_suite.window_frame(ws, window.events, window.train_impressions, items,
                                  read_parquet(ws.path("predictions")), train_end)
    min_pos = params.evaluate.min_positives
    candidate = model_suite.aucs(df, min_pos)
    baseline = _baseline_aucs(params, ws, window, items, min_pos)

    notes, production = [], None
    prod_ws, why = production_workspace(params, ws, production_workdir)
    setting = _compare_settings(params, ws, prod_ws, production_workdir, notes) if prod_ws is not None else None
    checked_setting = setting  # what the same_setting check judges (None: no check)
    if setting is not None and setting["differences"]:
        why = f"production was trained on another setting ({'; '.join(setting['differences'])})"
        if params.registry.promote != "always":  # never, or first with a production model: it cannot move
            checked_setting = None
            notes.append(_skip("same_setting", f"{why}: not compared; registry.promote is "
                                               f"{params.registry.promote}, so this run publishes without promoting"))
    elif prod_ws is not None:
        try:
            prod_preds = window.score(prod_ws, items)
            production = model_suite.aucs(
                model_suite.window_frame(ws, window.events, window.train_impressions, items, prod_preds, train_end),
                min_pos)
        except Exception as err:  # noqa: BLE001 - recorded; the absolute checks still run
            why = f"the production model could not score the window: {type(err).__name__}: {err}"
    if production is None:
        notes.append(_skip("auc_regression", f"comparison with production skipped: {why}"))
    elif production["auc"] is None or candidate["auc"] is None:
        notes.append(_skip("auc_regression", "overall AUC undefined on this window (no clicks or no non-clicks)"))
    elif production["new_auc"] is None or candidate["new_auc"] is None:
        notes.append(_skip("new_auc_regression", f"new-item AUC undefined on this window ({candidate['new_n']} new-item impressions)"))
    if candidate["new_auc"] is None or baseline["new_auc"] is None:
        notes.append(_skip("new_auc_vs_baseline", f"comparison with the {baseline['variant']} baseline skipped: new-item AUC "
                                                  f"undefined on this window ({candidate['new_n']} new-item impressions)"))
    summary = model_suite.summary_frame(candidate, production, baseline, checked_setting)
    facts = {"train_end": str(train_end), "eval_end": str(eval_end), "candidate": candidate, "production": production,
             "baseline": baseline, "setting": setting}
    payload = run_gate(ws, "validate_model", model_suite.suites(df, summary, checks.model, checked_setting), str(train_end),
                       notes=notes, facts=facts)
    return {k: payload[k] for k in SUMMARY_KEYS}


def _compare_settings(params: Params, ws: Workspace, prod_ws: Workspace, workdir: str | None, notes: list) -> dict:
    """The candidate's and production's settings, production's name and what differs between them."""
    candidate = training_setting(params, ws.root)
    production, recorded = bundle_setting(prod_ws.root, prod_ws.params, ws.root)
    manifest = prod_ws.root / "manifest.json"
    version = json.loads(manifest.read_text()).get("version") if manifest.is_file() else None
    name = f"production {version}" if version else f"the production model at {Path(workdir or prod_ws.root)}"
    if not recorded:
        notes.append(_skip("same_setting", f"{name} records no setting (published before settings were recorded): "
                                           f"derived from its params.yaml"))
    return {"candidate": candidate, "production": production, "production_recorded": recorded, "production_name": name,
            "candidate_label": setting_label(candidate), "production_label": setting_label(production),
            "differences": setting_differences(candidate, production)}


def _baseline_aucs(params: Params, ws: Workspace, window: EvaluationWindow, items, min_pos: int) -> dict:
    """The baseline ranker's AUCs on the candidate's events (same frame, same code), with its variant."""
    path = ws.path("baseline_predictions")
    df = model_suite.window_frame(ws, window.events, window.train_impressions, items, read_parquet(path),
                                  window.train_end)
    unscored = int((~df["has_prediction"]).sum())
    if unscored:
        raise StageError(f"baseline predictions at {path} miss {unscored} of {len(df)} events of the evaluation "
                         f"window [{window.train_end}, {window.eval_end}): rerun the baseline stage on this window")
    return {"variant": params.baseline.variant, **model_suite.aucs(df, min_pos)}
