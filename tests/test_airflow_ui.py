"""Local mode through the browser: `scripts/airflow_up.sh`, log into the UI with headless
Chromium (Playwright), trigger saviorrec_daily from its params form with overrides, and see
the run succeed without touching production (promote unticked), its gates' verdicts and Data
Docs links, and a training log free of ERROR lines. A trigger as the UI sends it (unpause
included) starts the asked run at once: the daily schedule is off in local mode."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import uuid
from pathlib import Path

import airflow_harness
import pytest
import yaml

from saviorrec.config import write_workspace_params

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium not installed (make system-deps)")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("airflow_ui_home")
    # This module's own registry: a promotion here must not become another test's production model.
    params = write_workspace_params(home, {"registry.uri": str(home / "registry")}, base=airflow_harness.PARAMS)
    # No AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE here: airflow_up.sh's own default (schedule off) is under test.
    extra = {"SAVIORREC_PARAMS": str(params)}
    srv = airflow_harness.AirflowServers(home, extra).start()
    try:
        yield srv
    finally:
        srv.stop()


def _launch(p):
    return p.chromium.launch(executable_path=str(CHROMIUM),
                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def test_local_mode_binds_loopback_and_requires_login(servers):
    import urllib.error
    import urllib.request

    assert (servers.home / "run" / "api-server.pid").is_file()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{servers.url}/api/v2/dags", timeout=30)
    assert err.value.code in (401, 403)
    assert servers.cli("pools", "get", "gpu", "-o", "json").count('"gpu"') >= 1
    assert servers.cli("config", "get-value", "core", "executor").strip() == "LocalExecutor"
    assert servers.cli("config", "get-value", "core", "parallelism").strip() == "2"


def test_backfill_plans_one_run_per_day(servers):
    servers.wait_dag_parsed(servers.token())
    out = servers.cli("backfill", "create", "--dag-id", "saviorrec_daily", "--from-date", "2024-01-05",
                      "--to-date", "2024-01-07", "--dry-run")
    for day in ("2024-01-05", "2024-01-06", "2024-01-07"):
        assert day in out, out


UI_RUN: dict[str, str] = {}  # the browser-triggered run, checked by the tests after it


def _registry(servers):
    from saviorrec.config import load_params
    from saviorrec.storage.registry import open_registry

    return open_registry(load_params(servers.env["SAVIORREC_PARAMS"]))


def test_ui_style_trigger_with_unpause_runs_the_asked_run_now(servers):
    """What the UI's trigger button sends with "unpause" ticked (its default): PATCH is_paused=false,
    then POST a run with the whole form as conf. The run asked for starts at once; no scheduled
    run with the default preset appears and takes the only slot (max_active_runs 1)."""
    import datetime as dt
    import time

    token = servers.token()
    dag = servers.wait_dag_parsed(token)
    assert dag["is_paused"] is True  # paused at creation, as the UI shows a new DAG
    form_values = {name: servers_param["value"] for name, servers_param in
                   servers.api("dags/saviorrec_daily/details", token)["params"].items()}
    assert form_values["promote"] is False
    run_id = f"ui_style_{uuid.uuid4().hex[:8]}"
    servers.api("dags/saviorrec_daily", token, method="PATCH", body={"is_paused": False})
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    servers.api("dags/saviorrec_daily/dagRuns", token, method="POST", body={
        "conf": form_values, "dag_run_id": run_id, "data_interval_end": None, "data_interval_start": None,
        "logical_date": now, "partition_key": None})
    started = time.monotonic()
    servers.wait_task(token, run_id, "prepare", ("running", "success"), timeout=90)
    waited = time.monotonic() - started
    time.sleep(10)  # a scheduler loop or two: a scheduled run would have been created by now
    runs = servers.dag_runs(token)
    assert [(r["dag_run_id"], r["run_type"]) for r in runs] == [(run_id, "manual")], runs
    assert waited < 90
    # This run was only to show it starts; free the slot for the browser test's full run.
    servers.api(f"dags/saviorrec_daily/dagRuns/{run_id}", token, method="PATCH", body={"state": "failed"})
    # With the slot free, an active schedule would now create its daily run: none may appear.
    time.sleep(15)
    assert [r["dag_run_id"] for r in servers.dag_runs(token)] == [run_id], servers.dag_runs(token)


def test_trigger_from_the_ui_with_overrides_and_see_success(servers):
    from playwright.sync_api import sync_playwright

    airflow_harness.seed_run()  # validated encoder/codebook for this run to reuse
    token = servers.token()
    servers.wait_dag_parsed(token)
    run_id = f"ui_{uuid.uuid4().hex[:8]}"
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(servers.url)
            page.wait_for_url("**/auth/login**")
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(servers.admin_password())
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url)

            page.goto(f"{servers.url}/dags/saviorrec_daily")
            page.get_by_test_id("trigger-dag-button").click()
            dialog = page.get_by_role("dialog")
            # The params form: ranker epochs (a range-checked number) and the encoder cadence switch.
            dialog.get_by_role("spinbutton").fill("2")
            dialog.locator("#switch\\:element_skip_encoder_refresh").click()
            dialog.get_by_role("button", name="Advanced Options").click()
            dialog.locator("input[name=dagRunId]").fill(run_id)
            dialog.get_by_test_id("trigger-dag-submit").click()

            # The run exists as soon as the form is submitted; wait for it to finish, then the
            # run's page in the UI must show its final state.
            page.wait_for_url(lambda url: run_id in url or "saviorrec_daily" in url)
            final = servers.wait_run_finished(token, run_id, timeout=1200)
            state = final["state"]
            page.goto(f"{servers.url}/dags/saviorrec_daily/runs/{run_id}")
            page.get_by_text(state, exact=False).first.wait_for(timeout=120_000)
            page.screenshot(path=str(servers.home / "run_page.png"))
        finally:
            browser.close()

    UI_RUN["run_id"] = run_id
    tis = servers.task_instances(token, run_id)
    assert state == "success", {t: ti["state"] for t, ti in tis.items()}
    assert tis["promote"]["state"] == "success"
    # skip_encoder_refresh from the form: the seed run's validated encoder/codebook were reused
    assert tis["reuse_encoder"]["state"] == "success" and tis["train_encoder"]["state"] == "skipped"
    run = servers.api(f"dags/saviorrec_daily/dagRuns/{run_id}", token)
    assert run["conf"]["ranker_epochs"] == 2 and run["conf"]["skip_encoder_refresh"] is True
    folders = [f for f in airflow_harness.RUNS.iterdir() if (f / "run.json").is_file()
               and json.loads((f / "run.json").read_text()).get("run_id") == run_id]
    assert len(folders) == 1
    params = yaml.safe_load((folders[0] / "params.yaml").read_text())
    assert params["ranker"]["epochs"] == 2  # the form's override reached the stages
    assert json.loads((folders[0] / "run.json").read_text())["form"]["skip_encoder_refresh"] is True
    UI_RUN["folder"] = str(folders[0])


def test_a_manual_run_from_the_form_leaves_production_alone(servers):
    """promote unticked (the form's default): the bundle is published, production is not moved."""
    folder = Path(UI_RUN["folder"])
    assert json.loads((folder / "run.json").read_text())["form"]["promote"] is False
    assert yaml.safe_load((folder / "params.yaml").read_text())["registry"]["promote"] == "never"
    registry = _registry(servers)
    assert registry.list(), "the run's bundle was not published"
    assert registry.production() is None, "a manual run without promote moved the production pointer"


def test_gate_tasks_log_a_verdict_table_and_link_their_data_docs(servers):
    token, run_id = servers.token(), UI_RUN["run_id"]
    tis = servers.task_instances(token, run_id)
    for gate in ("validate_logs", "validate_sids", "validate_model"):
        text = servers.task_log(token, run_id, gate, tis[gate]["try_number"])
        assert f"{gate}: PASSED" in text and "threshold" in text and "verdict" in text, (gate, text[-3000:])
        link = servers.extra_links(token, run_id, gate)["Data Docs"]
        assert link.startswith("file://") and f"/validations/{gate}/" in link, (gate, link)
        assert Path(urllib.parse.urlparse(link).path).is_file(), link
    model_log = servers.task_log(token, run_id, "validate_model", tis["validate_model"]["try_number"])
    for row in ("candidate", "production", "baseline (content_frozen)", "new-item CTR AUC"):
        assert row in model_log, (row, model_log[-3000:])
    assert servers.extra_links(token, run_id, "evaluate") == {}  # only gates have the button


def test_a_successful_training_task_logs_no_errors(servers):
    """Lightning's info lines reach the task log at INFO (Airflow records a task's stderr as ERROR)."""
    token, run_id = servers.token(), UI_RUN["run_id"]
    ti = servers.task_instances(token, run_id)["train_ranker"]
    assert ti["state"] == "success"
    records = servers.log_records(token, run_id, "train_ranker", ti["try_number"])
    errors = [r for r in records if str(r.get("level", "")).lower() in ("error", "critical")]
    assert records and not errors, errors[:5]
    assert any("GPU available" in str(r.get("event")) for r in records), "Lightning's info lines are missing"


def test_invalid_form_through_the_rest_api_fails_prepare_and_creates_no_workspace(servers):
    """A conf sent through the REST API never passed the browser's form checks: `prepare` checks
    it again, fails with the form's message and creates no run folder."""
    token = servers.token()
    servers.wait_dag_parsed(token)
    servers.api("dags/saviorrec_daily", token, method="PATCH", body={"is_paused": False})
    runs = airflow_harness.RUNS
    runs_before = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    run_id, day = f"api_bad_form_{uuid.uuid4().hex[:8]}", "2024-02-10"
    # Airflow's own JSON-schema check of the params lets it through (`overrides` is any object);
    # the form refuses it: the registry is the operator's, not a run's.
    hijack = servers.home / "hijacked-registry"
    servers.api("dags/saviorrec_daily/dagRuns", token, method="POST", body={
        "dag_run_id": run_id, "logical_date": f"{day}T00:00:00Z", "conf": {"overrides": {"registry.uri": str(hijack)}}})

    final = servers.wait_run_finished(token, run_id, timeout=300)
    tis = servers.task_instances(token, run_id)
    states = {task: ti["state"] for task, ti in tis.items()}
    assert final["state"] == "failed" and states["prepare"] == "failed", states
    assert states["ingest"] == "upstream_failed" and states["promote"] == "upstream_failed", states
    log = servers.api(f"dags/saviorrec_daily/dagRuns/{run_id}/taskInstances/prepare/logs/"
                      f"{tis['prepare']['try_number']}?full_content=true", token)
    text = json.dumps(log["content"])
    assert "invalid run form: overrides" in text and "override 'registry.uri' is not allowed" in text, text[-3000:]

    assert not (runs / day).exists()
    assert (sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []) == runs_before
    assert not hijack.exists()
