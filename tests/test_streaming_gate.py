"""validate_logs streams the log: bounded memory on a big log, one verdict as if validated whole.

The memory test runs the real stage (``pipelines.validate_logs`` as ``python -m`` would, through
runpy) in a child process under ``RLIMIT_DATA``. The limit is relative: the stage's own peak on a
small log plus ``HEADROOM_MIB``, and the big log's in-memory size is several times that headroom,
so holding the log (or its row frame) at once cannot fit.

Why RLIMIT_DATA, not RLIMIT_AS: address space counts reservations that use no memory (glibc malloc
arenas, allocator pools, thread stacks reserved on demand) and moved by ~60 MB between two runs of
the same small log here; the data segment (VmData: private writable mappings, i.e. heap and mmap'd
arrays) moved by under 1 MB, so a headroom of a few dozen MB is a fair test.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, make_workspace

from saviorrec.stages import run_stage
from saviorrec.workspace import StageError, Workspace

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc are Linux's")

HEADROOM_MIB = 64            # what validating the big log may need beyond the small log's peak
BIG_DAYS, DAY_ROWS = 60, 100_000
BATCH_ROWS = 100_000         # checks.logs.row_checks.batch_rows for both logs: one day per batch
FIRST_DAY = np.datetime64("2024-01-01")

# The stage, run as `python -m pipelines.validate_logs ARGS` would, reporting its peak VmData on exit.
_STAGE = """
import runpy, sys, threading, time
peak = 0
def sample():
    global peak
    while True:
        with open('/proc/self/status') as status:
            peak = max([peak] + [int(l.split()[1]) for l in status if l.startswith('VmData:')])
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
try:
    runpy.run_module('pipelines.validate_logs', run_name='__main__', alter_sys=True)
finally:
    print(f'peak VmData {peak} kB', file=sys.stderr)
"""


def write_log(root: Path, days: int, day_rows: int, items: int = 2_000, users: int = 50_000) -> None:
    """A clean log with the synthetic source's columns and dtypes (data contract + oracle_*), and its catalog."""
    rng = np.random.default_rng(0)
    for d in range(days):
        day = FIRST_DAY + np.timedelta64(d, "D")
        click = (rng.random(day_rows) < 0.05).astype("int8")
        p_click = rng.uniform(0.01, 0.2, day_rows)
        table = pa.table({
            "event_id": np.arange(d * day_rows, (d + 1) * day_rows, dtype="int64"),
            "ts": pa.array(day.astype("datetime64[ns]").astype("int64") + rng.integers(0, 86_400 * 10**9, day_rows),
                           type=pa.timestamp("ns", tz="UTC")),
            "user_id": rng.integers(0, users, day_rows, dtype="int64"),
            "item_id": rng.integers(0, items, day_rows, dtype="int64"),
            "click": click,
            "conversion": pa.array(click * (rng.random(day_rows) < 0.2), type=pa.int8()),
            "oracle_p_click": p_click,
            "oracle_p_conversion": p_click * 0.2,
        })
        folder = root / "data" / "events" / f"ds={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet")
    pd.DataFrame({"item_id": np.arange(items, dtype="int64"), "title": [f"item {i}" for i in range(items)],
                  "category": "c", "first_seen": pd.Timestamp("2023-12-01")}).to_parquet(root / "data" / "items.parquet")


def _workspace(root: Path, days: int, day_rows: int) -> Path:
    make_workspace(root, {"checks.logs.row_checks.batch_rows": BATCH_ROWS})
    write_log(root, days, day_rows)
    return root


def _run_stage(ws: Path, limit_mib: int | None = None) -> tuple[subprocess.CompletedProcess, int]:
    """(finished child, its peak VmData in KiB), the child under RLIMIT_DATA = ``limit_mib`` when given."""
    def limit():
        if limit_mib:
            resource.setrlimit(resource.RLIMIT_DATA, (limit_mib << 20, limit_mib << 20))

    child = subprocess.run([sys.executable, "-c", _STAGE, "--params", str(ws / "params.yaml"), "--workdir", str(ws)],
                           cwd=REPO, capture_output=True, text=True, timeout=150, preexec_fn=limit)
    peak = re.search(r"peak VmData (\d+) kB", child.stderr)
    return child, int(peak.group(1)) if peak else 0


@pytest.mark.timeout(240)
def test_big_log_validates_in_bounded_memory(tmp_path):
    small = _workspace(tmp_path / "small", days=5, day_rows=2_000)
    big = _workspace(tmp_path / "big", days=BIG_DAYS, day_rows=DAY_ROWS)
    one_day = pd.read_parquet(big / "data" / "events" / f"ds={FIRST_DAY}")
    log_mib = one_day.memory_usage(deep=True).sum() * BIG_DAYS / 2**20
    assert log_mib >= 4 * HEADROOM_MIB  # the log cannot sit in memory under the limit

    done, footprint_kib = _run_stage(small)
    assert done.returncode == 0, done.stderr[-2000:]
    limit_mib = footprint_kib // 1024 + HEADROOM_MIB

    done, peak_kib = _run_stage(big, limit_mib)
    assert done.returncode == 0, (f"validate_logs on a {log_mib:.0f} MiB log failed under RLIMIT_DATA {limit_mib} MiB "
                                  f"(small log: {footprint_kib // 1024} MiB):\n{done.stderr[-3000:]}")
    verdict = json.loads((big / "reports" / "gates" / "validate_logs.json").read_text())
    assert verdict["passed"] is True
    assert verdict["facts"]["rows_checked"] == BIG_DAYS * DAY_ROWS
    events = [c for c in verdict["checks"] if c["expectation"].startswith("validate_logs.events:")]
    assert events and all(c["observed"].startswith(f"0 of {BIG_DAYS * DAY_ROWS} rows") for c in events), events
    print(f"log {log_mib:.0f} MiB in memory; small-log peak VmData {footprint_kib // 1024} MiB, "
          f"limit {limit_mib} MiB, big-log peak {peak_kib // 1024} MiB")


# ---------------------------------------------------------------- batches add up to the whole-log verdict


def _break_log(root: Path) -> None:
    """Rows failing on three days: ids repeated across days and within one, clicks outside {0, 1}."""
    def edit(day: str, change) -> None:
        path = next((root / "data" / "events" / f"ds={day}").glob("*.parquet"))
        frame = pd.read_parquet(path)
        change(frame)
        frame.to_parquet(path, index=False)

    def day3(frame):
        ids = frame["event_id"].to_numpy().copy()
        ids[:3] = [0, 1, 2]                          # the ids of 2024-01-01's first rows
        clicks = frame["click"].to_numpy().copy()
        clicks[10:12] = [2, 3]
        frame["event_id"], frame["click"] = ids, clicks

    def day5(frame):
        ids = frame["event_id"].to_numpy().copy()
        ids[5] = ids[6]                              # a repeat inside the day
        clicks = frame["click"].to_numpy().copy()
        clicks[7] = 5
        frame["event_id"], frame["click"] = ids, clicks

    edit("2024-01-03", day3)
    edit("2024-01-05", day5)


def _counts(verdict: dict) -> dict[str, tuple[bool, str]]:
    """Per expectation: (met, "N of M rows" or the observed value)."""
    return {c["expectation"]: (c["success"], c["observed"].split(", e.g.")[0]) for c in verdict["checks"]}


def test_batches_add_up_to_the_whole_log_verdict(tmp_path):
    streamed = _workspace(tmp_path / "streamed", days=5, day_rows=2_000)
    _break_log(streamed)
    whole = tmp_path / "whole"
    shutil.copytree(streamed, whole)
    make_workspace(streamed, {"checks.logs.row_checks.batch_rows": 2_000})      # one batch per day
    make_workspace(whole, {"checks.logs.row_checks.batch_rows": 1_000_000})     # the log as one batch

    verdicts = {}
    for root in (streamed, whole):
        with pytest.raises(StageError, match="gate validate_logs failed 2 critical"):
            run_stage("validate_logs", Workspace.open(root))
        verdicts[root.name] = json.loads((root / "reports" / "gates" / "validate_logs.json").read_text())

    assert _counts(verdicts["streamed"]) == _counts(verdicts["whole"])
    failed = {c["check"]: c["observed"] for c in verdicts["streamed"]["critical_failures"]}
    assert failed["unique_event_id"].startswith("8 of 10000 rows")   # 6 repeated across days + 2 inside one
    for day in ("2024-01-01", "2024-01-03", "2024-01-05"):
        assert f"ds={day}" in failed["unique_event_id"]
    assert failed["click_binary"].startswith("3 of 10000 rows") and "ds=2024-01-03, ds=2024-01-05" in failed["click_binary"]

    # The Data Docs read as one run: one events page for the run, saying it was validated in 5 batches.
    docs = streamed / "reports" / "data_docs"
    run = verdicts["streamed"]["run"]
    pages = list((docs / "validations" / "validate_logs" / "events" / run).glob("*.html"))
    assert len(pages) == 1
    text = re.sub(r"<[^>]+>", " ", pages[0].read_text())
    assert "10000 rows in 5 batch(es)" in text and "2024-01-03, 2024-01-05" in text
    index = (docs / "index.html").read_text()
    assert index.count('saviorrec-suite">validate_logs.events<') == 1
    assert "Failed" in index
