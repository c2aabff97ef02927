"""saviorrec_daily parses, has the intended graph, and its orchestration helpers behave (fast)."""

from __future__ import annotations

import datetime as dt
import json
import os

import airflow_harness  # noqa: F401  (private AIRFLOW_HOME before airflow is imported)
import pytest

import saviorrec.stages
from saviorrec.config import available_presets, load_params, write_workspace_params
from saviorrec.orchestration import cadence, form, workspace
from saviorrec.workspace import Workspace

STAGES = list(saviorrec.stages.STAGES)  # the one registry of stages


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(airflow_harness.REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags["saviorrec_daily"]


@pytest.fixture(scope="module")
def base():
    return load_params(airflow_harness.PARAMS)


EDGES = {  # the pipeline's real dependencies, and nothing else (every task reads the run folder from XCom)
    "prepare": {"ingest"},
    "ingest": {"validate_logs"},
    "validate_logs": {"encoder_cadence"},
    "encoder_cadence": {"train_encoder", "reuse_encoder"},
    "train_encoder": {"build_codebook"},
    "build_codebook": {"validate_sids"},
    "reuse_encoder": {"validate_sids"},
    "validate_sids": {"mark_validated"},
    "mark_validated": {"train_ranker", "baseline"},
    "train_ranker": {"evaluate"},
    "evaluate": {"validate_model"},
    "baseline": {"evaluate"},  # evaluate plots, and the model gate compares with, the baseline's scores
    "validate_model": {"promote"},
    "promote": set(),
}


def test_dag_graph(dag):
    ids = set(dag.task_ids)
    assert set(STAGES) <= ids
    assert {t.task_id: t.downstream_task_ids for t in dag.tasks} == EDGES
    # promote is reached only through every gate
    assert {"validate_logs", "validate_sids", "validate_model"} <= dag.get_task("promote").get_flat_relative_ids(upstream=True)


def test_dag_docs_are_markdown_with_the_diagram_fenced(dag):
    doc = dag.doc_md
    assert doc.startswith("# saviorrec_daily")
    fence = doc.split("```")
    assert len(fence) == 3, "one fenced block holds the diagram"
    diagram = fence[1]
    for upstream, downstream in EDGES.items():  # the diagram draws every edge of the graph
        for task_id in downstream:
            assert any(upstream in line and task_id in line.split(upstream, 1)[1] for line in diagram.splitlines()), \
                (upstream, task_id)


def test_gate_tasks_have_a_data_docs_link(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # what the API server reads
    for task_id in dag.task_ids:
        links = serialized.get_task(task_id).extra_links
        assert links == (["Data Docs"] if task_id in ("validate_logs", "validate_sids", "validate_model") else []), task_id


def test_dag_schedule_queues_and_retries(dag, base):
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    core = coerce_to_core_timetable(dag.timetable)
    assert core.summary in ("@daily", "0 0 * * *")
    # a manual run mid-day covers the last complete day, as the scheduled run for that day does
    interval = core.infer_manual_data_interval(run_after=dt.datetime(2024, 3, 6, 14, 30, tzinfo=dt.UTC))
    assert (interval.start, interval.end) == (dt.datetime(2024, 3, 5, tzinfo=dt.UTC), dt.datetime(2024, 3, 6, tzinfo=dt.UTC))
    assert dag.catchup is False
    assert dag.max_active_runs == base.airflow.max_active_runs
    for stage in ("train_encoder", "build_codebook", "train_ranker", "baseline"):
        t = dag.get_task(stage)
        assert (t.queue, t.pool) == (base.airflow.gpu_queue, base.airflow.gpu_pool)
    for stage in ("ingest", "validate_logs", "evaluate", "promote"):
        assert dag.get_task(stage).queue == "default"
    t = dag.get_task("train_ranker")
    assert t.retries == base.airflow.retries and t.retry_exponential_backoff
    assert t.execution_timeout == dt.timedelta(minutes=base.airflow.execution_timeout_minutes)
    joins = dag.get_task("validate_sids").trigger_rule  # after whichever branch ran
    assert str(joins) in ("none_failed_min_one_success", "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS")
    for stage in ("train_ranker", "evaluate", "baseline", "validate_model", "promote"):
        assert str(dag.get_task(stage).trigger_rule) in ("all_success", "TriggerRule.ALL_SUCCESS")


def test_params_form_schema(dag, base):
    params = {name: dag.params.get_param(name) for name in dag.params}
    assert set(params) == set(form.RunForm.model_fields)
    assert params["ranker_variant"].schema["enum"][0] == "id_only"
    assert params["preset"].schema["enum"] == available_presets(airflow_harness.PARAMS) == ["tiny"]
    assert params["data_source"].schema["enum"] == ["synthetic", "movielens", "parquet"]
    assert (params["ranker_epochs"].schema["minimum"], params["ranker_epochs"].schema["maximum"]) == (1, 100)
    assert params["skip_encoder_refresh"].schema["type"] == "boolean"
    # Airflow itself rejects out-of-range values before a run is created
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        params["ranker_epochs"].resolve(0)
    with pytest.raises(ParamValidationError):
        params["ranker_variant"].resolve("gbdt")


def test_form_server_side_validation(base, tmp_path):
    assert form.validate_form({"ranker_epochs": 3, "preset": "tiny"}, base).ranker_epochs == 3
    for bad, word in [({"ranker_epochs": 0}, "ranker_epochs"), ({"ranker_variant": "gbdt"}, "ranker_variant"),
                      ({"preset": "huge"}, "preset"), ({"surprise": 1}, "surprise"),
                      ({"overrides": {"paths.data": "/etc"}}, "paths.data"),
                      ({"overrides": {"registry.uri": "s3://x"}}, "registry.uri")]:
        with pytest.raises(form.FormError, match=word):
            form.validate_form(bad, base)


def test_data_path_must_stay_under_the_data_root(tmp_path):
    root = tmp_path / "data"
    (root / "movielens").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", root / "escape")
    assert form.check_data_path("movielens", str(root)) == str(root / "movielens")
    assert form.check_data_path(str(root / "movielens"), str(root)) == str(root / "movielens")
    for bad in ["../secret", "/etc", "escape", "movielens/../../secret", "s3://bucket/x", "http://x"]:
        with pytest.raises(form.FormError, match="data root|only local"):
            form.check_data_path(bad, str(root))
    assert form.check_data_path("events", "s3://bucket/data/") == "s3://bucket/data/events"
    with pytest.raises(form.FormError):
        form.check_data_path("s3://other/events", "s3://bucket/data/")
    with pytest.raises(form.FormError):
        form.check_data_path("../x", "s3://bucket/data/")


def test_prepare_run_workspace_is_keyed_by_logical_date(base, monkeypatch, tmp_path):
    monkeypatch.setenv("SAVIORREC_RUNS_ROOT", str(tmp_path / "runs"))
    run_form = form.validate_form({"preset": "tiny", "ranker_epochs": 2, "overrides": {"ranker.lr": 0.01}}, base)
    day = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    run = workspace.prepare_run_workspace(day, run_form)
    assert run.root == tmp_path / "runs" / "2024-03-05"
    params = load_params(run.params_file)
    assert params.ranker.epochs == 2  # the form wins over the tiny preset's 1
    assert params.ranker.lr == 0.01
    assert params.encoder.epochs == base.encoder.epochs  # tiny preset still applied elsewhere
    n_days = params.synthetic.n_days
    assert params.synthetic.start_date == dt.date(2024, 3, 5) - dt.timedelta(days=n_days - 1)
    assert params.registry.uri == str(airflow_harness.REGISTRY)
    assert params.paths.text_cache.startswith(str(tmp_path / "runs"))

    (run.root / "stale.txt").write_text("from an earlier attempt")
    first = run.params_file.read_text()
    again = workspace.prepare_run_workspace(day, run_form)
    assert again.params_file.read_text() == first and not (run.root / "stale.txt").exists()
    other = workspace.prepare_run_workspace(dt.datetime(2024, 3, 6, tzinfo=dt.UTC), run_form)
    assert other.root != run.root
    # A manual run mid-day evaluates the last complete day (its data interval's start).
    manual = workspace.prepare_run_workspace(dt.datetime(2024, 3, 6, 14, 30, tzinfo=dt.UTC), run_form,
                                             day=dt.date(2024, 3, 5))
    assert manual.root.name == "2024-03-06T14-30-00" and manual.data_day == dt.date(2024, 3, 5)
    assert load_params(manual.params_file).synthetic.start_date == params.synthetic.start_date

    parquet = form.validate_form({"data_source": "parquet", "preset": "tiny"}, base)
    params = load_params(workspace.prepare_run_workspace(day, parquet).params_file)
    assert (params.split.train_end, params.split.eval_end) == (dt.date(2024, 3, 5), dt.date(2024, 3, 6))


def test_cadence_decision():
    ws = type("W", (), {"root": "/runs/x"})()
    src = cadence.ArtifactSource(ws=ws, kind="run", refreshed_on=dt.date(2024, 3, 1))
    day = dt.date(2024, 3, 5)
    assert cadence.decide_refresh(day, 7, False, None).refresh
    assert cadence.decide_refresh(day, 7, True, None).refresh  # nothing to reuse
    assert not cadence.decide_refresh(day, 7, False, src).refresh
    assert cadence.decide_refresh(day, 4, False, src).refresh
    assert not cadence.decide_refresh(day, 1, True, src).refresh
    unknown = cadence.ArtifactSource(ws=ws, kind="production", refreshed_on=None)
    assert cadence.decide_refresh(day, 7, False, unknown).refresh


def _fake_run(root, day, validated, refreshed=None):
    root.mkdir(parents=True)
    write_workspace_params(root, base=airflow_harness.PARAMS)
    workspace.update_manifest(root, logical_date=day, data_day=day, artifacts_validated=validated,
                              encoder_refreshed_on=refreshed)
    ws = Workspace.open(root)
    for name in ("encoder", "codebook"):
        ws.path(name).mkdir(parents=True)
        (ws.path(name) / "model.pt").write_text(f"{name} of {day}")
    for name in ("embeddings", "sids", "text_features"):
        ws.path(name).parent.mkdir(parents=True, exist_ok=True)
        ws.path(name).write_text(f"{name} of {day}")
    return ws


def test_reuse_picks_latest_validated_earlier_run(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "2024-03-01", "2024-03-01", True, "2024-03-01")
    _fake_run(runs / "2024-03-03", "2024-03-03", True, "2024-03-01")
    _fake_run(runs / "2024-03-04", "2024-03-04", False)  # its SIDs failed the gate
    _fake_run(runs / "2024-03-09", "2024-03-09", True, "2024-03-09")  # the future: never used
    target = _fake_run(runs / "2024-03-05", "2024-03-05", False)
    for name in ("encoder", "codebook"):
        (target.path(name) / "model.pt").unlink()
    source = cadence.latest_validated_run(runs, dt.date(2024, 3, 5), exclude=target.root)
    assert source.ws.root == runs / "2024-03-03" and source.refreshed_on == dt.date(2024, 3, 1)
    copied = cadence.reuse_artifacts(source, target)
    assert {"encoder", "codebook", "embeddings", "sids"} <= set(copied)
    assert (target.path("encoder") / "model.pt").read_text() == "encoder of 2024-03-03"
    assert target.path("sids").read_text() == "sids of 2024-03-03"
    assert cadence.latest_validated_run(runs, dt.date(2024, 3, 1)) is None

    empty = _fake_run(runs / "2024-02-01", "2024-02-01", True, "2024-02-01")
    empty.path("sids").unlink()
    with pytest.raises(FileNotFoundError, match="sids"):
        cadence.reuse_artifacts(cadence.ArtifactSource(empty, "run", None), target)


def _ranker_run(root, day, gate_passed, overrides=None, trained_until=None):
    """A finished run folder: its ranker and baseline (trained until the day before), its model gate."""
    root.mkdir(parents=True)
    write_workspace_params(root, {"ranker.warm_start": True, **(overrides or {})}, base=airflow_harness.PARAMS)
    workspace.update_manifest(root, logical_date=day, data_day=day)
    ws = Workspace.open(root)
    until = trained_until or (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    for name in ("ranker", "baseline"):
        ws.path(name).mkdir(parents=True)
        (ws.path(name) / "config.json").write_text(f'{{"trained_until": "{until}", "of": "{name} of {day}"}}')
    if gate_passed is not None:
        ws.gate_file("validate_model").parent.mkdir(parents=True, exist_ok=True)
        ws.gate_file("validate_model").write_text(f'{{"passed": {str(gate_passed).lower()}}}')
    return ws


def test_a_run_continues_the_latest_earlier_ranker_that_passed_the_model_gate(tmp_path):
    from saviorrec.orchestration.ranker_warm_start import seed_run_rankers

    runs = tmp_path / "runs"
    _ranker_run(runs / "2024-03-01", "2024-03-01", True)
    _ranker_run(runs / "2024-03-02", "2024-03-02", True)
    _ranker_run(runs / "2024-03-03", "2024-03-03", False)  # its candidate was refused: never continued
    _ranker_run(runs / "2024-03-04", "2024-03-04", None)  # its model gate never ran
    _ranker_run(runs / "2024-03-05", "2024-03-05", True, {"seed": 7})  # another synthetic world
    _ranker_run(runs / "2024-03-05T12-00-00", "2024-03-05T12:00:00", True, trained_until="2024-03-06")  # saw today
    (runs / "2024-03-05T13-00-00").mkdir()
    (runs / "2024-03-05T13-00-00" / "params.yaml").write_text("ranker: [not, valid")  # a damaged folder
    workspace.update_manifest(runs / "2024-03-05T13-00-00", logical_date="2024-03-05")
    _ranker_run(runs / "2024-03-09", "2024-03-09", True)  # a later date: never continued
    target = _ranker_run(runs / "2024-03-06", "2024-03-06", None)
    record = seed_run_rankers(target, runs)
    assert record["source"] == str(runs / "2024-03-02") and record["seeded"] == ["ranker", "baseline"]
    for name, seed in (("ranker", "ranker_seed"), ("baseline", "baseline_seed")):
        assert json.loads((target.path(seed) / "config.json").read_text())["of"] == f"{name} of 2024-03-02"
        assert json.loads((target.path(name) / "config.json").read_text())["of"] == f"{name} of 2024-03-06"
    assert workspace.read_manifest(target.root)["ranker_warm_start"] == record

    first = _ranker_run(tmp_path / "alone" / "2024-03-01", "2024-03-01", None)
    assert seed_run_rankers(first, tmp_path / "alone")["source"] is None
    cold = _ranker_run(runs / "2024-03-07", "2024-03-07", None, {"ranker.warm_start": False})
    assert seed_run_rankers(cold, runs)["source"] is None
    assert not cold.path("ranker_seed").exists()  # warm start off: the run trains cold, nothing copied
    # a fixed split (MovieLens): every earlier ranker trained up to or past its cut, none continued
    fixed = _ranker_run(runs / "2024-03-08", "2024-03-08", None, {"split.train_end": "2024-02-29"})
    assert seed_run_rankers(fixed, runs)["source"] is None


def test_daily_runs_warm_start_the_ranker_unless_the_form_says_otherwise(base, monkeypatch, tmp_path):
    monkeypatch.setenv("SAVIORREC_RUNS_ROOT", str(tmp_path / "runs"))
    day = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    assert base.airflow.ranker_warm_start is True
    run = workspace.prepare_run_workspace(day, form.validate_form({"preset": "tiny"}, base))
    assert load_params(run.params_file).ranker.warm_start is True
    cold = form.validate_form({"preset": "tiny", "overrides": {"ranker.warm_start": False}}, base)
    assert load_params(workspace.prepare_run_workspace(day, cold).params_file).ranker.warm_start is False


def test_only_retried_training_stages_resume_from_their_last_checkpoint():
    from saviorrec.stages import resume_options

    training = ("train_encoder", "build_codebook", "train_ranker", "baseline")
    for stage in training:
        assert resume_options(stage, 1) == {}  # a fresh try never picks up a stale checkpoint
        assert resume_options(stage, 2) == {"ckpt_path": "last"}
    assert all(resume_options(s, 3) == {} for s in STAGES if s not in training)


def test_stage_errors_fail_without_retry(tmp_path):
    """A stage's StageError (bad input, failed gate) becomes RunFailure, which the DAG turns into
    AirflowFailException: no retries, the stage's message kept."""
    from saviorrec.orchestration import tasks

    ws = _fake_run(tmp_path / "run", "2024-03-01", False)
    with pytest.raises(tasks.RunFailure, match="validate_model failed: .*events"):
        tasks.run_task("validate_model", ws.root)


def test_manual_runs_promote_only_when_asked_and_scheduled_runs_follow_the_setting(dag, base, monkeypatch, tmp_path):
    assert dag.params.get_param("promote").value is False  # the form's box starts unticked
    unticked = form.validate_form({"preset": "tiny"}, base)
    ticked = form.validate_form({"preset": "tiny", "promote": True}, base)
    assert form.promote_policy(unticked, "manual", base) == "never"
    assert form.promote_policy(ticked, "manual", base) == "always"
    assert form.promote_policy(unticked, "backfill", base) == "never"
    assert base.airflow.scheduled_promote == "always"
    assert form.promote_policy(unticked, "scheduled", base) == "always"  # the daily refresh's job
    held = base.model_copy(update={"airflow": base.airflow.model_copy(update={"scheduled_promote": "never"})})
    assert form.promote_policy(unticked, "scheduled", held) == "never"
    # the policy reaches the run's params as an explicit registry.promote
    monkeypatch.setenv("SAVIORREC_RUNS_ROOT", str(tmp_path / "runs"))
    day = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    assert load_params(workspace.prepare_run_workspace(day, unticked).params_file).registry.promote == "never"
    run = workspace.prepare_run_workspace(day, unticked, promote="always")
    assert load_params(run.params_file).registry.promote == "always"


def test_library_info_lines_go_to_the_task_log_not_stderr(capfd):
    """Lightning's own console handlers write its info lines to stderr (ERROR in an Airflow task
    log); routed, they reach the root logger at INFO and nothing reaches stderr."""
    import logging

    import lightning.pytorch  # noqa: F401  (installs its handlers)

    from saviorrec.orchestration import tasks

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    root = logging.getLogger()
    keep = Keep(level=logging.INFO)
    root.addHandler(keep)
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in tasks.LIBRARY_LOGGERS}
    try:
        logging.getLogger("lightning").addHandler(logging.StreamHandler())  # as lightning/__init__ does
        tasks.route_library_logs()
        capfd.readouterr()
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
        out, err = capfd.readouterr()
        assert "GPU available" not in err
        assert [(r.levelname, r.getMessage()) for r in seen if "GPU available" in r.getMessage()] == \
            [("INFO", "GPU available: False, used: False")]
    finally:
        root.removeHandler(keep)
        logging.captureWarnings(False)
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate = propagate


def test_verdict_table_names_each_check_and_the_model_aucs():
    from data_checks.gate import verdict_table

    payload = {
        "gate": "validate_model", "passed": False, "data_docs": "/r/data_docs/index.html",
        "data_docs_page": "/r/data_docs/validations/validate_model/summary/x.html",
        "critical_failures": [{"check": "auc_regression"}], "warnings": [],
        "checks": [
            {"check": "calibration", "expectation": "s", "severity": "critical", "success": True,
             "observed": "1.02", "threshold": "[0.8, 1.2]"},
            {"check": "auc_regression", "expectation": "s", "severity": "critical", "success": False,
             "observed": "-0.03", "threshold": ">= -0.005"},
        ],
        "facts": {"candidate": {"auc": 0.61, "new_auc": 0.58, "new_n": 240},
                  "production": {"auc": 0.64, "new_auc": 0.59, "new_n": 240},
                  "baseline": {"variant": "content_frozen", "auc": 0.55, "new_auc": 0.57, "new_n": 240}},
    }
    lines = verdict_table(payload).splitlines()
    assert lines[0].startswith("validate_model: FAILED")
    assert lines[1].split() == ["check", "observed", "threshold", "verdict"]
    assert lines[2].split() == ["auc_regression", "-0.03", ">=", "-0.005", "FAIL"]  # failures first
    assert lines[3].split() == ["calibration", "1.02", "[0.8,", "1.2]", "pass"]
    text = "\n".join(lines)
    for row in ("candidate 0.6100 0.5800", "production 0.6400 0.5900", "baseline (content_frozen) 0.5500 0.5700"):
        assert row in " ".join(text.split()), row
    assert "this gate's page: /r/data_docs/validations/validate_model/summary/x.html" in text
