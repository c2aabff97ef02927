"""The encoder's pair mining streams the log by blocks of users: the same pairs as mining the whole
log at once, in memory that does not grow with the clicks.

The memory test forks a child that runs train_encoder, stopped once it has mined its pairs, under
``RLIMIT_DATA`` = its footprint at the start + ``HEADROOM``. RLIMIT_DATA counts private writable
memory, what pandas, numpy and pyarrow allocate; ``RLIMIT_AS`` also counts address space reserved
and never used (a malloc arena, thread stacks: about 64 MiB more than the data segment on this
log, in the same run), which would need a log too big for a quick test. Reading the log's clicks
into one frame, as the stage did before, needs several times the headroom: the same test shows
that read fails under the same limit.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import resource
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_workspace

from saviorrec.config.model import Pairs
from saviorrec.data import io, pairs
from saviorrec.data.pairs import mine_pairs, mine_pairs_from_days, read_clicks, user_blocks
from saviorrec.models import encoder_training
from saviorrec.workspace import Workspace

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc are Linux's")

FIRST_DAY = dt.date(2024, 1, 1)


def write_days(root: Path, days: int, clicks_per_day: int, users: int, items: int, seed: int = 0,
               impressions_per_day: int = 0, parts: int = 1, tick_seconds: int = 1) -> None:
    """Event partitions with the contract's columns: ``clicks_per_day`` clicks (a fifth of them
    converted, a few conversions unknown) and ``impressions_per_day`` impressions a day, at whole
    multiples of ``tick_seconds``."""
    rng = np.random.default_rng(seed)
    next_id = 0
    for d in range(days):
        day = FIRST_DAY + dt.timedelta(days=d)
        n = clicks_per_day + impressions_per_day
        click = rng.permutation(np.r_[np.ones(clicks_per_day, np.int8), np.zeros(impressions_per_day, np.int8)])
        conversion = pd.array(click * (rng.random(n) < 0.2), dtype="Int8")
        conversion[rng.random(n) < 0.02] = pd.NA
        start = np.datetime64(day.isoformat(), "ns").astype(np.int64)
        seconds = rng.integers(0, 86_400 // tick_seconds, n) * tick_seconds * 10**9
        frame = pd.DataFrame({
            "event_id": np.arange(next_id, next_id + n, dtype=np.int64),
            "ts": pd.to_datetime(start + seconds, utc=True),
            "user_id": rng.integers(0, users, n, dtype=np.int64),
            "item_id": rng.integers(0, items, n, dtype=np.int64),
            "click": click,
            "conversion": conversion,
        })
        next_id += n
        folder = root / f"ds={day}"
        folder.mkdir(parents=True)
        for part, rows in enumerate(np.array_split(np.arange(n), parts)):
            pq.write_table(pa.Table.from_pandas(frame.iloc[rows], preserve_index=False),
                           folder / f"part-{part:05d}.parquet")


# ---------------------------------------------------------------- blocks give the whole log's pairs


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small_log") / "events"
    # coarse ticks: one user clicks one item twice in one tick, the ties whose order only the log keeps
    write_days(root, days=12, clicks_per_day=600, users=120, items=30, impressions_per_day=1_500, parts=2,
               tick_seconds=4 * 3_600)
    return root


CONFIGS = {
    "params.yaml": Pairs(window_days=14, max_gap_events=20, min_support=1, cap_per_item=50, conversion_weight=2.0,
                         popularity_alpha=0.5, holdout_fraction=0.1),
    # a conversion weight whose sums round: the blocks' totals must still add up to the same bits
    "tight": Pairs(window_days=3, max_gap_events=4, min_support=2, cap_per_item=8, conversion_weight=3.7,
                   popularity_alpha=0.3, holdout_fraction=0.1),
}


@pytest.mark.parametrize("blocks", [1, 3, 7])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_any_number_of_user_blocks_mines_the_whole_logs_pairs(small_log, name, blocks):
    cfg, end = CONFIGS[name], FIRST_DAY + dt.timedelta(days=10)  # the last two days are after the cut
    whole = mine_pairs(read_clicks(small_log, end=end), cfg, end)
    assert len(whole) > 50
    streamed = mine_pairs_from_days(small_log, cfg, end, blocks=blocks)
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)


def test_user_blocks_are_a_fixed_hash_of_the_user_id():
    ids = np.array([0, 1, 2, 42, 10**12, -1], dtype=np.int64)
    assert user_blocks(ids, 7).tolist() == [2, 2, 4, 5, 6, 0]
    assert user_blocks(ids, 512).tolist() == [431, 193, 206, 149, 376, 32]
    assert pairs._splitmix64(np.array([0x9E3779B97F4A7C15], np.uint64))[0] == 0xE220A8397B1DCDAF  # splitmix64(0)
    spread = np.bincount(user_blocks(np.arange(100_000), 16), minlength=16)
    assert spread.min() > 0.9 * spread.mean()  # consecutive ids spread evenly over the blocks


# ---------------------------------------------------------------- bounded memory on a big log


HEADROOM = 32 * 2**20          # what mining may allocate above the child's footprint at the start
BIG_DAYS, CLICKS_PER_DAY = 200, 20_000
BLOCK_OCCURRENCES = 40_000     # blocks scaled to this log: the default block alone is bigger than HEADROOM


def data_segment() -> int:
    """Bytes of private writable memory (VmData): what RLIMIT_DATA limits."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))


class Mined(Exception):
    pass


def _under_limit(mode: str, root: Path, results) -> None:
    """In the forked child: RLIMIT_DATA = footprint now + HEADROOM, then train_encoder up to its mined
    pairs (``mode`` "stage") or the whole-log read the stage did before ("read_clicks")."""
    limit = data_segment() + HEADROOM
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    ws = Workspace.open(root)

    def stop(mined, *args, **kwargs):
        results.send(("mined", len(mined)))
        raise Mined

    encoder_training.encoder_pair_splits = stop  # the child's own copy of the module: the parent's is untouched
    try:
        if mode == "stage":
            encoder_training.train_encoder(ws.params, ws)
        else:
            results.send(("read", len(read_clicks(ws.path("events"), end=ws.split()[0]))))
    except Mined:
        pass


def run_under_limit(mode: str, root: Path) -> tuple[int, tuple | None]:
    """(exit code, what the child reported). Forked, not spawned: a fresh interpreter would spend
    longer importing torch than mining."""
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    child = fork.Process(target=_under_limit, args=(mode, root, send))
    child.start()
    send.close()
    child.join(150)
    if child.exitcode is None:
        child.kill()
        child.join()
    try:
        return child.exitcode, receive.recv()
    except EOFError:  # it failed (an exception, or a crash when an allocator got no memory) before reporting
        return child.exitcode, None


def big_workspace(root: Path) -> Path:
    """A tiny-preset workspace whose log is BIG_DAYS days of clicks (the day after: evaluation)."""
    make_workspace(root, {"pairs.max_gap_events": 2})
    ws = Workspace.open(root)
    write_days(ws.path("events"), BIG_DAYS + 1, CLICKS_PER_DAY, users=20_000, items=100)
    ws.path("items").parent.mkdir(parents=True, exist_ok=True)
    io.write_items(pd.DataFrame({"item_id": np.arange(100, dtype=np.int64), "title": [f"item {i}" for i in range(100)],
                                 "category": "c", "first_seen": pd.Timestamp("2023-12-01")}), ws.path("items"))
    return root


@pytest.mark.timeout(240)
def test_encoder_mines_pairs_from_a_log_larger_than_its_memory_limit(tmp_path, monkeypatch):
    root = big_workspace(tmp_path / "ws")
    # reads a day first: arrow's allocator maps its arena on first use, at any log size
    one_day = read_clicks(root / "data" / "events", end=FIRST_DAY + dt.timedelta(days=1)).memory_usage(deep=True).sum()
    whole_log = one_day * BIG_DAYS
    assert whole_log >= 4 * HEADROOM, "the clicks as one frame must need several times the headroom"
    monkeypatch.setattr(pairs, "OCCURRENCES_PER_BLOCK", BLOCK_OCCURRENCES)  # the children inherit it
    assert pairs.block_count(BIG_DAYS * CLICKS_PER_DAY, CONFIGS["params.yaml"].model_copy(update={"max_gap_events": 2})) >= 100

    exit_code, reported = run_under_limit("stage", root)
    assert exit_code == 0 and reported is not None and reported[0] == "mined", (
        f"train_encoder's pair mining on {BIG_DAYS * CLICKS_PER_DAY} clicks ({whole_log / 2**20:.0f} MiB as one "
        f"frame) failed {HEADROOM / 2**20:.0f} MiB above its footprint: exit code {exit_code}, {reported}")
    assert reported[1] > 0

    exit_code, reported = run_under_limit("read_clicks", root)
    assert exit_code != 0 and reported is None, (
        f"reading the whole log fit under the same limit (exit code {exit_code}, {reported}): the test proves nothing")
