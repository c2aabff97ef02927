"""Every numeric critical check at its boundary, at the default thresholds: just past it the gate
refuses with the check's message, and with that check alone; just inside it the gate passes."""

from __future__ import annotations

import json
import re

import pytest
from bad_inputs import copy_of, session_base
from bad_inputs.boundaries import BOUNDARIES

from saviorrec.stages import run_stage
from saviorrec.workspace import StageError


@pytest.fixture(scope="module")
def baseline(tiny_pipeline, tmp_path_factory):
    return session_base(tiny_pipeline, tmp_path_factory)


def _verdict(ws, gate: str) -> dict:
    return json.loads(ws.gate_file(gate).read_text())


@pytest.mark.parametrize("past", [True, False], ids=["past", "inside"])
@pytest.mark.parametrize("boundary", BOUNDARIES, ids=lambda b: b.name)
def test_numeric_check_at_its_default_threshold(boundary, past, baseline, tmp_path):
    base, _ = baseline
    ws = copy_of(base, tmp_path / "ws")
    value = boundary.edit(ws, past)
    # the edit landed where it should: on the right side of the default threshold, close to it
    assert boundary.inside(value) is not past, value
    assert abs(value - boundary.limit) <= boundary.resolution, value

    if past:
        with pytest.raises(StageError) as failure:
            run_stage(boundary.gate, ws)
        assert re.search(boundary.message, str(failure.value)), str(failure.value)
    else:
        run_stage(boundary.gate, ws)
    verdict = _verdict(ws, boundary.gate)
    assert verdict["passed"] is not past
    assert [f["check"] for f in verdict["critical_failures"]] == ([boundary.check] if past else [])
    judged = [c for c in verdict["checks"] if c["check"] == boundary.check]
    assert [c["success"] for c in judged] == [not past]
    # the gate measured the value the edit produced
    assert boundary.measured(verdict) == pytest.approx(value, rel=1e-9, abs=1e-12)
