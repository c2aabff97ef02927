"""Scale-out mode: CeleryExecutor with a Redis broker and a PostgreSQL metadata DB (Debian
packages on loopback), one worker on `default` and one on `gpu`. A run triggered through the
REST API succeeds and its training tasks are executed by the `gpu` worker only."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import airflow_harness
import pytest

from saviorrec.config import write_workspace_params

pytestmark = pytest.mark.slow

TRAINING = ("train_encoder", "build_codebook", "train_ranker", "baseline")


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def _wait_port(port: int, what: str, timeout: float = 60) -> None:
    import socket

    def listening():
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    airflow_harness.wait_for(listening, timeout, what, interval=0.3)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed (make system-deps)")
    port = airflow_harness.free_port()
    log = open(tmp_path_factory.mktemp("redis") / "redis.log", "w")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL not installed (make system-deps)")
    # Outside pytest's 0700 temp root: the `postgres` user must be able to reach the folder.
    base = Path(tempfile.mkdtemp(prefix="saviorrec-pg-"))
    data = base / "data"
    data.mkdir()
    port = airflow_harness.free_port()
    # PostgreSQL refuses to run as root: run it as the `postgres` system user when we are root.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        os.chmod(base, 0o755)
        shutil.chown(data, "postgres")
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    user = "postgres" if as_user else os.environ.get("USER", "postgres")
    run(initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8")
    run(pg_ctl, "-D", str(data), "-l", str(data / "server.log"), "-w", "-o",
        f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c full_page_writes=off", "start")
    try:
        run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "airflow")
        yield f"postgresql+psycopg2://{user}@127.0.0.1:{port}/airflow"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def celery_servers(tmp_path_factory, redis_url, postgres_url):
    airflow_harness.seed_run()  # validated encoder/codebook for the run below to reuse
    home = tmp_path_factory.mktemp("airflow_celery_home")
    # this module's own production model
    params = write_workspace_params(home, {"registry.uri": str(home / "registry")}, base=airflow_harness.PARAMS)
    extra = {
        "SAVIORREC_PARAMS": str(params),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_url,
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres_url,  # keep +psycopg2: no psycopg 3 here
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    srv = airflow_harness.AirflowServers(home, extra).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_training_tasks_run_on_the_gpu_worker(celery_servers):
    srv = celery_servers
    assert srv.cli("config", "get-value", "core", "executor").strip() == "CeleryExecutor"
    assert "postgresql" in srv.cli("config", "get-value", "database", "sql_alchemy_conn")
    token = srv.token()
    srv.wait_dag_parsed(token)
    srv.api("dags/saviorrec_daily", token, method="PATCH", body={"is_paused": False})
    logical = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run = srv.api("dags/saviorrec_daily/dagRuns", token, method="POST",
                  body={"logical_date": logical, "conf": {"skip_encoder_refresh": True, "promote": False}})
    run_id = run["dag_run_id"]
    final = srv.wait_run_finished(token, run_id, timeout=900)
    tis = srv.task_instances(token, run_id)
    assert final["state"] == "success", {t: ti["state"] for t, ti in tis.items()}

    ran = [t for t in TRAINING if tis[t]["state"] == "success"]
    assert "train_ranker" in ran and "baseline" in ran
    for task_id in TRAINING:
        assert tis[task_id]["queue"] == "gpu" and tis[task_id]["pool"] == "gpu"
    for task_id in ("ingest", "validate_logs", "evaluate", "promote"):
        assert tis[task_id]["queue"] == "default"

    # Each Celery worker logs the workloads it executed: training only on `gpu`, the rest on `default`.
    state = srv.home / "run"
    gpu_log = (state / "worker-gpu.log").read_text()
    default_log = (state / "worker-default.log").read_text()
    for task_id in ran:
        assert f"task_id='{task_id}'" in gpu_log and f"task_id='{task_id}'" not in default_log
    for task_id in ("ingest", "evaluate", "promote"):
        assert f"task_id='{task_id}'" in default_log and f"task_id='{task_id}'" not in gpu_log
