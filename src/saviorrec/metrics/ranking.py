"""Ranking metrics of the evaluation window: AUC, GAUC (user-weighted), log loss, calibration.

AUC and log loss come from scikit-learn. GAUC is the impression-weighted mean of per-user
AUCs over users who have both a positive and a negative (per-user AUC = the Mann-Whitney
statistic from average ranks, identical to ``roc_auc_score`` per user, vectorised).
An AUC that is undefined (no positive, no negative, or fewer than ``min_positives``
positives) is ``null`` with a ``*_undefined`` reason, never 0.5.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

BUCKETS = ("new", "young", "long_tail", "popular")


def _undefined(labels: np.ndarray, min_positives: int) -> str | None:
    pos = int(labels.sum())
    if len(labels) == 0:
        return "no impressions"
    if pos < min_positives:
        return f"{pos} positives (< {min_positives}): AUC undefined"
    if pos == len(labels):
        return "no negatives: AUC undefined"
    return None


def auc(labels: np.ndarray, scores: np.ndarray, min_positives: int = 1) -> tuple[float | None, str | None]:
    reason = _undefined(labels, min_positives)
    if reason:
        return None, reason
    return float(roc_auc_score(labels, scores)), None


def gauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> tuple[float | None, str | None]:
    """Impression-weighted mean of per-user AUC over users with both classes."""
    df = pd.DataFrame({"u": users, "y": labels.astype(float), "s": scores})
    g = df.groupby("u")
    n = g["y"].transform("size")
    pos = g["y"].transform("sum")
    df = df[(pos > 0) & (pos < n)]
    if df.empty:
        return None, "no user with both a click and a non-click: GAUC undefined"
    ranks = df.groupby("u")["s"].rank(method="average")
    per = pd.DataFrame({"u": df["u"], "y": df["y"], "r": ranks * df["y"]}).groupby("u").agg(n=("y", "size"), p=("y", "sum"), r=("r", "sum"))
    user_auc = (per["r"] - per["p"] * (per["p"] + 1) / 2) / (per["p"] * (per["n"] - per["p"]))
    return float(np.average(user_auc, weights=per["n"])), None


def _logloss(labels: np.ndarray, p: np.ndarray) -> float | None:
    if len(labels) == 0:
        return None
    return float(log_loss(labels, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def _block(df: pd.DataFrame, prefix: str, label: np.ndarray, score: np.ndarray, oracle: np.ndarray | None,
           min_positives: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out[f"{prefix}_auc"], reason = auc(label, score, min_positives)
    if reason:
        out[f"{prefix}_auc_undefined"] = reason
    out[f"{prefix}_gauc"], reason = gauc(df["user_id"].to_numpy(), label, score) if out[f"{prefix}_auc"] is not None else (None, reason)
    if reason:
        out[f"{prefix}_gauc_undefined"] = reason
    out[f"{prefix}_logloss"] = _logloss(label, score)
    if oracle is not None:
        out[f"{prefix}_oracle_auc"] = auc(label, oracle, min_positives)[0]
        out[f"{prefix}_oracle_gauc"] = gauc(df["user_id"].to_numpy(), label, oracle)[0] if out[f"{prefix}_oracle_auc"] is not None else None
    return out


def bucket_metrics(df: pd.DataFrame, min_positives: int = 1) -> dict[str, Any]:
    """Metrics of one slice. Columns: user_id, click, conversion (NaN unknown), p_ctr, p_ctcvr, [oracle_*]."""
    click = df["click"].to_numpy(float)
    out: dict[str, Any] = {"n": int(len(df)), "positives": int(click.sum()),
                           "mean_p_ctr": float(df["p_ctr"].mean()) if len(df) else None,
                           "observed_ctr": float(click.mean()) if len(df) else None}
    # mean predicted over observed CTR: 1.0 is calibrated (the model gate's band is around it)
    out["calibration"] = out["mean_p_ctr"] / out["observed_ctr"] if out["observed_ctr"] else None
    oracle_click = df["oracle_p_click"].to_numpy(float) if "oracle_p_click" in df else None
    out.update(_block(df, "ctr", click, df["p_ctr"].to_numpy(float), oracle_click, min_positives))
    conv = pd.to_numeric(df["conversion"], errors="coerce") if "conversion" in df else pd.Series(np.nan, index=df.index)
    known = conv.notna().to_numpy()
    if known.any():
        sub = df[known]
        y = (sub["click"].to_numpy(float) * conv[known].to_numpy(float))
        oracle = None
        if oracle_click is not None and "oracle_p_conversion" in df:
            # the synthetic oracle_p_conversion is already P(click and conversion) (pCTCVR)
            oracle = sub["oracle_p_conversion"].fillna(0).to_numpy(float)
        out["ctcvr_positives"] = int(y.sum())
        out.update(_block(sub, "ctcvr", y, sub["p_ctcvr"].to_numpy(float), oracle, min_positives))
    else:
        reason = "no impressions" if len(df) == 0 else "no conversion labels"
        out.update({"ctcvr_auc": None, "ctcvr_auc_undefined": reason, "ctcvr_gauc": None,
                    "ctcvr_logloss": None, "ctcvr_positives": 0})
    return out


def long_tail_threshold(items: pd.DataFrame, train_impressions: pd.Series, established_before: pd.Timestamp,
                        share: float) -> float:
    """Training impressions at or under which an established item (first seen before
    ``established_before``) is in the least-shown ``share`` of established catalog items.

    Relative on purpose: a fixed count (say 20) means "long tail" on a small log and nothing at
    all on a larger one, where every established item is shown more often than that."""
    established = items.loc[pd.to_datetime(items["first_seen"]) < established_before, "item_id"]
    if established.empty:
        return -1.0  # no established item: no long tail
    counts = established.map(train_impressions).fillna(0).to_numpy(float)
    return float(np.quantile(counts, share, method="lower"))


def assign_buckets(df: pd.DataFrame, items: pd.DataFrame, train_impressions: pd.Series, train_end, young_days: int,
                   long_tail_share: float) -> pd.Series:
    """new: first seen in the window and no training impression; young: first seen < young_days before
    train_end; long_tail: among the least-shown ``long_tail_share`` of established catalog items by
    training impressions (:func:`long_tail_threshold`); popular: the rest (first match wins)."""
    first_seen = df["item_id"].map(items.set_index("item_id")["first_seen"])
    imps = df["item_id"].map(train_impressions).fillna(0).to_numpy()
    train_end = pd.Timestamp(train_end)
    fs = pd.to_datetime(first_seen)
    new = ((fs >= train_end) | fs.isna()).to_numpy() & (imps == 0)
    young_from = train_end - pd.Timedelta(days=young_days)
    young = (fs >= young_from).to_numpy() & ~new
    tail_max = long_tail_threshold(items, train_impressions, young_from, long_tail_share)
    long_tail = (imps <= tail_max) & ~new & ~young
    bucket = np.select([new, young, long_tail], ["new", "young", "long_tail"], "popular")
    return pd.Series(bucket, index=df.index)


def evaluate_predictions(df: pd.DataFrame, min_positives: int = 1, bucket_col: str = "bucket") -> dict[str, Any]:
    """The metrics/ranker.json body: ``overall`` and ``buckets`` -> metric -> value (null if undefined)."""
    result = {"overall": bucket_metrics(df, min_positives), "buckets": {}}
    for name in BUCKETS:
        part = df[df[bucket_col] == name] if bucket_col in df else df.iloc[0:0]
        result["buckets"][name] = bucket_metrics(part, min_positives)
    return result


def clean(value: Any) -> Any:
    """NaN/inf -> None for JSON."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
