"""The bad-input corpus: each defect fails the right gate with the right message, production untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_inputs import DEFECTS, GATE_LOGS, GATE_MODEL, GATE_SIDS, copy_of, production_pointer, session_base

from saviorrec.stages import run_stage
from saviorrec.workspace import StageError

GATES = (GATE_LOGS, GATE_SIDS, GATE_MODEL)


@pytest.fixture(scope="module")
def baseline(tiny_pipeline, tmp_path_factory):
    return session_base(tiny_pipeline, tmp_path_factory)


def _verdict(ws, gate: str) -> dict:
    return json.loads(ws.gate_file(gate).read_text())


def test_corpus_covers_the_issue():
    names = {d.name for d in DEFECTS}
    assert len(names) == len(DEFECTS) >= 12
    for required in ("schema_drift", "null_user_ids", "duplicate_event_ids", "future_timestamps",
                     "conversion_without_click", "unknown_items", "empty_day", "volume_spike", "ctr_collapse",
                     "sid_collisions", "nan_embeddings", "regressed_model"):
        assert required in names


def test_clean_run_passes_every_gate_and_keeps_runs_by_date(baseline, tmp_path):
    base, registry = baseline
    ws = copy_of(base, tmp_path / "ws")
    for gate in GATES:
        verdict = _verdict(ws, gate)
        assert verdict["passed"] is True, verdict["critical_failures"]
        assert verdict["critical_failures"] == []
        assert Path(verdict["data_docs"]).is_file()
    assert _verdict(ws, GATE_MODEL)["facts"]["production"] is not None  # compared with the promoted model
    # A second run keeps the first one's results (stored by run name + time, not overwritten).
    run_stage("validate_logs", ws)
    runs = list((ws.path("gx_project") / "gx" / "uncommitted" / "validations" / "validate_logs" / "days").glob("*/*"))
    assert len(runs) == 2
    pages = list((ws.path("data_docs") / "validations" / "validate_logs" / "days").glob("*/*/*.html"))
    assert len(pages) == 2


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_defect_fails_its_gate(defect, baseline, tmp_path):
    base, registry = baseline
    ws = copy_of(base, tmp_path / "ws")
    before = production_pointer(registry)
    assert before is not None
    defect.apply(ws)

    with pytest.raises(StageError) as failure:
        run_stage(defect.gate, ws)
    message = str(failure.value)
    assert defect.message in message
    assert "observed" in message

    verdict = _verdict(ws, defect.gate)
    assert verdict["passed"] is False
    failed = {f["check"]: f for f in verdict["critical_failures"]}
    assert defect.check in failed, verdict["critical_failures"]
    assert failed[defect.check]["observed"] and failed[defect.check]["observed"] in message
    assert Path(verdict["data_docs"]).is_file()

    # promotion refuses because of this gate, and the production pointer does not move
    with pytest.raises(StageError, match=f"refusing to promote: .*{defect.gate}: failed"):
        run_stage("promote", ws)
    assert production_pointer(registry) == before


def test_cli_names_the_failure_without_a_traceback(baseline, tmp_path, capsys):
    base, _ = baseline
    ws = copy_of(base, tmp_path / "ws")
    next(d for d in DEFECTS if d.name == "schema_drift").apply(ws)
    from pipelines import validate_logs

    with pytest.raises(SystemExit) as exit_:
        validate_logs.main(["--params", str(ws.root / "params.yaml"), "--workdir", str(ws.root)])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert f"Data Docs: {ws.path('data_docs') / 'index.html'}" in out
    assert err.startswith("error: gate validate_logs failed 1 critical expectation(s):")
    assert "missing column(s) click (found clicked)" in err and "Traceback" not in err
