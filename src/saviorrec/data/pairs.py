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

train_encoder writes the pairs it trained on and its holdout to one Parquet file
(``paths.pairs``, a ``split`` column "train" / "holdout"); build_codebook reads them back.
"""

from __future__ import annotations

import datetime as dt
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


def read_clicks(root: str | Path, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """The clicks of days [start, end) under the events root ``root`` (``CLICK_COLUMNS``, in (ds, ts,
    event_id) order as ``io.read_events`` returns them), read one day partition at a time: only the
    clicks are kept, so memory grows with the clicks, never with the impressions of the log."""
    days = [d for d in io.list_days(root) if (start is None or d >= start) and (end is None or d < end)]
    if not days:
        raise FileNotFoundError(f"no event partitions in [{start}, {end}) under {root}")
    frames = []
    with Progress(f"reading the clicks of {len(days)} days", total=len(days), unit="day") as bar:
        for day in days:
            events = io.read_event_day(root, day, columns=CLICK_COLUMNS)
            clicks = events.loc[events["click"] == 1, CLICK_COLUMNS]
            frames.append(clicks.sort_values(["ts", "event_id"], kind="stable"))
            bar.update(1)
    return pd.concat(frames, ignore_index=True)


def _clicks_before(events: pd.DataFrame, end: dt.date | None) -> pd.DataFrame:
    clicks = events.loc[events["click"] == 1, ["user_id", "item_id", "ts", "conversion"]]
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
    idx = np.arange(len(pairs))
    long = pd.DataFrame({
        "pair": np.concatenate([idx, idx]),
        "item": np.concatenate([pairs["trigger"].to_numpy(), pairs["target"].to_numpy()]),
        "weight": np.concatenate([pairs["weight"].to_numpy(), pairs["weight"].to_numpy()]),
    })
    # ties broken by pair index (pairs are sorted by id) so the cut is deterministic
    long = long.sort_values(["item", "weight", "pair"], ascending=[True, False, True], kind="stable")
    long["rank"] = long.groupby("item").cumcount()
    worst = long.groupby("pair")["rank"].max()
    return pairs.iloc[np.sort(worst.index[worst.to_numpy() < cap].to_numpy())]


def mine_pairs(events: pd.DataFrame, cfg: Pairs, end: dt.date | None = None) -> pd.DataFrame:
    """DataFrame[trigger, target, support, weight] from clicks strictly before ``end`` (``events``: the
    log or only its clicks, :func:`read_clicks`).

    Returns an empty frame (same columns) when nothing qualifies; the caller decides
    whether that is an error.
    """
    clicks = _clicks_before(events, end)
    occ = _co_clicks(clicks, cfg)
    if occ.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "weight" else "float64") for c in PAIR_COLUMNS})
    per_user = occ.groupby(["user_id", "trigger", "target"], sort=False)["w"].max().reset_index()
    pairs = per_user.groupby(["trigger", "target"], sort=True).agg(support=("w", "size"), weight=("w", "sum")).reset_index()
    pairs = pairs.loc[pairs["support"] >= cfg.min_support]
    popularity = clicks.groupby("item_id")["user_id"].nunique()
    pop = popularity.reindex(pairs["trigger"]).to_numpy(float) * popularity.reindex(pairs["target"]).to_numpy(float)
    pairs = pairs.assign(weight=pairs["weight"].to_numpy(float) / pop ** cfg.popularity_alpha)
    pairs = _cap(pairs.reset_index(drop=True), cfg.cap_per_item)
    pairs = pairs.astype({"trigger": "int64", "target": "int64", "support": "int64", "weight": "float64"})
    return pairs[PAIR_COLUMNS].reset_index(drop=True)


def _pair_hash(trigger: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) number per pair that depends only on (pair, seed): splitmix64."""
    with np.errstate(over="ignore"):
        x = (trigger.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ target.astype(np.uint64)
        x = x + np.uint64(seed % 2**63) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
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
