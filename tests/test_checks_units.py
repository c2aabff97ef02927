"""Fast checks of the gate building blocks: params shape, tolerant reading, bands, collision rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_checks.config import load_checks
from data_checks.frames import schema_problems
from data_checks.logs import _with_bands
from data_checks.sids import churn, raw_collision_rate
from saviorrec.config import load_params


def test_params_checks_are_typed_with_a_severity_each():
    checks = load_checks(load_params("params.yaml"))
    assert checks.logs.volume_band.ratio == 10.0
    assert checks.logs.ctr_band.severity in ("critical", "warning")
    assert checks.sids.max_churn.severity == "warning"


@pytest.mark.parametrize("broken, key", [
    ({"severity": "fatal"}, "severity"),
    ({"value": 0.05}, "severity"),
    ({"value": 0.05, "severity": "critical", "typo": 1}, "typo"),
])
def test_bad_checks_section_is_named(broken, key):
    raw = load_params("params.yaml").checks
    raw = {**raw, "sids": {**raw["sids"], "max_raw_collision_rate": broken}}
    with pytest.raises(ValueError, match=rf"checks\.sids\.max_raw_collision_rate.*{key}|{key}.*checks\.sids"):
        load_checks(raw)


def _events(n=4, **columns):
    frame = pd.DataFrame({"event_id": np.arange(n), "ts": pd.Timestamp("2024-01-01", tz="UTC"),
                          "user_id": np.arange(n), "item_id": np.arange(n), "click": np.int8(0),
                          "conversion": pd.array([0] * n, dtype="Int8")})
    return frame.assign(**columns)


def test_schema_problems_name_the_drift_without_crashing():
    assert schema_problems(_events()) == "ok"
    assert schema_problems(_events().rename(columns={"click": "clicked"})) == "missing column(s) click (found clicked)"
    assert "ts has type" in schema_problems(_events(ts="2024-01-01"))
    assert "user_id has type str" in schema_problems(_events(user_id="u1"))
    # ids with nulls read back as float from Parquet: still integral, so not schema drift
    assert schema_problems(_events(user_id=[1.0, np.nan, 3.0, 4.0])) == "ok"


def test_bands_use_the_median_of_previous_days():
    checks = load_checks(load_params("params.yaml")).logs
    stats = pd.DataFrame({"ds": [f"d{i}" for i in range(5)], "schema": "ok",
                          "impressions": [1000, 1000, 1000, 12000, 0], "clicks": [100, 100, 100, 1200, 0],
                          "max_user_impressions": 10.0})
    out = _with_bands(stats, checks)
    assert np.isnan(out["volume_ratio"].iloc[0])             # no history: not judged
    assert out["volume_ratio"].iloc[3] == pytest.approx(12.0)
    assert out["volume_ratio"].iloc[4] == pytest.approx(0.0)  # empty day after a spike: median stays 1000
    assert out["ctr_ratio"].iloc[3] == pytest.approx(1.0)
    assert np.isnan(out["ctr_ratio"].iloc[4])                # an empty day has no CTR


def test_collision_rate_and_churn():
    sids = pd.DataFrame({"item_id": [1, 2, 3, 4], "c1": [0, 0, 1, 2], "c2": [5, 5, 5, 5],
                         "dedup": [0, 1, 0, 0], "sid": ["0-5-0", "0-5-1", "1-5-0", "2-5-0"]})
    assert raw_collision_rate(sids) == 0.5
    previous = sids.assign(sid=["0-5-0", "0-5-1", "9-9-0", "2-5-0"]).iloc[1:]
    assert churn(sids, previous) == (pytest.approx(1 / 3), 3)
