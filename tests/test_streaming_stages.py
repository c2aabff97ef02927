"""The evaluate stage streams the history day by day: it completes under a memory limit on a log
several times larger than that limit leaves room for.

The limit is ``RLIMIT_DATA`` (the kernel counts private writable memory: heap and anonymous
mappings, what pandas, numpy and pyarrow allocate), set relative to the footprint the same stage
has on a small log with the same days, users and catalog. ``RLIMIT_AS`` would count the gigabytes
of address space torch and its thread pools reserve without using, and RSS is not enforced.
Reading the whole log into one frame needs more than the headroom, so that design fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saviorrec.data import io

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[1]
ROWS_PER_DAY = 60_000
WINDOW_ROWS = 3_000         # scoring a window costs model time, not memory: keep it small
SMALL_DAYS, BIG_DAYS = 4, 100
USERS = 5_000               # every user already appears in the small log: the user state is the same size
HEADROOM = 96 * 2**20       # above the small-log footprint (which varies by about 20 MiB run to run); the big
                            # log needs several times this in one frame

# The evaluate stage in a child process, reporting its peak private writable memory (VmData).
CHILD = """
import sys, threading, time
def vmdata():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
peak = [vmdata()]
def watch():
    while True:
        peak[0] = max(peak[0], vmdata())
        time.sleep(0.001)
threading.Thread(target=watch, daemon=True).start()
from saviorrec.stages import run_stage
from saviorrec.workspace import Workspace
run_stage("evaluate", Workspace.open(sys.argv[1]))
peak[0] = max(peak[0], vmdata())
print("PEAK_DATA", peak[0])
"""


def write_log(root: Path, history_days: int, train_end: dt.date, eval_end: dt.date, item_ids: np.ndarray,
              seed: int = 0) -> None:
    """A contract-conforming log: ``history_days`` days of ``ROWS_PER_DAY`` impressions before
    ``train_end``, then ``WINDOW_ROWS`` a day in [train_end, eval_end); the catalog's items, ``USERS`` users."""
    rng = np.random.default_rng(seed)
    first = train_end - dt.timedelta(days=history_days)
    next_id = 1
    for offset in range((eval_end - first).days):
        day = first + dt.timedelta(days=offset)
        n = ROWS_PER_DAY if day < train_end else WINDOW_ROWS
        start = np.datetime64(day.isoformat(), "ns").astype(np.int64)
        click = (rng.random(n) < 0.15).astype(np.int8)
        table = pa.table({
            "event_id": np.arange(next_id, next_id + n, dtype=np.int64),
            "ts": pa.array(np.sort(start + rng.integers(0, 86_400 * 10**9, n)), pa.timestamp("ns", tz="UTC")),
            "user_id": rng.integers(0, USERS, n, dtype=np.int64),
            "item_id": rng.choice(item_ids, n),
            "click": click,
            "conversion": (click & (rng.random(n) < 0.3)).astype(np.int8),  # only clicks convert
            "oracle_p_click": rng.random(n),
            "oracle_p_conversion": rng.random(n),
        })
        next_id += n
        (root / f"ds={day}").mkdir(parents=True)
        pq.write_table(table, root / f"ds={day}" / "part-00000.parquet")


def workspace_with_log(src: Path, dst: Path, history_days: int) -> Path:
    """A copy of the trained workspace ``src`` whose behavior log is replaced by a generated one."""
    from saviorrec.workspace import Workspace

    ws = Workspace.open(src)
    train_end, eval_end = ws.split()
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".cache", "events"))
    items = io.read_items(ws.path("items"))
    write_log(Workspace.open(dst).path("events"), history_days, train_end, eval_end, items["item_id"].to_numpy())
    return dst


def run_evaluate(root: Path, data_limit: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))

    return subprocess.run([sys.executable, "-c", CHILD, str(root)], cwd=REPO, capture_output=True, text=True,
                          timeout=240, preexec_fn=limit if data_limit else None)


def test_evaluate_streams_a_log_larger_than_its_memory_limit(tiny_pipeline, tmp_path):
    tiny_pipeline.run("train_ranker")
    small = workspace_with_log(tiny_pipeline.root, tmp_path / "small", SMALL_DAYS)
    big = workspace_with_log(tiny_pipeline.root, tmp_path / "big", BIG_DAYS)

    from saviorrec.workspace import Workspace

    events = Workspace.open(big).path("events")
    train_end, _ = Workspace.open(big).split()
    one_day = io.read_event_day(events, train_end - dt.timedelta(days=1)).memory_usage(deep=True).sum()
    whole_log = one_day * BIG_DAYS  # the history as one pandas frame (the window adds to it)
    assert whole_log >= 4 * HEADROOM, "the big log must need several times the headroom in memory"

    measured = run_evaluate(small)
    assert measured.returncode == 0, measured.stderr[-3000:]
    footprint = int(measured.stdout.split("PEAK_DATA")[-1])
    limit = footprint + HEADROOM

    done = run_evaluate(big, limit)
    assert done.returncode == 0, (
        f"evaluate on {BIG_DAYS} days ({whole_log / 2**20:.0f} MiB as one frame) failed under RLIMIT_DATA "
        f"{limit / 2**20:.0f} MiB (small-log footprint {footprint / 2**20:.0f} MiB + {HEADROOM / 2**20:.0f} MiB):\n"
        + done.stderr[-3000:])
    peak = int(done.stdout.split("PEAK_DATA")[-1])
    assert peak <= limit
    predictions = io.read_parquet(Workspace.open(big).path("predictions"))
    assert len(predictions) == WINDOW_ROWS and predictions["p_ctr"].notna().all()
    report = json.loads((big / "metrics" / "ranker.json").read_text())
    assert report  # the stage wrote its metrics
