"""Shared set-up of the Airflow tests: one private Airflow home and params file per pytest process.

Import this module before anything imports `airflow`: it points AIRFLOW_HOME at a temporary
folder (never the user's), the DAGs folder at the repository's dags/, and SAVIORREC_PARAMS at a
tiny-preset params file whose registry and run folders live in the same temporary folder.
Servers (Airflow, Redis, PostgreSQL) are started by the helpers below and stopped by PID.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from saviorrec.config import load_params, write_workspace_params

REPO = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("SAVIORREC_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="saviorrec-airflow-"))
WORK = HOME / "work"
PARAMS = WORK / "params.yaml"
RUNS = WORK / "runs"
REGISTRY = WORK / "registry"

if "SAVIORREC_TEST_AIRFLOW_HOME" not in os.environ:
    atexit.register(shutil.rmtree, HOME, True)
    os.environ["SAVIORREC_TEST_AIRFLOW_HOME"] = str(HOME)  # subprocesses (pytest-xdist) share it

ENV = {
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__PARALLELISM": "2",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    "SAVIORREC_PARAMS": str(PARAMS),
    "SAVIORREC_RUNS_ROOT": str(RUNS),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(ENV)


def write_test_params() -> Path:
    """The repository's params with the tiny preset, a private registry and quick retries."""
    repo = load_params(REPO / "params.yaml")
    # The gates keep the repository's default thresholds: the tiny models pass them as they are.
    return write_workspace_params(WORK, {
        "preset": "tiny",
        "registry.uri": str(REGISTRY),
        "airflow.runs_root": str(RUNS), "airflow.start_date": "2024-01-01", "airflow.retries": 1,
        "airflow.retry_delay_minutes": 0.05, "airflow.execution_timeout_minutes": 20,
        "airflow.data_root": str((REPO / repo.airflow.data_root).resolve()),
        "data.path": str((REPO / repo.data.path).resolve()),
    }, base=REPO / "params.yaml")


write_test_params()

_DB_READY = False


def ensure_db() -> None:
    """Create the metadata DB and the gpu pool once per process (the DAG tests share them)."""
    global _DB_READY
    if _DB_READY:
        return
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.resetdb(skip_init=False)
    Pool.create_or_update_pool("gpu", slots=1, description="training tasks", include_deferred=False)
    _DB_READY = True


SEED_DAY = "2024-03-01"
_SEED_RUN = None


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["saviorrec_daily"]


def seed_run():
    """The whole DAG once per process with `dag.test()` on the tiny preset (logical date SEED_DAY).

    test_dag_run checks it; the server tests reuse its validated encoder/codebook (cadence) so
    the expensive training happens once per session, whichever module runs first.
    """
    global _SEED_RUN
    if _SEED_RUN is None:
        import datetime as dt

        ensure_db()
        day = dt.datetime.fromisoformat(SEED_DAY).replace(tzinfo=dt.UTC)
        # promote ticked: a manual run promotes only when asked, and this one sets up production
        _SEED_RUN = load_dag().test(logical_date=day, run_conf={"ranker_epochs": 1, "promote": True})
    return _SEED_RUN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class AirflowServers:
    """`scripts/airflow_up.sh` in a private home; `stop()` runs `scripts/airflow_down.sh`."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None):
        self.home = home
        self.port = free_port()
        self.env = os.environ | ENV | {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "SAVIORREC_AIRFLOW_PORT": str(self.port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
        } | (extra_env or {})
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> AirflowServers:
        self.home.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["bash", str(REPO / "scripts" / "airflow_up.sh")], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"airflow_up.sh failed:\n{proc.stdout}\n{proc.stderr}")
        return self

    def stop(self) -> None:
        subprocess.run(["bash", str(REPO / "scripts" / "airflow_down.sh")], env=self.env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)

    def cli(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run([str(REPO / ".venv" / "bin" / "airflow"), *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def admin_password(self) -> str:
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(generated.read_text())["admin"]

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.admin_password()}).encode()
        request = urllib.request.Request(f"{self.url}/auth/token", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def api(self, path: str, token: str, method: str = "GET", body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/v2/{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def wait_dag_parsed(self, token: str, dag_id: str = "saviorrec_daily", timeout: float = 180) -> dict:
        def parsed():
            try:
                return self.api(f"dags/{dag_id}", token)
            except Exception:  # noqa: BLE001 - 404 until the DAG processor wrote it
                return None

        return wait_for(parsed, timeout, f"the DAG processor to parse {dag_id}")

    def wait_run_finished(self, token: str, run_id: str, dag_id: str = "saviorrec_daily", timeout: float = 600) -> dict:
        def finished():
            try:
                run = self.api(f"dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}", token)
            except (OSError, TimeoutError):  # a busy API server: ask again
                return None
            return run if run["state"] in ("success", "failed") else None

        return wait_for(finished, timeout, f"run {run_id} to finish", interval=3)

    def task_instances(self, token: str, run_id: str, dag_id: str = "saviorrec_daily") -> dict[str, dict]:
        tis = self.api(f"dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances", token)
        return {ti["task_id"]: ti for ti in tis["task_instances"]}

    # ---- driving one run through the REST API (the fault tests) ----------------------------

    def trigger(self, token: str, logical_date: str, conf: dict, dag_id: str = "saviorrec_daily") -> str:
        """A manual run of ``dag_id`` for ``logical_date`` (ISO, UTC) with ``conf``; its run id."""
        run = self.api(f"dags/{dag_id}/dagRuns", token, method="POST",
                       body={"logical_date": logical_date, "conf": conf})
        return run["dag_run_id"]

    def task_instance(self, token: str, run_id: str, task_id: str, dag_id: str = "saviorrec_daily") -> dict:
        run = urllib.request.quote(run_id, safe="")
        return self.api(f"dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}", token)

    def wait_task(self, token: str, run_id: str, task_id: str, states: tuple[str, ...], timeout: float,
                  dag_id: str = "saviorrec_daily") -> dict:
        """The task instance once it is in one of ``states``; TimeoutError naming its last state."""
        last = {}

        def reached():
            try:
                last["ti"] = self.task_instance(token, run_id, task_id, dag_id)
            except (OSError, TimeoutError):  # a busy API server: ask again
                return None
            return last["ti"] if last["ti"]["state"] in states else None

        try:
            return wait_for(reached, timeout, f"{task_id} of {run_id} to be {'/'.join(states)}", interval=0.5)
        except TimeoutError as err:
            raise TimeoutError(f"{err} (last state: {last.get('ti', {}).get('state')})") from None

    def dag_runs(self, token: str, dag_id: str = "saviorrec_daily") -> list[dict]:
        return self.api(f"dags/{dag_id}/dagRuns?limit=100", token)["dag_runs"]

    def extra_links(self, token: str, run_id: str, task_id: str, dag_id: str = "saviorrec_daily") -> dict:
        run = urllib.request.quote(run_id, safe="")
        return self.api(f"dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/links", token)["extra_links"]

    def log_records(self, token: str, run_id: str, task_id: str, try_number: int,
                    dag_id: str = "saviorrec_daily") -> list[dict]:
        """One try's log as structured records (``event``, ``level``, ...)."""
        run = urllib.request.quote(run_id, safe="")
        body = self.api(f"dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/logs/{try_number}?full_content=true",
                        token)
        return [line if isinstance(line, dict) else {"event": str(line)} for line in body.get("content") or []]

    def task_log(self, token: str, run_id: str, task_id: str, try_number: int, dag_id: str = "saviorrec_daily") -> str:
        """One try's log as the UI shows it, one JSON record a line."""
        run = urllib.request.quote(run_id, safe="")
        body = self.api(f"dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/logs/{try_number}?full_content=true",
                        token)
        content = body.get("content") or []
        return "\n".join(json.dumps(line) if isinstance(line, dict) else str(line) for line in content)
