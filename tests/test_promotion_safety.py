"""Promotion that cannot surprise anyone.

- ``registry.promote`` is always | never | first (default; old booleans keep their meaning);
- the model gate refuses to compare with a production model trained on another setting
  (data source, preset, world), and says so; versions published before settings were
  recorded get theirs from their own params.yaml;
- ``registry list`` / ``show`` say what each version is, ``registry promote`` refuses failed
  gates or another setting unless ``--force``, which is recorded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bad_inputs import GATE_MODEL, copy_of, open_ws, production_pointer, session_base, set_params
from registry_fakes import fake_model_workspace
from typer.testing import CliRunner

from saviorrec.cli import app
from saviorrec.config import ParamsError, load_params
from saviorrec.stages import run_stage
from saviorrec.storage.registry import open_registry
from saviorrec.workspace import StageError

REPO = Path(__file__).resolve().parents[1]


# ---- registry.promote ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "policy"), [("always", "always"), ("never", "never"), ("first", "first"),
                                               (True, "always"), (False, "never"), ("true", "always")])
def test_promote_policy_values_and_old_booleans(value, policy, tmp_path):
    params = load_params(REPO / "params.yaml", overrides={"registry.promote": value})
    assert params.registry.promote == policy
    # an old params file (or bundle) that says `promote: true` keeps meaning "promote"
    old = tmp_path / "params.yaml"
    shutil.copytree(REPO / "params", tmp_path / "params")
    old.write_text((REPO / "params.yaml").read_text().replace("  promote: first", f"  promote: {str(value).lower()}"))
    assert load_params(old).registry.promote == policy
    assert load_params(REPO / "params.yaml").registry.promote == "first"  # the default: a fresh `make run` promotes


def test_setting_is_source_preset_and_world_not_the_window():
    from saviorrec.storage.lineage import setting_differences, training_setting

    def setting(**overrides):
        return training_setting(load_params(REPO / "params.yaml", overrides={"preset": "tiny", **overrides}), REPO)

    tiny = setting()
    # what moves from run to run of one world: the window, the log length, model hyperparameters
    for same in ({"synthetic.start_date": "2025-03-01", "split.train_end": "2024-01-03"}, {"synthetic.n_days": 9},
                 {"ranker.lr": 0.01, "ranker.variant": "id_only"}, {"synthetic.partition_rows": 5000}):
        assert setting(**same) == tiny, same
    assert setting_differences(setting(**{"synthetic.n_users": 151}), tiny) == ["synthetic.n_users 151 vs 150"]
    assert setting_differences(setting(seed=7), tiny) == ["seed 7 vs 20250801"]
    other_preset = {**tiny, "preset": "large"}
    assert setting_differences(other_preset, tiny) == ["preset large vs tiny"]  # the preset alone counts
    # movielens: the folder (resolved) and the subsetting; the seed only when it samples
    ml = setting(**{"data.source": "movielens"})
    assert ml["world"]["data.path"] == str((REPO / "../shared/data/movielens-small-dev").resolve())
    assert "seed" not in ml["world"] and setting_differences(ml, tiny)[0] == "data_source movielens vs synthetic"
    assert setting_differences(setting(**{"data.source": "movielens", "movielens.max_users": 50}), ml) == [
        "movielens.max_users 50 vs None", "seed 20250801 vs -"]
    assert setting(**{"data.source": "movielens", "data.path": "/elsewhere"}) != ml


def test_unknown_promote_policy_is_one_clear_error():
    with pytest.raises(ParamsError) as err:
        load_params(REPO / "params.yaml", overrides={"registry.promote": "sometimes"})
    assert "registry.promote" in str(err.value) and "'always', 'never' or 'first'" in str(err.value)


def _fake(tmp_path: Path, tag: str, registry: Path, **overrides):
    return fake_model_workspace(tmp_path / tag, tag, {"registry.uri": str(registry), **overrides})


def _write_model_verdict(ws, passed: bool = True, auc: float = 0.71, new_auc: float = 0.65) -> None:
    ws.gate_file(GATE_MODEL).write_text(json.dumps({
        "gate": GATE_MODEL, "passed": passed, "critical_failures": [] if passed else [{"expectation": "auc"}],
        "facts": {"train_end": "2024-01-05", "eval_end": "2024-01-06",
                  "candidate": {"auc": auc, "new_auc": new_auc}}}))


def test_always_never_moves_production_to_another_setting(tmp_path, monkeypatch):
    """Even when a gate let it through (same_setting as a warning), `always` keeps production on its setting."""
    registry = tmp_path / "registry"
    assert run_stage("promote", _fake(tmp_path, "A", registry))["production"] == "v1"
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__2026-01-02")
    other = _fake(tmp_path, "B", registry, **{"synthetic.n_users": 151, "registry.promote": "always"})
    receipt = run_stage("promote", other)
    assert receipt["version"] == "v2" and receipt["production"] == "v1" and not receipt["promoted"]
    assert "another setting than production v1" in receipt["not_promoted_because"]
    assert "synthetic.n_users 151 vs 150" in receipt["not_promoted_because"]
    same = _fake(tmp_path, "C", registry, **{"registry.promote": "always"})
    assert run_stage("promote", same)["production"] == "v3"
    pointer = open_registry(same.params, root=same.root).production()
    assert pointer["promoted_by"] == "airflow run manual__2026-01-02"  # Airflow exports its context to tasks


# ---- the model gate: only the same setting is compared ------------------------------------------

@pytest.fixture(scope="module")
def baseline(tiny_pipeline, tmp_path_factory):
    return session_base(tiny_pipeline, tmp_path_factory)


def _default_world_production(base: Path, dst: Path, registry: Path) -> None:
    """The base model published as if trained on the `default` preset's world (full-size synthetic)."""
    from saviorrec.config import write_workspace_params

    shutil.copytree(base, dst, ignore=shutil.ignore_patterns(".cache", "registry"))
    write_workspace_params(dst, {"preset": "default", "ranker.variant": "heuristic",
                                 "baseline.variant": "heuristic", "registry.uri": str(registry)},
                           base=REPO / "params.yaml")
    ws = open_ws(dst)
    api = open_registry(ws.params, root=ws.root)
    api.promote(api.publish(ws))


def _candidate(base: Path, dst: Path, registry: Path, **overrides):
    copy_of(base, dst)
    set_params(dst, **{"registry.uri": str(registry), **overrides})
    return open_ws(dst)


def test_tiny_candidate_is_not_compared_with_default_world_production(baseline, tmp_path):
    base, _ = baseline
    registry = tmp_path / "registry"
    _default_world_production(base, tmp_path / "prod", registry)
    ws = _candidate(base, tmp_path / "ws", registry, **{"registry.promote": "always"})
    before = production_pointer(registry)

    with pytest.raises(StageError) as failure:
        run_stage(GATE_MODEL, ws)
    message = str(failure.value)
    assert "trained on another setting than production v1 (preset tiny vs default;" in message
    assert "synthetic.n_initial_items 150 vs 2000" in message and "not comparable" in message
    verdict = json.loads(ws.gate_file(GATE_MODEL).read_text())
    assert [f["check"] for f in verdict["critical_failures"]] == ["same_setting"]
    # production was not scored on the tiny window: no AUC comparison at all, said why
    assert verdict["facts"]["production"] is None
    assert not {"auc_regression", "new_auc_regression"} & {c["check"] for c in verdict["checks"]}
    assert any("production was trained on another setting" in w["message"] for w in verdict["warnings"])
    setting = verdict["facts"]["setting"]
    assert setting["candidate"]["preset"] == "tiny" and setting["production"]["preset"] == "default"
    with pytest.raises(StageError, match=f"refusing to promote: .*{GATE_MODEL}: failed"):
        run_stage("promote", ws)
    assert production_pointer(registry) == before


def test_a_run_that_cannot_promote_publishes_across_settings_and_production_stays(baseline, tmp_path):
    """A tiny smoke run (registry.promote first, production exists) is gated on its own merits and
    published; production, of another setting, is neither compared nor moved."""
    base, _ = baseline
    registry = tmp_path / "registry"
    _default_world_production(base, tmp_path / "prod", registry)
    ws = _candidate(base, tmp_path / "ws", registry)
    assert ws.params.registry.promote == "first"
    before = production_pointer(registry)
    assert run_stage(GATE_MODEL, ws)["passed"]
    verdict = json.loads(ws.gate_file(GATE_MODEL).read_text())
    assert "same_setting" not in {c["check"] for c in verdict["checks"]} and verdict["facts"]["production"] is None
    assert any("publishes without promoting" in w["message"] for w in verdict["warnings"])
    receipt = run_stage("promote", ws)
    assert receipt["version"] == "v2" and receipt["production"] == "v1" and not receipt["promoted"]
    assert production_pointer(registry) == before


def test_production_without_a_recorded_setting_uses_its_params(baseline, tmp_path):
    """A version published before settings were recorded: its setting comes from its own params.yaml."""
    base, session_registry = baseline
    registry = tmp_path / "registry"
    shutil.copytree(session_registry, registry)
    manifest_file = registry / "models/saviorrec/v1/manifest.json"
    manifest = json.loads(manifest_file.read_text())
    for key in ("setting", "evaluation", "gates", "published_by"):
        manifest.pop(key)
    manifest_file.write_text(json.dumps(manifest))  # the manifest is not in its own checksums

    ws = _candidate(base, tmp_path / "same", registry)
    verdict = run_stage(GATE_MODEL, ws)
    assert verdict["passed"] is True
    full = json.loads(ws.gate_file(GATE_MODEL).read_text())
    assert full["facts"]["production"] is not None  # compared, as before
    assert full["facts"]["setting"]["production_recorded"] is False
    assert any("records no setting" in w["message"] for w in full["warnings"])

    other = _candidate(base, tmp_path / "other", registry, **{"synthetic.n_users": 151, "registry.promote": "always"})
    with pytest.raises(StageError, match=r"another setting than production v1 \(synthetic.n_users 151 vs 150\)"):
        run_stage(GATE_MODEL, other)

    listed = CliRunner().invoke(app, ["registry", "list", "--params", str(ws.root / "params.yaml")])
    assert listed.exit_code == 0, listed.output
    assert "~" in listed.output.splitlines()[2] and "setting derived from the version's params.yaml" in listed.output


# ---- registry list / show / promote ---------------------------------------------------------------

def _cli(*args: str):
    result = CliRunner().invoke(app, ["registry", *args])
    return result


def test_registry_list_and_show_say_what_each_version_is(tmp_path):
    registry = tmp_path / "registry"
    a = _fake(tmp_path, "A", registry)
    _write_model_verdict(a, auc=0.7123, new_auc=0.6541)
    run_stage("promote", a)  # v1: first -> production
    b = _fake(tmp_path, "B", registry)
    _write_model_verdict(b, passed=False)
    open_registry(b.params, root=b.root).publish(b)  # v2: its model gate failed
    params = ["--params", str(a.root / "params.yaml")]

    listed = _cli("list", *params)
    assert listed.exit_code == 0, listed.output
    header, v1, v2 = listed.output.splitlines()[1:4]
    for column in ("preset", "source", "eval window", "AUC", "new AUC", "logs", "sids", "model", "promoted by"):
        assert column in header
    assert v1.startswith("* v1") and v2.startswith("  v2")
    assert v1.split()[2:4] == ["tiny", "synthetic"]
    assert "[2024-01-05, 2024-01-06)" in v1 and "0.7123" in v1 and "0.6541" in v1
    assert v1.count("pass") == 3
    assert "promote stage (" in v1 and v2.split()[-4:] == ["pass", "pass", "FAIL", "-"]

    shown = _cli("show", "production", *params)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert 8 <= len(lines) <= 16 and "[production]" in lines[0]
    assert "CTR AUC       0.7123 overall, 0.6541 on new items" in shown.output
    assert "preset tiny, source synthetic" in shown.output and "validate_model pass" in shown.output
    full = json.loads(_cli("show", "v2", "--json", *params).output)
    assert full["gates"]["validate_model"] is False and full["setting"]["preset"] == "tiny"
    assert "lineage" in full and "metrics" in full


def test_registry_promote_refuses_failed_gates_and_another_setting(tmp_path):
    registry = tmp_path / "registry"
    a = _fake(tmp_path, "A", registry)
    run_stage("promote", a)  # v1
    failed = _fake(tmp_path, "B", registry)
    _write_model_verdict(failed, passed=False)
    other = _fake(tmp_path, "C", registry, **{"synthetic.n_users": 151})
    api = open_registry(a.params, root=a.root)
    api.publish(failed)  # v2
    api.publish(other)   # v3
    params = ["--params", str(a.root / "params.yaml")]

    refused = _cli("promote", "v2", *params)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert "refusing to promote saviorrec v2: its gates did not all pass (validate_model failed)" in refused.output
    assert "--force" in refused.output and "Traceback" not in refused.output
    refused = _cli("promote", "v3", *params)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert "trained on another setting than production v1" in refused.output
    assert "synthetic.n_users 151 vs 150" in refused.output
    assert api.production()["version"] == "v1"

    forced = _cli("promote", "v3", "--force", *params)
    assert forced.exit_code == 0, forced.output
    assert "v1 -> v3" in forced.output and "forced: overrode trained on another setting" in forced.output
    record = api.production()["promotions"][-1]
    assert record["version"] == "v3" and record["by"].startswith("cli (")
    assert "synthetic.n_users 151 vs 150" in record["overrode"][0]
    # a version with passing gates and production's setting needs no force
    same = _fake(tmp_path, "D", registry, **{"synthetic.n_users": 151})
    api.publish(same)  # v4
    ok = _cli("promote", "v4", *params)
    assert ok.exit_code == 0 and "v3 -> v4" in ok.output and "forced" not in ok.output
    last = _cli("list", *params).output.splitlines()[-1]
    assert last.startswith("* v4") and last.split()[-2] == "cli"


def test_registry_promote_refusal_on_s3(s3_bucket, tmp_path):
    """The same refusal and listing with the registry on an S3 endpoint (moto server over HTTP),
    including a version published before settings were recorded (its params.yaml is read from S3)."""
    uri = f"s3://{s3_bucket}/team"
    a = _fake(tmp_path, "A", uri)
    run_stage("promote", a)
    api = open_registry(a.params, root=a.root, cache_dir=tmp_path / "cache")
    manifest = json.loads(api.store.get_bytes("models/saviorrec/v1/manifest.json"))
    del manifest["setting"]
    api.store.put_bytes("models/saviorrec/v1/manifest.json", json.dumps(manifest).encode())
    api.publish(_fake(tmp_path, "B", uri, **{"preset": "tiny", "synthetic.n_users": 151}))
    params = ["--params", str(a.root / "params.yaml")]

    listed = _cli("list", *params)
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0] == f"saviorrec @ {uri}/models/saviorrec"
    assert "~" in listed.output.splitlines()[2]
    refused = _cli("promote", "v2", *params)
    assert refused.exit_code == 2 and "trained on another setting than production v1" in refused.output
    assert "derived from its params.yaml" in refused.output
    assert api.production()["version"] == "v1"
