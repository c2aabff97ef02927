"""Faults injected into saviorrec_daily while real Airflow components run it (scripts/airflow_up.sh:
API server, scheduler, DAG processor, triggerer on 127.0.0.1, LocalExecutor).

One scenario, shared by the tests of this module:

* run A trains the encoder and a 2-epoch ranker. Right after each training task writes its first
  epoch checkpoint (``last.ckpt``), the test sends SIGKILL to the process running it. Airflow marks
  the try for retry (``airflow.retries: 1``); the retry must continue from that checkpoint, and
  the run must succeed.
* run B (the next day) starts once A's encoder is validated and reuses it. A and B then reach
  ``promote`` together: a barrier makes both read the production pointer before either writes,
  then A writes first. Exactly one production pointer (A's) may result, both versions stay
  published, and B's promote must fail, naming the version that won and how to promote its own.

The killed process is the one Airflow recorded as the task instance's ``pid`` (REST API),
cross-checked by its process title, which Airflow's task runner sets to ``airflow worker -- <ti
id>``: never the supervisor or scheduler that forked it, nor a recycled pid.

The barrier is a test-only hook: an ``airflow_local_settings.py`` in this module's private
AIRFLOW_HOME (Airflow imports it in every component, and the task processes fork from the
scheduler) wraps ``Registry._move_pointer``, the compare-and-swap of the production pointer.
Each promotion records the pointer state it read, waits until both promotions have read it, and
B waits until A has written: the interleaving that loses an update unless the swap catches it.

Wall time: 5-6 min on the 2 shared cores at load ~8; the scenario is two tiny runs plus two
retries, most of it CPU-bound training serialized by the `gpu` pool.
"""

from __future__ import annotations

import json
import shutil
import signal
import textwrap
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import airflow_harness
import psutil
import pytest

from saviorrec.config import load_params, write_workspace_params
from saviorrec.workspace import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAY_A, DAY_B = "2024-05-01", "2024-05-02"
RANKER_EPOCHS = 2
BARRIER_WAIT_S = 420

BARRIER_HOOK = '''
"""Test hook of tests/test_airflow_faults.py: two promotions meet before moving the production pointer."""
import json
import os
import time
from pathlib import Path

from saviorrec.storage import registry as _registry

__all__ = []  # no Airflow policies here
BARRIER = Path({barrier!r})
_move_pointer = _registry.Registry._move_pointer


def _wait(done, seconds):
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _move_pointer_at_the_barrier(self, pointer, token):
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID", "?")
    read = {{"run_id": run_id, "version": pointer["version"], "previous": pointer["previous"], "token": token}}
    (BARRIER / (pointer["version"] + ".read.json")).write_text(json.dumps(read))
    _wait(lambda: len(list(BARRIER.glob("*.read.json"))) >= 2, {wait})
    first = (BARRIER / "first_writer").read_text()
    if run_id != first:
        _wait(lambda: (BARRIER / "written").exists(), {wait})
    try:
        return _move_pointer(self, pointer, token)
    finally:
        if run_id == first:
            (BARRIER / "written").write_text(pointer["version"])


_registry.Registry._move_pointer = _move_pointer_at_the_barrier
'''


@dataclass
class Kill:
    pid: int
    checkpoint: Path  # where the killed try kept its last epoch
    saved: Path  # a copy taken right after the kill (a successful retry removes the original)


@dataclass
class Scenario:
    srv: airflow_harness.AirflowServers
    token: str
    run_a: str
    run_b: str
    root_a: Path
    kills: dict[str, Kill]
    finals: dict[str, dict]
    barrier: Path
    params_file: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_faults_home")
    runs, barrier = home / "runs", home / "barrier"
    barrier.mkdir()
    (home / "config").mkdir()
    (home / "config" / "airflow_local_settings.py").write_text(
        textwrap.dedent(BARRIER_HOOK).format(barrier=str(barrier), wait=BARRIER_WAIT_S))
    # This module's own registry and runs: A trains its encoder from scratch, B reuses A's only.
    params = write_workspace_params(home, {"registry.uri": str(home / "registry"), "airflow.runs_root": str(runs),
                                           "airflow.max_active_runs": 2}, base=airflow_harness.PARAMS)
    extra = {"SAVIORREC_PARAMS": str(params), "SAVIORREC_RUNS_ROOT": str(runs),
             "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}  # only the runs the test triggers
    srv = airflow_harness.AirflowServers(home, extra).start()
    srv.runs, srv.barrier, srv.params_file = runs, barrier, params
    try:
        yield srv
    finally:
        srv.stop()


def _task_process(ti: dict) -> psutil.Process:
    """The process running task instance ``ti``, as Airflow recorded it, checked by its title."""
    proc = psutil.Process(ti["pid"])
    title = " ".join(proc.cmdline())
    if ti["id"] not in title:
        raise RuntimeError(f"pid {ti['pid']} of {ti['task_id']} is {title!r}, not the task runner of {ti['id']}")
    return proc


def kill_after_first_checkpoint(srv, token: str, run_id: str, task_id: str, checkpoint: Path, saved: Path) -> Kill:
    """SIGKILL the process of ``task_id`` as soon as its first ``last.ckpt`` exists (mid-epoch 2)."""
    def running():
        try:
            ti = srv.task_instance(token, run_id, task_id)
        except (OSError, TimeoutError):  # a busy API server: ask again
            return None
        return ti if ti["state"] == "running" and ti["pid"] else None

    ti = airflow_harness.wait_for(running, 300, f"{task_id} of {run_id} to run", interval=0.2)
    proc = _task_process(ti)  # found before the checkpoint appears: the kill follows it within ~50 ms
    airflow_harness.wait_for(checkpoint.is_file, 240, f"the first epoch checkpoint {checkpoint}", interval=0.05)
    proc.send_signal(signal.SIGKILL)
    shutil.copyfile(checkpoint, saved)
    proc.wait(timeout=30)
    return Kill(pid=ti["pid"], checkpoint=checkpoint, saved=saved)


@pytest.fixture(scope="module")
def scenario(servers, tmp_path_factory) -> Scenario:
    srv = servers
    evidence = tmp_path_factory.mktemp("killed_checkpoints")
    token = srv.token()
    srv.wait_dag_parsed(token)
    srv.api("dags/saviorrec_daily", token, method="PATCH", body={"is_paused": False})

    run_a = srv.trigger(token, f"{DAY_A}T00:00:00Z", {"ranker_epochs": RANKER_EPOCHS, "promote": True})
    (srv.barrier / "first_writer").write_text(run_a)
    root_a = srv.runs / DAY_A
    airflow_harness.wait_for(lambda: (root_a / "params.yaml").is_file(), 120, "run A's workspace")
    ws_a = Workspace.open(root_a)
    kills = {"train_encoder": kill_after_first_checkpoint(
        srv, token, run_a, "train_encoder", ws_a.path("encoder") / "checkpoints" / "last.ckpt",
        evidence / "encoder.ckpt")}

    srv.wait_task(token, run_a, "mark_validated", ("success",), timeout=300)
    run_b = srv.trigger(token, f"{DAY_B}T00:00:00Z", {"skip_encoder_refresh": True, "promote": True})
    kills["train_ranker"] = kill_after_first_checkpoint(
        srv, token, run_a, "train_ranker", ws_a.path("ranker") / "checkpoints" / "last.ckpt",
        evidence / "ranker.ckpt")

    finals = {run: srv.wait_run_finished(token, run, timeout=600) for run in (run_a, run_b)}
    return Scenario(srv, token, run_a, run_b, root_a, kills, finals, srv.barrier, srv.params_file)


def _tries(sc: Scenario, run_id: str, task_id: str) -> list[dict]:
    run = urllib.request.quote(run_id, safe="")
    return sc.srv.api(f"dags/saviorrec_daily/dagRuns/{run}/taskInstances/{task_id}/tries", sc.token)["task_instances"]


def _return_value(sc: Scenario, run_id: str, task_id: str) -> dict:
    run = urllib.request.quote(run_id, safe="")
    entry = sc.srv.api(f"dags/saviorrec_daily/dagRuns/{run}/taskInstances/{task_id}/xcomEntries/return_value"
                       "?deserialize=true", sc.token)
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def _assert_killed_then_resumed(sc: Scenario, task_id: str) -> tuple[dict, str, str]:
    """The kill took the first try down, the retry resumed from its checkpoint and the run succeeded.
    Returns (the checkpoint the kill left, try 1's log, try 2's log)."""
    import torch

    kill = sc.kills[task_id]
    states = {t: ti["state"] for t, ti in sc.srv.task_instances(sc.token, sc.run_a).items()}
    assert sc.finals[sc.run_a]["state"] == "success", states
    tries = {t["try_number"]: t for t in _tries(sc, sc.run_a, task_id)}
    assert sorted(tries) == [1, 2], tries
    assert tries[1]["state"] != "success" and tries[1]["pid"] == kill.pid  # the try we killed
    assert tries[2]["state"] == "success"

    left = torch.load(kill.saved, weights_only=False, map_location="cpu")
    assert left["epoch"] == 0  # killed after epoch 1's checkpoint, during epoch 2 (of 2 or more)

    first = sc.srv.task_log(sc.token, sc.run_a, task_id, 1)
    retry = sc.srv.task_log(sc.token, sc.run_a, task_id, 2)
    assert "Done. Returned value" not in first
    assert f"{task_id}: try 2 runs with {{'ckpt_path': 'last'}}" in retry
    assert "Restored all states from the checkpoint" in retry and str(kill.checkpoint) in retry
    assert _return_value(sc, sc.run_a, task_id)["resumed_from"] == str(kill.checkpoint)
    assert not kill.checkpoint.parent.exists()  # a finished fit leaves no checkpoints
    return left, first, retry


def test_kill_9_of_train_encoder_mid_epoch_resumes_from_its_checkpoint(scenario):
    left, first, retry = _assert_killed_then_resumed(scenario, "train_encoder")
    # The encoder logs each finished epoch ("epoch N: mean InfoNCE", N from 1): try 1 finished
    # epoch 1 only; the retry restored it and trained from epoch 2 on.
    assert "epoch 1: mean InfoNCE" in first and "epoch 2: mean InfoNCE" not in first
    assert "epoch 1: mean InfoNCE" not in retry and "epoch 2: mean InfoNCE" in retry
    summary = _return_value(scenario, scenario.run_a, "train_encoder")
    assert summary["train_loss_per_epoch"][0] == left["epoch_losses"][0]  # restored, not retrained
    assert summary["epochs_run"] == summary["epochs"] >= 2


def test_kill_9_of_train_ranker_mid_epoch_resumes_from_its_checkpoint(scenario):
    import pandas as pd

    _assert_killed_then_resumed(scenario, "train_ranker")
    # The training curve of the fit that produced the ranker: the retry trained epoch 2 (index 1) only.
    curve = pd.read_csv(Workspace.open(scenario.root_a).path("plots") / "ranker_training.csv")
    assert curve["epoch"].unique().tolist() == list(range(1, RANKER_EPOCHS))
    params = Workspace.open(scenario.root_a).params
    assert params.ranker.epochs == RANKER_EPOCHS


def test_two_runs_promoting_together_leave_one_production_pointer_and_report_the_loser(scenario):
    from saviorrec.storage.registry import open_registry

    sc = scenario
    reads = {r["run_id"]: r for r in (json.loads(p.read_text()) for p in sc.barrier.glob("*.read.json"))}
    assert set(reads) == {sc.run_a, sc.run_b}, reads
    # Real concurrency: both promotions read the same pointer before either moved it.
    assert reads[sc.run_a]["token"] == reads[sc.run_b]["token"]
    assert reads[sc.run_a]["previous"] == reads[sc.run_b]["previous"]
    won, lost = reads[sc.run_a]["version"], reads[sc.run_b]["version"]

    registry = open_registry(load_params(sc.params_file))
    pointer = registry.production()
    assert pointer["version"] == won and pointer["history"] == [won]
    rows = {row["version"]: row for row in registry.list()}
    assert rows[won]["complete"] and rows[lost]["complete"], rows  # both published, nothing half-written
    assert [v for v, row in rows.items() if row["production"]] == [won]
    registry.verify(lost)  # the loser's bundle is intact: it can still be promoted
    receipt = json.loads((sc.root_a / "reports" / "promotion.json").read_text())
    assert receipt["version"] == receipt["production"] == won

    states_b = {t: ti["state"] for t, ti in sc.srv.task_instances(sc.token, sc.run_b).items()}
    assert sc.finals[sc.run_b]["state"] == "failed", states_b
    assert states_b["promote"] == "failed" and states_b["validate_model"] == "success", states_b
    assert [t["try_number"] for t in _tries(sc, sc.run_b, "promote")] == [1]  # not retried: it would republish
    log = sc.srv.task_log(sc.token, sc.run_b, "promote", 1)
    assert (f"production of {registry.name} moved to {won} by another run while {lost} was being promoted"
            in log), log[-3000:]
    assert f"saviorrec registry promote {lost}" in log
