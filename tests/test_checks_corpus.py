"""The bad-input corpus: each defect fails the right gate with the right message, production untouched."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from bad_inputs import (
    DEFECTS,
    GATE_LOGS,
    GATE_MODEL,
    GATE_SIDS,
    REFUSED_BEFORE_VALIDATION,
    better_baseline_on_new_items,
    copy_of,
    edit_day,
    new_item_events,
    open_ws,
    production_pointer,
    remove_every_day,
    session_base,
    set_params,
)
from bad_inputs.boundaries import BOUNDARIES

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
    ws = open_ws(ws.root)  # a defect may edit params.yaml (another setting)

    with pytest.raises(StageError) as failure:
        run_stage(defect.gate, ws)
    message = str(failure.value)
    assert defect.message in message
    assert "observed" in message

    verdict = _verdict(ws, defect.gate)
    assert verdict["passed"] is False
    # the targeted expectation fails, and nothing else but what cannot help failing with it
    failures = verdict["critical_failures"]
    assert {f["check"] for f in failures} == {defect.check, *defect.also}, failures
    (targeted,) = [f for f in failures if f["check"] == defect.check]
    assert defect.expectation in targeted["expectation"]
    assert targeted["observed"] and targeted["observed"] in message
    assert Path(verdict["data_docs"]).is_file()

    # promotion refuses because of this gate, and the production pointer does not move
    with pytest.raises(StageError, match=f"refusing to promote: .*{defect.gate}: failed"):
        run_stage("promote", ws)
    assert production_pointer(registry) == before


def test_a_log_without_days_is_refused_before_validation(baseline, tmp_path):
    """days_present cannot fail inside the gate: the log reader refuses first, naming the folder."""
    base, _ = baseline
    ws = copy_of(base, tmp_path / "ws")
    remove_every_day(ws)
    with pytest.raises(FileNotFoundError, match=REFUSED_BEFORE_VALIDATION[(GATE_LOGS, "days_present")]) as failure:
        run_stage(GATE_LOGS, ws)
    assert str(ws.path("events")) in str(failure.value)
    # the earlier run's passing verdict is gone: promote cannot trust it
    assert not ws.gate_file(GATE_LOGS).exists()
    with pytest.raises(StageError, match=f"refusing to promote: {GATE_LOGS}: no verdict"):
        run_stage("promote", ws)


def _case_targets() -> list[tuple[str, str, str, str]]:
    """(case, gate, check, expectation-label fragment) for every case of the corpus."""
    return ([(d.name, d.gate, d.check, d.expectation) for d in DEFECTS]
            + [(b.name, b.gate, b.check, "") for b in BOUNDARIES]
            + [(f"refused:{check}", gate, check, "") for gate, check in REFUSED_BEFORE_VALIDATION])


def test_every_critical_check_has_a_case(baseline):
    """Each critical expectation the three gates evaluate on the clean workspace is targeted by a case
    of the corpus (a defect, a boundary, or a refusal before validation), and each case targets one."""
    base, _ = baseline
    ws = open_ws(base)
    evaluated = [(gate, c["check"], c["expectation"]) for gate in GATES
                 for c in _verdict(ws, gate)["checks"] if c["severity"] == "critical"]
    assert evaluated and all(c["success"] for gate in GATES for c in _verdict(ws, gate)["checks"]
                             if c["severity"] == "critical")
    targets = _case_targets()

    def hits(gate, check, fragment):
        return [e for e in evaluated if e[:2] == (gate, check) and fragment in e[2]]

    uncovered = [e for e in evaluated if not any(e in hits(*t[1:]) for t in targets)]
    assert not uncovered, f"critical expectations without a case in tests/bad_inputs: {uncovered}"
    # a case names exactly one evaluated expectation (a fragment tells a check's expectations apart)
    ambiguous = {t[0]: hits(*t[1:]) for t in targets if len(hits(*t[1:])) != 1}
    assert not ambiguous, f"cases whose target is not one evaluated critical expectation: {ambiguous}"
    # every numeric critical check has a boundary case
    assert {b.check for b in BOUNDARIES} >= {"volume_band", "ctr_band", "bot_threshold", "raw_collision_rate",
                                             "level1_utilization", "calibration", "auc_regression",
                                             "new_auc_regression", "new_auc_vs_baseline"}


def _data_docs_observed(ws, suite: str) -> dict[str, float]:
    """column -> observed value, as the newest Data Docs result page of ``validate_model.<suite>`` shows them."""
    pages = sorted((ws.path("data_docs") / "validations" / GATE_MODEL / suite).glob("*/*/*.html"),
                   key=lambda p: p.stat().st_mtime)
    text = re.sub(r"<script.*?</script>|<style.*?</style>", "", pages[-1].read_text(), flags=re.S)
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))
    found = re.findall(r"(\w+) Status Expectation Observed Value .*? \. ≈?(-?[0-9.]+(?:e-?[0-9]+)?)", text)
    return {column: float(value) for column, value in found}


def test_candidate_worse_than_the_baseline_on_new_items_is_refused_with_both_aucs(baseline, tmp_path):
    base, registry = baseline
    ws = copy_of(base, tmp_path / "ws")
    clean = _verdict(ws, GATE_MODEL)["facts"]
    assert clean["baseline"]["variant"] == "heuristic"
    assert clean["baseline"]["new_auc"] == pytest.approx(clean["candidate"]["new_auc"])  # same model: delta 0
    before = production_pointer(registry)
    better_baseline_on_new_items(ws)

    with pytest.raises(StageError) as failure:
        run_stage(GATE_MODEL, ws)
    verdict = _verdict(ws, GATE_MODEL)
    candidate, reference = verdict["facts"]["candidate"], verdict["facts"]["baseline"]
    assert candidate == clean["candidate"]  # the candidate did not change; the baseline got better on new items
    assert reference["new_auc"] > 0.99 > candidate["new_auc"] and reference["new_n"] == candidate["new_n"] > 0
    tolerance = ws.params.checks["model"]["baseline_new_auc_tolerance"]["value"]
    gap = reference["new_auc"] - candidate["new_auc"]
    assert gap > tolerance
    # refused by this check alone (the production comparisons still pass), both AUCs named
    assert [f["check"] for f in verdict["critical_failures"]] == ["new_auc_vs_baseline"]
    message = str(failure.value)
    expected = (f"new-item CTR AUC {candidate['new_auc']:.4f} below the heuristic baseline's "
                f"{reference['new_auc']:.4f} by more than {tolerance:g} (observed {-gap:.4g})")
    assert expected in message, message
    assert verdict["critical_failures"][0]["message"] in message
    # both AUCs in the Data Docs result page of the summary suite
    shown = _data_docs_observed(ws, "summary")
    assert shown["new_auc"] == pytest.approx(candidate["new_auc"], abs=1e-6)
    assert shown["baseline_new_auc"] == pytest.approx(reference["new_auc"], abs=1e-6)
    assert shown["baseline_auc"] == pytest.approx(reference["auc"], abs=1e-6)
    assert shown["baseline_new_auc_delta"] == pytest.approx(-gap, abs=1e-6)
    with pytest.raises(StageError, match=f"refusing to promote: .*{GATE_MODEL}: failed"):
        run_stage("promote", ws)
    assert production_pointer(registry) == before

    # The tolerance is the boundary: just inside it passes, just outside it fails.
    set_params(ws.root, **{"checks.model.baseline_new_auc_tolerance.value": gap + 0.001})
    assert run_stage(GATE_MODEL, open_ws(ws.root))["passed"] is True
    set_params(ws.root, **{"checks.model.baseline_new_auc_tolerance.value": gap - 0.001})
    with pytest.raises(StageError, match="below the heuristic baseline's"):
        run_stage(GATE_MODEL, open_ws(ws.root))


def test_model_gate_needs_the_baseline_and_skips_it_without_new_items(baseline, tmp_path):
    base, _ = baseline
    ws = copy_of(base, tmp_path / "ws")
    ws.path("baseline_predictions").unlink()
    with pytest.raises(StageError, match="no baseline predictions at .*: run the baseline stage first"):
        run_stage(GATE_MODEL, ws)

    # Without new-item impressions in the window the comparison is a recorded skip.
    ws = copy_of(base, tmp_path / "ws2")
    new = set(new_item_events(ws)["event_id"])
    edit_day(ws, lambda df: df[~df["event_id"].isin(new)])
    summary = run_stage(GATE_MODEL, ws)
    assert summary["passed"] is True
    skipped = [w for w in summary["warnings"] if w["check"] == "new_auc_vs_baseline"]
    assert skipped and "new-item AUC undefined on this window (0 new-item impressions)" in skipped[0]["message"]


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
