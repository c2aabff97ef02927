"""Model-promotion suite: sane predictions, calibration, no AUC regression against production, and
no new-item AUC below the plain-content baseline's.

Every model is judged on the same events with the same code (``evaluate_predictions``, the
evaluate stage's metrics): the candidate's ``predictions``, the production bundle re-scored
on the candidate's evaluation window, so a model evaluated on another day cannot pass by luck
of the window, and the ``baseline_predictions`` the baseline stage scored on that window.
"""

from __future__ import annotations

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from data_checks.config import ModelChecks
from data_checks.runner import Suite
from saviorrec.metrics.ranking import assign_buckets, evaluate_predictions
from saviorrec.workspace import Workspace


def window_frame(ws: Workspace, events: pd.DataFrame, train_impressions: pd.Series, items: pd.DataFrame,
                 preds: pd.DataFrame, train_end) -> pd.DataFrame:
    """Evaluation events joined with predictions (left: an unscored event is a failure) and buckets
    (``train_impressions``: item_id -> impressions before ``train_end``)."""
    df = events.merge(preds.drop_duplicates("event_id"), on="event_id", how="left")
    df["has_prediction"] = df["p_ctr"].notna() if "p_ctr" in df else False
    ev = ws.params.evaluate
    df["bucket"] = assign_buckets(df, items, train_impressions, train_end, ev.young_days, ev.long_tail_share)
    return df


def aucs(df: pd.DataFrame, min_positives: int) -> dict:
    """Overall and new-item CTR AUC plus calibration, on rows with a finite prediction."""
    scored = df[np.isfinite(pd.to_numeric(df.get("p_ctr"), errors="coerce"))] if "p_ctr" in df else df.iloc[0:0]
    if "p_ctcvr" in scored:
        scored = scored.assign(p_ctcvr=pd.to_numeric(scored["p_ctcvr"], errors="coerce").fillna(0.0))
    metrics = evaluate_predictions(scored, min_positives)
    overall, new = metrics["overall"], metrics["buckets"]["new"]
    return {"auc": overall["ctr_auc"], "new_auc": new["ctr_auc"], "new_n": new["n"],
            "mean_p_ctr": overall["mean_p_ctr"], "observed_ctr": overall["observed_ctr"]}


def summary_frame(candidate: dict, production: dict | None, baseline: dict | None = None,
                  setting: dict | None = None) -> pd.DataFrame:
    """One row: the candidate's AUCs and calibration, production's and the baseline's AUCs and the deltas.

    ``baseline`` is :func:`aucs` of the baseline ranker plus its ``variant``; ``setting`` (the
    model gate's settings comparison) adds the candidate's setting label.
    """
    row = dict(candidate)
    if setting is not None:
        row["setting"] = setting["candidate_label"]
    observed = candidate["observed_ctr"]
    row["calibration_ratio"] = (candidate["mean_p_ctr"] / observed) if observed else np.nan
    if production is not None:
        row["production_auc"], row["production_new_auc"] = production["auc"], production["new_auc"]
        row["auc_delta"] = _delta(candidate["auc"], production["auc"])
        row["new_auc_delta"] = _delta(candidate["new_auc"], production["new_auc"])
    if baseline is not None:
        row["baseline_variant"] = baseline["variant"]
        row["baseline_auc"], row["baseline_new_auc"] = baseline["auc"], baseline["new_auc"]
        row["baseline_new_auc_delta"] = _delta(candidate["new_auc"], baseline["new_auc"])
    return pd.DataFrame([{k: (np.nan if v is None else v) for k, v in row.items()}])


def _delta(a, b):
    return np.nan if a is None or b is None else a - b


def suites(df: pd.DataFrame, summary: pd.DataFrame, checks: ModelChecks, setting: dict | None = None) -> list[Suite]:
    auc_tol, new_tol, cal = checks.auc_tolerance, checks.new_auc_tolerance, checks.calibration_band
    base_tol = checks.baseline_new_auc_tolerance
    pred_cols = [c for c in ("event_id", "ds", "has_prediction", "p_ctr", "p_ctcvr") if c in df]
    prediction_expectations = [
        gxe.ExpectColumnValuesToBeInSet(
            column="has_prediction", value_set=[True],
            meta={"check": "prediction_coverage", "message": "evaluation event without a prediction"}),
    ]
    for col in ("p_ctr", "p_ctcvr"):
        if col in df:
            prediction_expectations += [
                gxe.ExpectColumnValuesToNotBeNull(
                    column=col, meta={"check": "prediction_not_nan", "message": f"{col} is NaN"}),
                gxe.ExpectColumnValuesToBeBetween(
                    column=col, min_value=0, max_value=1,
                    meta={"check": "prediction_range", "message": f"{col} outside [0, 1]"}),
            ]
    summary_expectations = [
        gxe.ExpectColumnMeanToBeBetween(  # one row: the mean is the ratio itself
            column="calibration_ratio", min_value=1 - cal.ratio, max_value=1 + cal.ratio, severity=cal.severity,
            notes="mean predicted CTR / observed CTR on the evaluation window",
            meta={"check": "calibration", "message": f"mean pCTR off the observed CTR by more than {cal.ratio:.0%}"}),
    ]
    if setting is not None:
        differences = "; ".join(setting["differences"])
        summary_expectations.append(gxe.ExpectColumnValuesToBeInSet(
            column="setting", value_set=[setting["production_label"]], severity=checks.same_setting.severity,
            notes=f"the candidate's setting (data source, preset, world) is {setting['production_name']}'s: "
                  f"{setting['production_label']}",
            meta={"check": "same_setting",
                  "message": f"trained on another setting than {setting['production_name']} "
                             f"({differences or 'none'}): its AUCs on this window are not comparable, so they "
                             f"were not compared"}))
    if "auc_delta" in summary and summary["auc_delta"].notna().all():
        summary_expectations.append(gxe.ExpectColumnMinToBeBetween(
            column="auc_delta", min_value=-auc_tol.value, severity=auc_tol.severity,
            notes="candidate CTR AUC - production CTR AUC, same events",
            meta={"check": "auc_regression", "message": f"CTR AUC below production's by more than {auc_tol.value:g}"}))
    if "new_auc_delta" in summary and summary["new_auc_delta"].notna().all():
        summary_expectations.append(gxe.ExpectColumnMinToBeBetween(
            column="new_auc_delta", min_value=-new_tol.value, severity=new_tol.severity,
            notes="on items first seen in the evaluation window",
            meta={"check": "new_auc_regression", "message": f"new-item CTR AUC below production's by more than {new_tol.value:g}"}))
    if "baseline_new_auc_delta" in summary and summary["baseline_new_auc_delta"].notna().all():
        row = summary.iloc[0]
        # Data Docs show observed values, not the frame: record the AUCs the comparison is made of.
        for column, what in (("new_auc", "the candidate's new-item CTR AUC"),
                             ("baseline_new_auc", f"the {row['baseline_variant']} baseline's new-item CTR AUC"),
                             ("baseline_auc", f"the {row['baseline_variant']} baseline's CTR AUC")):
            if pd.notna(row[column]):
                summary_expectations.append(gxe.ExpectColumnMeanToBeBetween(  # one row: the mean is the AUC
                    column=column, min_value=0, max_value=1, severity="warning",
                    notes=f"recorded: {what} on the evaluation window",
                    meta={"check": f"{column}_recorded", "message": f"{what} is not an AUC"}))
        numbers = (f"new-item CTR AUC {row['new_auc']:.4f} vs the {row['baseline_variant']} baseline's "
                   f"{row['baseline_new_auc']:.4f}")
        summary_expectations.append(gxe.ExpectColumnMinToBeBetween(
            column="baseline_new_auc_delta", min_value=-base_tol.value, severity=base_tol.severity,
            notes=f"candidate new-item CTR AUC - baseline new-item CTR AUC, same events: {numbers}",
            meta={"check": "new_auc_vs_baseline",
                  "message": f"new-item CTR AUC {row['new_auc']:.4f} below the {row['baseline_variant']} baseline's "
                             f"{row['baseline_new_auc']:.4f} by more than {base_tol.value:g}"}))
    return [Suite("predictions", df[pred_cols], prediction_expectations, ["event_id"]),
            Suite("summary", summary, summary_expectations)]
