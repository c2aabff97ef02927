"""Orchestration overhead: one saviorrec_daily run against the same stages called directly.

    .venv/bin/python bench/bench_dag.py [--preset default] [--mode local|test] [--date 2024-03-01]

reference: `saviorrec.stages.run_stage(stage, ws)` for every stage, in order, in this process, in a
           workspace prepared exactly like the DAG's (same params, same logical date).
dag:       --mode local (default): the real local deployment (scripts/airflow_up.sh,
           LocalExecutor, one process per task), run triggered through the REST API, timed from
           the run's start to its end as Airflow records them (server start-up excluded);
           --mode test: `dag.test()` in this process (scheduling loop + in-process task runner).
Each side starts from empty run folders, caches and registry. Prints both wall times and the
ratio dag / reference (target <= 1.2 on `default`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_params(folder: Path, preset: str) -> Path:
    from saviorrec.config import load_params, write_workspace_params

    repo = load_params(REPO / "params.yaml")
    return write_workspace_params(folder, {
        "preset": preset,
        "registry.uri": str(folder / "registry"),
        "data.path": str((REPO / repo.data.path).resolve()),
        "airflow.runs_root": str(folder / "runs"), "airflow.start_date": "2000-01-01",
        "airflow.data_root": str((REPO / repo.airflow.data_root).resolve()),
    }, base=REPO / "params.yaml")


def reference(folder: Path, preset: str, day: dt.datetime) -> float:
    os.environ["SAVIORREC_PARAMS"] = str(write_params(folder, preset))
    os.environ["SAVIORREC_RUNS_ROOT"] = str(folder / "runs")
    from saviorrec.orchestration.form import form_defaults
    from saviorrec.orchestration.workspace import load_base_params, prepare_run_workspace
    from saviorrec.stages import STAGES, run_stage
    from saviorrec.workspace import Workspace

    start = time.perf_counter()
    base, _ = load_base_params()
    run = prepare_run_workspace(day, form_defaults(base))
    ws = Workspace.open(run.root)
    for stage in STAGES:
        t0 = time.perf_counter()
        run_stage(stage, ws)
        print(f"  direct {stage:15s} {time.perf_counter() - t0:7.1f} s", flush=True)
    return time.perf_counter() - start


def dag_local(folder: Path, preset: str, day: dt.datetime) -> float:
    sys.path.insert(0, str(REPO / "tests"))
    import airflow_harness  # private Airflow home + env, the same helpers the tests use

    params = write_params(folder, preset)
    env = {"SAVIORREC_PARAMS": str(params), "SAVIORREC_RUNS_ROOT": str(folder / "runs"),
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
    srv = airflow_harness.AirflowServers(folder / "airflow_home", env).start()
    try:
        token = srv.token()
        srv.wait_dag_parsed(token)
        srv.api("dags/saviorrec_daily", token, method="PATCH", body={"is_paused": False})
        run = srv.api("dags/saviorrec_daily/dagRuns", token, method="POST",
                      body={"logical_date": day.strftime("%Y-%m-%dT%H:%M:%SZ"), "conf": {"preset": preset}})
        final = srv.wait_run_finished(token, run["dag_run_id"], timeout=6 * 3600)
        if final["state"] != "success":
            raise SystemExit(f"DAG run {final['state']}: see {srv.home}/logs")
        started, ended = (dt.datetime.fromisoformat(final[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
        for task_id, ti in sorted(srv.task_instances(token, run["dag_run_id"]).items(),
                                  key=lambda kv: kv[1]["start_date"] or ""):
            print(f"  dag    {task_id:15s} {ti['duration'] or 0:7.1f} s  ({ti['state']})", flush=True)
        return (ended - started).total_seconds()
    finally:
        srv.stop()


def dag_test(folder: Path, preset: str, day: dt.datetime) -> float:
    sys.path.insert(0, str(REPO / "tests"))
    import airflow_harness

    os.environ["SAVIORREC_PARAMS"] = str(write_params(folder, preset))
    os.environ["SAVIORREC_RUNS_ROOT"] = str(folder / "runs")
    airflow_harness.ensure_db()
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["saviorrec_daily"]
    start = time.perf_counter()
    run = dag.test(logical_date=day, run_conf={"preset": preset})
    elapsed = time.perf_counter() - start
    if str(run.state) != "success":
        raise SystemExit(f"DAG run {run.state}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--mode", choices=["local", "test"], default="local")
    parser.add_argument("--date", default="2024-03-01", help="logical date of the run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    day = dt.datetime.fromisoformat(args.date).replace(tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory(prefix="bench_dag_") as tmp:
        tmp = Path(tmp)
        # The DAG side first: the reference then cannot profit from anything it warmed up but the OS cache.
        dag_seconds = (dag_local if args.mode == "local" else dag_test)(tmp / "dag", args.preset, day)
        ref_seconds = reference(tmp / "direct", args.preset, day)
    ratio = dag_seconds / ref_seconds
    print(json.dumps({"preset": args.preset, "mode": args.mode, "dag_s": round(dag_seconds, 1),
                      "direct_s": round(ref_seconds, 1), "ratio": round(ratio, 3)}))
    print(f"DAG run {dag_seconds:.1f} s vs direct {ref_seconds:.1f} s: ratio {ratio:.2f} (target <= 1.2 on default)")


if __name__ == "__main__":
    main()
