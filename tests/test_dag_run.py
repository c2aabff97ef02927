"""saviorrec_daily end to end with `dag.test()` on the tiny preset (real tasks, real stages).

Day 1 trains everything and promotes; day 2 reuses day 1's encoder/codebook (cadence), continues
day 1's ranker and baseline on the new day, and fails the model gate on purpose: the run fails
with the gate's message and promote never runs.
"""

from __future__ import annotations

import datetime as dt
import json

import airflow_harness
import pytest

pytestmark = pytest.mark.slow

DAY2 = dt.datetime(2024, 3, 2, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def dag():
    airflow_harness.ensure_db()
    return airflow_harness.load_dag()


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _tries(run) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in run.get_task_instances()}


def _registry():
    from saviorrec.config import load_params
    from saviorrec.storage.registry import open_registry

    return open_registry(load_params(airflow_harness.PARAMS))


@pytest.fixture(scope="module")
def day1():
    return airflow_harness.seed_run()  # dag.test() of DAY1, shared with the server tests


def test_full_dag_on_tiny_preset_promotes(day1):
    states = _states(day1)
    assert str(day1.state) == "success", states
    for task in ("prepare", "ingest", "validate_logs", "train_encoder", "build_codebook", "validate_sids",
                 "train_ranker", "evaluate", "baseline", "validate_model", "promote"):
        assert states[task] == "success", (task, states)
    assert states["reuse_encoder"] == "skipped"
    root = airflow_harness.RUNS / airflow_harness.SEED_DAY
    manifest = json.loads((root / "run.json").read_text())
    assert manifest["encoder_refresh"] is True and manifest["artifacts_validated"] is True
    for gate in ("validate_logs", "validate_sids", "validate_model"):
        assert json.loads((root / "reports" / "gates" / f"{gate}.json").read_text())["passed"] is True
    production = _registry().production_workspace()
    assert production is not None
    assert manifest["overrides"]["registry.promote"] == "always"  # the form's promote box, passed explicitly
    assert (root / "artifacts" / "ranker" / "config.json").is_file()
    assert (root / "artifacts" / "baseline" / "config.json").is_file()
    facts = json.loads((root / "reports" / "gates" / "validate_model.json").read_text())["facts"]
    assert facts["baseline"]["variant"] == "content_frozen" and facts["baseline"]["new_auc"] is not None


def test_failed_gate_stops_promotion_and_cadence_reuses_encoder(dag, day1):
    before = _registry().list()
    production_before = _registry().production_workspace()
    # An impossible calibration band: the model gate must fail on any real model.
    conf = {"ranker_epochs": 1, "overrides": {"checks.model.calibration_band.ratio": 1e-9}}
    run = dag.test(logical_date=DAY2, run_conf=conf)
    states = _states(run)
    assert str(run.state) == "failed", states
    # cadence: encoder_every_days=7, so day 2 reuses day 1's validated encoder and codebook
    assert states["train_encoder"] == "skipped" and states["build_codebook"] == "skipped"
    assert states["reuse_encoder"] == "success" and states["validate_sids"] == "success"
    assert states["train_ranker"] == "success" and states["baseline"] == "success"
    assert states["validate_model"] == "failed"
    assert _tries(run)["validate_model"] == 1  # a failed gate is not retried
    assert states["promote"] == "upstream_failed"
    root = airflow_harness.RUNS / "2024-03-02"
    gate = json.loads((root / "reports" / "gates" / "validate_model.json").read_text())
    assert gate["passed"] is False and gate["critical_failures"]
    assert any("calibration" in json.dumps(f) for f in gate["critical_failures"])
    manifest = json.loads((root / "run.json").read_text())
    assert manifest["reused_from"] == str(airflow_harness.RUNS / "2024-03-01")
    # the ranker and the baseline continue day 1's validated ones and train on the new day only
    assert manifest["ranker_warm_start"]["source"] == str(airflow_harness.RUNS / "2024-03-01")
    assert manifest["ranker_warm_start"]["seeded"] == ["ranker", "baseline"]
    day1 = airflow_harness.RUNS / "2024-03-01"
    data_days = [json.loads((run / "run.json").read_text())["data_day"] for run in (day1, root)]
    assert data_days[0] < data_days[1]
    for name in ("ranker", "baseline"):
        day1_meta = json.loads((day1 / "artifacts" / name / "config.json").read_text())
        day2_meta = json.loads((root / "artifacts" / name / "config.json").read_text())
        assert [day1_meta["trained_until"], day2_meta["trained_until"]] == data_days
        assert day2_meta["train_start"] == day1_meta["train_start"]  # a cold fit would start a day later
    import pandas as pd

    day1_sids = pd.read_parquet(airflow_harness.RUNS / "2024-03-01" / "artifacts" / "sids.parquet")
    day2_sids = pd.read_parquet(root / "artifacts" / "sids.parquet")
    same = day2_sids.merge(day1_sids, on="item_id", suffixes=("", "_day1"))
    assert len(same) == len(day1_sids) and (same["sid"] == same["sid_day1"]).all()  # stable SIDs
    items = pd.read_parquet(root / "data" / "items.parquet")
    assert set(day2_sids["item_id"]) == set(items["item_id"])  # today's catalog covered
    # production untouched
    assert _registry().list() == before
    assert production_before is not None
