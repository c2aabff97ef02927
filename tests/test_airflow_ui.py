"""Local mode through the browser: `scripts/airflow_up.sh`, log into the UI with headless
Chromium (Playwright), trigger saviorrec_daily from its params form with overrides, and see
the run succeed and promote a model."""

from __future__ import annotations

import json
import shutil
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
    airflow_harness.seed_run()  # validated encoder/codebook for the run below to reuse
    home = tmp_path_factory.mktemp("airflow_ui_home")
    # This module's own registry: its promotion must not become another test's production model.
    params = write_workspace_params(home, {"registry.uri": str(home / "registry")}, base=airflow_harness.PARAMS)
    extra = {"SAVIORREC_PARAMS": str(params),
             # manual runs only: no scheduled run competes with the one the test triggers
             "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
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


def test_trigger_from_the_ui_with_overrides_and_see_success(servers):
    from playwright.sync_api import sync_playwright

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

    from saviorrec.config import load_params
    from saviorrec.storage.registry import open_registry

    registry = open_registry(load_params(servers.env["SAVIORREC_PARAMS"]))
    assert registry.production() is not None, "promote did not move the production pointer"


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
