"""Mine (trigger, target) item pairs from the behavior log: the encoder's training signal.

Two items form a pair when one user clicked both within ``window_days`` and within
``max_gap_events`` of that user's clicks. Conventions (other stages rely on them):

- Pairs are **unordered**: one row per item pair with ``trigger < target`` (item ids); the
  contrastive loss is symmetric, so both directions are trained from one row.
- An occurrence's weight is the mean of its two clicks' weights, a click weighing 1 and a
  conversion ``conversion_weight``: a co-conversion counts ``conversion_weight`` times a co-click.
- A user counts once per pair (their heaviest occurrence): ``support`` = distinct users.
- ``weight`` = sum of per-user weights / (pop_trigger * pop_target) ** ``popularity_alpha``,
  pop = distinct users who clicked the item, so hub items do not dominate; training samples
  pairs proportionally to it.
- ``cap_per_item``: each item takes part in at most this many pairs (its heaviest ones, in
  either role); a pair is kept only if it is within the cap of both of its items.

train_encoder mines them with ``mine_pairs_from_days``: the same pairs as ``mine_pairs`` on the whole
log, streamed from the day partitions by blocks of users, so the click log is never in memory at once.
It writes the pairs it trained on and its holdout to one Parquet file
(``paths.pairs``, a ``split`` column "train" / "holdout"); build_codebook reads them back.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from saviorrec.config.model import Pairs
from saviorrec.data import io
from saviorrec.progress import Progress

PAIR_COLUMNS = ["trigger", "target", "support", "weight"]
SPLIT_COLUMN = "split"
TRAIN, HOLDOUT, COLD = "train", "holdout", "cold"
_NS_PER_DAY = 86_400 * 10**9
CLICK_COLUMNS = ["event_id", "user_id", "item_id", "ts", "click", "conversion"]

# Streamed mining (mine_pairs_from_days): the users are cut into blocks of at most about this many
# co-click occurrences (the per-block working set), and into at most MAX_BLOCKS spill files.
OCCURRENCES_PER_BLOCK = 5_000_000
MAX_BLOCKS = 512
# One spilled click: what mining reads of it, in a fixed binary layout (np.fromfile reads it back).
_SPILL_RECORD = np.dtype([("user_id", "<i8"), ("item_id", "<i8"), ("ts", "<i8"), ("conversion", "i1")])


def _days_between(root: str | Path, start: dt.date | None, end: dt.date | None) -> list[dt.date]:
    days = [d for d in io.list_days(root) if (start is None or d >= start) and (end is None or d < end)]
    if not days:
        raise FileNotFoundError(f"no event partitions in [{start}, {end}) under {root}")
    return days


def _clicks_by_day(root: str | Path, start: dt.date | None, end: dt.date | None, what: str) -> Iterator[pd.DataFrame]:
    """Each day's clicks (``CLICK_COLUMNS``) in (ts, event_id) order, days in order, streamed; ``what``
    names the step on the progress line."""
    days = _days_between(root, start, end)
    with Progress(f"{what} ({len(days)} days)", total=len(days), unit="day") as bar:
        for _day, events in io.iter_event_days(root, start, end, columns=CLICK_COLUMNS):
            clicks = events.loc[events["click"] == 1, CLICK_COLUMNS]
            yield clicks.sort_values(["ts", "event_id"], kind="stable")
            bar.update(1)


def read_clicks(root: str | Path, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """The clicks of days [start, end) under the events root ``root`` (``CLICK_COLUMNS``, in (ds, ts,
    event_id) order as ``io.read_events`` returns them), streamed by day partitions: only the
    clicks are kept, so memory grows with the clicks, never with the impressions of the log."""
    return pd.concat(list(_clicks_by_day(root, start, end, "reading the clicks")), ignore_index=True)


def count_clicks(root: str | Path, start: dt.date | None = None, end: dt.date | None = None) -> int:
    """How many clicks days [start, end) hold, reading only the ``click`` column."""
    days = _days_between(root, start, end)
    total = 0
    with Progress(f"counting the clicks ({len(days)} days)", total=len(days), unit="day") as bar:
        for _day, events in io.iter_event_days(root, start, end, columns=["click"]):
            total += int((events["click"] == 1).sum())
            bar.update(1)
    return total


def _clicks_before(events: pd.DataFrame, end: dt.date | None) -> pd.DataFrame:
    clicks = events.loc[events["click"] == 1, ["user_id", "item_id", "ts", "conversion"]]
    return _in_user_order(clicks, end)


def _in_user_order(clicks: pd.DataFrame, end: dt.date | None) -> pd.DataFrame:
    """``clicks`` strictly before ``end``, each user's in time order (what _co_clicks shifts over)."""
    if end is not None:
        cutoff = pd.Timestamp(end, tz="UTC")
        ts = pd.to_datetime(clicks["ts"], utc=True)
        clicks = clicks.loc[ts < cutoff]
    # item_id breaks ties between same-second clicks so the order (and the pairs) are stable
    return clicks.sort_values(["user_id", "ts", "item_id"], kind="stable")


def _co_clicks(clicks: pd.DataFrame, cfg: Pairs) -> pd.DataFrame:
    """Every (user, item a, item b, occurrence weight) within the window, by shifting the sorted log."""
    users = clicks["user_id"].to_numpy(np.int64)
    items = clicks["item_id"].to_numpy(np.int64)
    ts = pd.to_datetime(clicks["ts"], utc=True).to_numpy("datetime64[ns]").astype(np.int64)
    converted = clicks["conversion"].fillna(0).to_numpy(np.int64) == 1
    click_weight = np.where(converted, cfg.conversion_weight, 1.0)
    window = cfg.window_days * _NS_PER_DAY
    frames = []
    for lag in range(1, min(cfg.max_gap_events, max(len(items) - 1, 0)) + 1):
        keep = (users[lag:] == users[:-lag]) & (ts[lag:] - ts[:-lag] <= window)
        a, b = items[:-lag][keep], items[lag:][keep]
        frames.append(pd.DataFrame({
            "user_id": users[lag:][keep],
            "trigger": np.minimum(a, b),
            "target": np.maximum(a, b),
            "w": (click_weight[:-lag][keep] + click_weight[lag:][keep]) / 2.0,
        }))
    if not frames:
        return pd.DataFrame({"user_id": [], "trigger": [], "target": [], "w": []})
    occ = pd.concat(frames, ignore_index=True)
    return occ.loc[occ["trigger"] != occ["target"]]


def _cap(pairs: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Keep pairs within the top ``cap`` (by weight) of both their items."""
    n = len(pairs)
    item = np.concatenate([pairs["trigger"].to_numpy(), pairs["target"].to_numpy()])
    weight = np.tile(pairs["weight"].to_numpy(float), 2)
    # by item, heaviest first; ties broken by pair index (pairs are sorted by id) so the cut is deterministic
    order = np.lexsort((np.tile(np.arange(n), 2), -weight, item))
    sorted_item = item[order]
    starts = np.flatnonzero(np.r_[True, sorted_item[1:] != sorted_item[:-1]])
    rank = np.empty(2 * n, np.int64)
    rank[order] = np.arange(2 * n) - np.repeat(starts, np.diff(np.r_[starts, 2 * n]))  # place within its item
    return pairs.iloc[np.flatnonzero(np.maximum(rank[:n], rank[n:]) < cap)]


_GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 (wrapping arithmetic: the caller silences overflow)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _PairTotals:
    """Pair counts summed over groups of users, each user's clicks all in one group: co-click pairs
    and item popularity are per user, so the groups' sums are the whole log's.

    Memory holds the distinct pairs and the catalog, never the clicks. A pair's weight is kept as
    its number of users at each possible per-user weight (an occurrence weighs 1, the conversion
    weight or their mean), so the totals are exact integers and do not depend on how the users
    were grouped or in which order the groups came.
    """

    def __init__(self, cfg: Pairs):
        self.cfg = cfg
        self.levels = np.unique([1.0, (1.0 + cfg.conversion_weight) / 2.0, float(cfg.conversion_weight)])
        self.level_columns = [f"users_at_level_{i}" for i in range(len(self.levels))]
        self.pairs = pd.DataFrame({c: pd.Series(dtype="int64") for c in ["trigger", "target", *self.level_columns]})
        self.popularity = pd.Series(dtype="int64")  # item_id -> distinct users who clicked it

    def add(self, clicks: pd.DataFrame) -> None:
        """Count the pairs of ``clicks`` (in ``_in_user_order``): every click of the users it holds."""
        item_users = clicks.groupby("item_id")["user_id"].nunique()
        self.popularity = self.popularity.add(item_users, fill_value=0).astype("int64")
        counts = self._user_counts(clicks)
        if counts.empty:
            return
        merged = pd.concat([self.pairs, counts], ignore_index=True)
        self.pairs = counts = None  # the concatenation holds both: free them before grouping
        self.pairs = merged.groupby(["trigger", "target"], sort=True).sum().reset_index()

    def _user_counts(self, clicks: pd.DataFrame) -> pd.DataFrame:
        """One row per (user, pair) of ``clicks``: the pair and a 1 in the column of the user's weight
        level. A function of its own so the block's occurrences are freed before the merge."""
        occ = _co_clicks(clicks, self.cfg)
        per_user = occ.groupby(["user_id", "trigger", "target"], sort=False)["w"].max()
        level = np.searchsorted(self.levels, per_user.to_numpy())
        counts = pd.DataFrame({"trigger": per_user.index.get_level_values("trigger").to_numpy(np.int64),
                               "target": per_user.index.get_level_values("target").to_numpy(np.int64)})
        for i, column in enumerate(self.level_columns):
            counts[column] = (level == i).astype(np.int64)
        return counts

    def finish(self) -> pd.DataFrame:
        """DataFrame[trigger, target, support, weight] in (trigger, target) order: support filter,
        popularity correction and per-item cap applied. The last call: it hands the totals over."""
        totals, self.pairs = self.pairs, None
        if totals.empty:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c != "weight" else "float64") for c in PAIR_COLUMNS})
        counts = totals[self.level_columns].to_numpy()
        support = counts.sum(axis=1)
        weight = np.zeros(len(counts))
        for i, level in enumerate(self.levels):  # one level at a time, always in this order: reproducible
            weight += counts[:, i] * level
        kept = support >= self.cfg.min_support
        trigger, target = totals["trigger"].to_numpy()[kept], totals["target"].to_numpy()[kept]
        del totals, counts  # the pair table is the biggest thing held: one copy at a time
        pop = self.popularity.reindex(trigger).to_numpy(float) * self.popularity.reindex(target).to_numpy(float)
        pairs = pd.DataFrame({"trigger": trigger, "target": target, "support": support[kept],
                              "weight": weight[kept] / pop ** self.cfg.popularity_alpha})
        pairs = _cap(pairs, self.cfg.cap_per_item)
        pairs = pairs.astype({"trigger": "int64", "target": "int64", "support": "int64", "weight": "float64"})
        return pairs[PAIR_COLUMNS].reset_index(drop=True)


def mine_pairs(events: pd.DataFrame, cfg: Pairs, end: dt.date | None = None) -> pd.DataFrame:
    """DataFrame[trigger, target, support, weight] from clicks strictly before ``end`` (``events``: the
    log or only its clicks, :func:`read_clicks`).

    Returns an empty frame (same columns) when nothing qualifies; the caller decides
    whether that is an error.
    """
    totals = _PairTotals(cfg)
    totals.add(_clicks_before(events, end))
    return totals.finish()


def user_blocks(user_ids: np.ndarray, blocks: int) -> np.ndarray:
    """The block (0 .. blocks - 1) of each user id: splitmix64 of the id, the same in every process
    (unlike Python's salted ``hash``)."""
    with np.errstate(over="ignore"):
        x = _splitmix64(user_ids.astype(np.uint64) + np.uint64(_GOLDEN_GAMMA))
    return (x % np.uint64(blocks)).astype(np.int64)


def block_count(clicks: int, cfg: Pairs) -> int:
    """User blocks for ``clicks`` clicks: a click starts at most ``max_gap_events`` occurrences, so a
    block of ``OCCURRENCES_PER_BLOCK`` occurrences holds about that many / max_gap_events clicks."""
    occurrences = clicks * max(cfg.max_gap_events, 1)
    return int(min(MAX_BLOCKS, max(1, math.ceil(occurrences / OCCURRENCES_PER_BLOCK))))


def _spill_by_user_block(root: str | Path, end: dt.date, blocks: int, folder: Path) -> list[Path]:
    """Append each day's clicks to the file of their user's block, days in order and each day in
    (ts, event_id) order: a block file holds its users' clicks in the order ``read_clicks`` gives them."""
    files = [folder / f"block-{b:04d}.bin" for b in range(blocks)]
    for file in files:
        file.touch()
    for clicks in _clicks_by_day(root, None, end, f"spilling the clicks into {blocks} user blocks"):
        records = np.empty(len(clicks), _SPILL_RECORD)
        records["user_id"] = clicks["user_id"].to_numpy(np.int64)
        records["item_id"] = clicks["item_id"].to_numpy(np.int64)
        records["ts"] = clicks["ts"].to_numpy("datetime64[ns]").astype(np.int64)
        records["conversion"] = clicks["conversion"].fillna(0).to_numpy(np.int8)
        block = user_blocks(records["user_id"], blocks)
        order = np.argsort(block, kind="stable")  # stable: keeps the day's click order within a block
        bounds = np.searchsorted(block[order], np.arange(blocks + 1))
        for b in np.flatnonzero(np.diff(bounds)):
            with open(files[b], "ab") as out:
                records[order[bounds[b]:bounds[b + 1]]].tofile(out)
    return files


def _read_spilled(file: Path) -> pd.DataFrame:
    records = np.fromfile(file, _SPILL_RECORD)
    column = {name: np.ascontiguousarray(records[name]) for name in _SPILL_RECORD.names}  # fields are strided views
    return pd.DataFrame({
        "user_id": column["user_id"],
        "item_id": column["item_id"],
        "ts": pd.DatetimeIndex(column["ts"].view("datetime64[ns]"), tz="UTC"),
        "conversion": column["conversion"],
    })


def _spilled_blocks(files: list[Path], end: dt.date | None) -> Iterator[pd.DataFrame]:
    with Progress(f"mining the pairs of {len(files)} user blocks", total=len(files), unit="block") as bar:
        for file in files:
            yield _in_user_order(_read_spilled(file), end)
            bar.update(1)


def mine_pairs_from_days(root: str | Path, cfg: Pairs, end: dt.date, blocks: int | None = None) -> pd.DataFrame:
    """:func:`mine_pairs` of the clicks of the days before ``end`` under the events root ``root``, the
    same rows in the same order, without the click log in memory.

    Two passes over the day partitions: the first counts the clicks, which sets the number of user
    blocks (``blocks`` overrides it); the second spills each day's clicks to a temporary file per
    block of users (by a hash of the user id). Each block is then mined on its own and its counts
    added up: a user's pairs all come from their own clicks, so they all come out of one block.
    Memory grows with a block, the distinct pairs and the catalog, not with the log.
    """
    blocks = blocks or block_count(count_clicks(root, end=end), cfg)
    totals = _PairTotals(cfg)
    with tempfile.TemporaryDirectory(prefix="saviorrec-pairs-") as folder:
        files = _spill_by_user_block(root, end, blocks, Path(folder))
        for clicks in _spilled_blocks(files, end):
            totals.add(clicks)
    return totals.finish()


def _pair_hash(trigger: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) number per pair that depends only on (pair, seed): splitmix64."""
    with np.errstate(over="ignore"):
        x = (trigger.astype(np.uint64) * np.uint64(_GOLDEN_GAMMA)) ^ target.astype(np.uint64)
        x = _splitmix64(x + np.uint64(seed % 2**63) + np.uint64(_GOLDEN_GAMMA))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def split_holdout(pairs: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout). A pair's side depends only on its ids and the seed, so a pair keeps
    its side across daily refreshes (yesterday's held-out pair is never trained on today)."""
    held = _pair_hash(pairs["trigger"].to_numpy(), pairs["target"].to_numpy(), seed) < fraction
    return pairs.loc[~held].reset_index(drop=True), pairs.loc[held].reset_index(drop=True)


def write_pairs(train: pd.DataFrame, holdout: pd.DataFrame, path: str | Path, cold: pd.DataFrame | None = None) -> None:
    """One file: train rows, holdout rows, then the pairs of cold items, each in its own order
    (``read_pairs`` splits it)."""
    parts = [train[PAIR_COLUMNS].assign(**{SPLIT_COLUMN: TRAIN}), holdout[PAIR_COLUMNS].assign(**{SPLIT_COLUMN: HOLDOUT})]
    if cold is not None:
        parts.append(cold[PAIR_COLUMNS].assign(**{SPLIT_COLUMN: COLD}))
    io.write_parquet(pd.concat(parts, ignore_index=True), path)


def read_pairs(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) as ``write_pairs`` got them: same rows, order and dtypes."""
    splits = read_pair_splits(path)
    return splits[TRAIN], splits[HOLDOUT]


def read_pair_splits(path: str | Path) -> dict[str, pd.DataFrame]:
    """{"train", "holdout", "cold"} -> pairs (cold: pairs touching an item the encoder never trained on)."""
    frame = io.read_parquet(path)
    split = frame[SPLIT_COLUMN]
    return {name: frame.loc[split == name, PAIR_COLUMNS].reset_index(drop=True) for name in (TRAIN, HOLDOUT, COLD)}


def listed_before(items: pd.DataFrame, end: dt.date) -> np.ndarray:
    """bool per catalog row: listed before ``end``, the only items a model trained to ``end`` may know of."""
    return (items["first_seen"] < pd.Timestamp(end)).to_numpy()


def cold_item_ids(items: pd.DataFrame, end: dt.date, fraction: float, seed: int) -> np.ndarray:
    """The items whose pairs the encoder never trains on: the newest ``fraction`` of those listed
    before ``end`` (by ``first_seen``; same-day ties broken by a seeded hash of the id).

    z of these items is pure extrapolation from content, as it is for an item listed tomorrow.
    The newest listings are chosen rather than a random share because tomorrow's items look like
    them (new release years, few tags, today's tastes): on MovieLens, choosing the correction
    scale on random items kept more behavior than transfers to the next months' new items
    (docs/method.md, "Cold start").
    """
    if fraction <= 0 or items.empty:
        return np.zeros(0, np.int64)
    listed = items.loc[listed_before(items, end), ["item_id", "first_seen"]]
    ids = listed["item_id"].to_numpy(np.int64)
    tie = _pair_hash(ids, np.full_like(ids, 0x5EED), seed)
    order = np.lexsort((tie, -listed["first_seen"].to_numpy("datetime64[ns]").astype(np.int64)))
    return np.sort(ids[order[: int(round(fraction * len(ids)))]])


def split_by_items(pairs: pd.DataFrame, cold: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs of known items only, pairs that touch a cold item)."""
    touches = pairs["trigger"].isin(cold) | pairs["target"].isin(cold)
    return pairs.loc[~touches].reset_index(drop=True), pairs.loc[touches].reset_index(drop=True)


def next_click_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """DataFrame[trigger, target]: each user's consecutive clicks on two different items, in
    time order: what users actually went on to click (the future hit@k asks whether the
    trigger's nearest neighbours hold the next click)."""
    clicks = events.loc[events["click"] == 1, ["user_id", "item_id", "ts"]]
    clicks = clicks.sort_values(["user_id", "ts", "item_id"], kind="stable")
    users = clicks["user_id"].to_numpy(np.int64)
    items = clicks["item_id"].to_numpy(np.int64)
    keep = (users[1:] == users[:-1]) & (items[1:] != items[:-1])
    return pd.DataFrame({"trigger": items[:-1][keep], "target": items[1:][keep]})


def future_pairs(events: pd.DataFrame, items: pd.DataFrame, end: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(next clicks in ``events``, those whose target was first listed on or after ``end``)."""
    pairs = next_click_pairs(events)
    new = items.loc[items["first_seen"] >= pd.Timestamp(end), "item_id"].to_numpy()
    return pairs, pairs.loc[pairs["target"].isin(new)].reset_index(drop=True)


def encoder_pair_splits(pairs: pd.DataFrame, items: pd.DataFrame, end: dt.date, holdout_fraction: float,
                        cold_fraction: float, seed: int) -> dict[str, pd.DataFrame | np.ndarray]:
    """The encoder's view of the mined ``pairs``: {"train", "holdout", "cold" (pairs touching a
    cold item, from both sides of the pair holdout), "cold_ids"}. Pairs of the newest listings are
    never trained on: their z is extrapolated, as a new item's is."""
    mined_train, mined_holdout = split_holdout(pairs, holdout_fraction, seed)
    cold_ids = cold_item_ids(items, end, cold_fraction, seed)
    train, train_cold = split_by_items(mined_train, cold_ids)
    holdout, holdout_cold = split_by_items(mined_holdout, cold_ids)
    return {TRAIN: train, HOLDOUT: holdout, COLD: pd.concat([train_cold, holdout_cold], ignore_index=True),
            "cold_ids": cold_ids}
