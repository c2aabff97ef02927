"""Evaluation: metrics (undefined AUC is null, never 0.5), buckets, the evaluate stage and its outputs."""
# ruff: noqa: F811  (session fixtures imported from ranker_helpers are used as arguments)

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ranker_helpers import copy_tree, open_workspace, ranker_upstream, trained_saviorrec  # noqa: F401
from sklearn.metrics import roc_auc_score

from saviorrec.data.io import list_days, read_event_day, read_parquet, write_event_day
from saviorrec.metrics.ranking import assign_buckets, auc, bucket_metrics, evaluate_predictions, gauc
from saviorrec.metrics.stage_reports import details_file
from saviorrec.stages import run_stage
from saviorrec.workspace import StageError


def test_auc_undefined_is_null_with_a_reason():
    value, reason = auc(np.zeros(5), np.linspace(0, 1, 5))
    assert value is None and "0 positives" in reason
    value, reason = auc(np.ones(3), np.linspace(0, 1, 3))
    assert value is None and "no negatives" in reason
    m = bucket_metrics(pd.DataFrame({"user_id": [1, 2], "click": [0, 0], "conversion": [np.nan, np.nan],
                                     "p_ctr": [0.1, 0.2], "p_ctcvr": [0.0, 0.1]}))
    assert m["ctr_auc"] is None and m["ctr_gauc"] is None and "undefined" in m["ctr_auc_undefined"]
    assert m["ctcvr_auc"] is None and m["ctcvr_auc_undefined"] == "no conversion labels"
    empty = evaluate_predictions(pd.DataFrame({"user_id": [1, 1], "click": [1, 0], "conversion": [1, 0],
                                               "p_ctr": [0.9, 0.1], "p_ctcvr": [0.5, 0.1], "bucket": ["popular"] * 2}))
    assert empty["buckets"]["new"]["n"] == 0 and empty["buckets"]["new"]["ctr_auc"] is None
    assert empty["buckets"]["popular"]["ctr_auc"] == 1.0


def test_gauc_is_impression_weighted_per_user_auc():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 20, 500)
    labels = (rng.random(500) < 0.3).astype(float)
    scores = labels * 0.3 + rng.random(500)
    scores[:50] = np.round(scores[:50], 1)  # ties
    expected, weights = [], []
    for u in np.unique(users):
        sel = users == u
        if 0 < labels[sel].sum() < sel.sum():
            expected.append(roc_auc_score(labels[sel], scores[sel]))
            weights.append(sel.sum())
    value, _ = gauc(users, labels, scores)
    assert value == pytest.approx(np.average(expected, weights=weights))


def test_buckets_follow_first_seen_and_training_impressions():
    items = pd.DataFrame({"item_id": [1, 2, 3, 4, 5],
                          "first_seen": pd.to_datetime(["2024-01-10", "2024-01-08", "2024-01-01", "2024-01-01", "2024-01-10"])})
    train_imps = pd.Series({2: 3, 3: 5, 4: 100, 5: 1})
    df = pd.DataFrame({"item_id": [1, 2, 3, 4, 5]})
    got = assign_buckets(df, items, train_imps, "2024-01-10", young_days=7, long_tail_share=0.5)
    assert got.tolist() == ["new", "young", "long_tail", "popular", "young"]


@pytest.fixture(scope="module")
def evaluated(trained_saviorrec, tmp_path_factory):
    root = copy_tree(trained_saviorrec, tmp_path_factory.mktemp("evaluated") / "ws")
    params, ws = open_workspace(root)
    return params, ws, run_stage("evaluate", ws)


def test_evaluate_writes_metrics_predictions_and_plots(evaluated):
    params, ws, summary = evaluated
    metrics = json.loads(details_file(ws.path("reports"), "ranker").read_text())  # the whole report
    assert metrics["variant"] == "saviorrec" and metrics["has_oracle"] is True
    assert set(metrics["buckets"]) == {"new", "young", "long_tail", "popular"}
    o = metrics["overall"]
    for key in ("ctr_auc", "ctr_gauc", "ctr_logloss", "ctcvr_auc", "ctr_oracle_auc", "ctcvr_oracle_auc", "mean_p_ctr", "observed_ctr"):
        assert o[key] is not None, key
    assert 0.5 < o["ctr_oracle_auc"] <= 1.0
    assert metrics["buckets"]["new"]["n"] > 0  # every synthetic day lists new items
    assert sum(b["n"] for b in metrics["buckets"].values()) == o["n"]
    preds = read_parquet(ws.path("predictions"))
    assert list(preds.columns) == ["event_id", "p_ctr", "p_ctcvr"] and len(preds) == o["n"]
    for name in ("auc_by_bucket.csv", "auc_by_bucket.json", "calibration.csv", "auc_by_bucket.png", "ranker_training.csv"):
        assert (ws.path("plots") / name).stat().st_size > 0, name
    assert summary["ctr_auc"] == o["ctr_auc"]


def test_evaluate_window_without_clicks_reports_undefined_auc(trained_saviorrec, tmp_path):
    root = copy_tree(trained_saviorrec, tmp_path / "ws")
    params, ws = open_workspace(root)
    train_end, eval_end = ws.split()
    for day in list_days(ws.path("events")):
        if train_end <= day < eval_end:
            events = read_event_day(ws.path("events"), day)
            events["click"] = np.int8(0)
            events["conversion"] = pd.array([0] * len(events), dtype="Int8")
            for part in ws.path("events").glob(f"ds={day}/*.parquet"):
                part.unlink()
            write_event_day(events, ws.path("events"), day)
    run_stage("evaluate", ws)
    metrics = json.loads(details_file(ws.path("reports"), "ranker").read_text())
    assert metrics["overall"]["ctr_auc"] is None and "0 positives" in metrics["overall"]["ctr_auc_undefined"]
    assert metrics["overall"]["ctr_logloss"] is not None
    assert all(b["ctr_auc"] is None for b in metrics["buckets"].values())


def test_evaluate_without_window_or_ranker_fails_clearly(ranker_upstream, tmp_path):
    root = copy_tree(ranker_upstream, tmp_path / "ws")
    params, ws = open_workspace(root)
    with pytest.raises(StageError, match="run train_ranker first"):
        run_stage("evaluate", ws)
    params, ws = open_workspace(root, {"split.train_end": "2030-01-01", "split.eval_end": "2030-01-02"})
    (ws.path("ranker")).mkdir(parents=True, exist_ok=True)
    (ws.path("ranker") / "config.json").write_text(json.dumps({"variant": "heuristic"}))
    with pytest.raises(StageError, match="no events in the evaluation window"):
        run_stage("evaluate", ws)
