"""Numeric checks at their boundary, at the DEFAULT thresholds of params.yaml `checks:`.

Each ``Boundary`` edits a copy of the clean base workspace two ways: just past the limit (the
gate must refuse with the check's message) and just inside it (the gate must pass). The limit
is written here as params.yaml states it, never read from the params: a loosened threshold
must make the "past" case pass the gate, and so fail its test. Each edit returns the value it
produced, computed here from the files it wrote, to be compared with what the gate measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bad_inputs import (
    GATE_LOGS,
    GATE_MODEL,
    GATE_SIDS,
    edit_table,
    last_day,
    new_item_events,
    read_day,
    write_day,
)


@dataclass(frozen=True)
class Boundary:
    name: str
    gate: str
    check: str
    message: str                  # regex: the check's message, threshold included, as the refusal must say it
    limit: float                  # the default threshold
    upper: bool                   # the limit is a maximum (else a minimum)
    strict: bool                  # the limit itself fails
    resolution: float             # both cases lie this close to the limit (one click, one item, one pair of scores)
    edit: Callable                # edit(ws, past: bool) -> the value it produced
    measured: Callable[[dict], float]  # the same value, as the gate's verdict reports it

    def inside(self, value: float) -> bool:
        if self.upper:
            return value < self.limit if self.strict else value <= self.limit
        return value > self.limit if self.strict else value >= self.limit


# ---- the behavior log: the last day against the median of the days before it -----------------

def _previous_days(ws) -> list[pd.DataFrame]:
    days = [str(d) for d in ws.data_days()]
    return [read_day(ws, d) for d in days[:-1][-7:]]  # trailing_days: 7


def _trailing_volume(ws) -> float:
    return float(np.median([len(day) for day in _previous_days(ws)]))


def _trailing_ctr(ws) -> float:
    return float(np.median([day["click"].mean() for day in _previous_days(ws)]))


def _last_day_with_rows(ws, rows: int) -> int:
    """The last day cut or grown to ``rows`` impressions; growth copies the day by new users, so
    no user gets more impressions (bots) and the CTR stays the day's."""
    day = last_day(ws)
    events = read_day(ws, day)
    copy = np.arange(rows) // len(events)
    grown = events.iloc[np.arange(rows) % len(events)].reset_index(drop=True)
    grown["event_id"] += copy * 10_000_000
    grown["user_id"] += copy * 10_000_000
    write_day(ws, day, grown)
    return rows


def _volume(ratio: float, past_rows: Callable[[float], int], inside_rows: Callable[[float], int]) -> Callable:
    def edit(ws, past: bool) -> float:
        trailing = _trailing_volume(ws)
        rows = (past_rows if past else inside_rows)(trailing * ratio)
        return _last_day_with_rows(ws, rows) / trailing

    return edit


def _clicks_for(ratio: float, above: bool, rows: int, trailing: float, past: bool) -> int:
    """The click count whose CTR ratio lies just past (or just inside) ``ratio``, never on it
    (an exact CTR ratio depends on float rounding)."""
    center = ratio * trailing * rows
    counts = range(max(0, math.floor(center) - 2), math.ceil(center) + 3)
    ratios = {c: c / rows / trailing for c in counts}
    if above == past:  # the smallest count above the ratio
        return min(c for c, r in ratios.items() if r > ratio * (1 + 1e-9))
    return max(c for c, r in ratios.items() if r < ratio * (1 - 1e-9))


def _set_clicks(events: pd.DataFrame, clicks: int) -> pd.DataFrame:
    """Flip clicks on (or off, with their conversions) until the day has ``clicks``."""
    have = int(events["click"].sum())
    if clicks > have:
        flip = events.index[events["click"] == 0][: clicks - have]
        events.loc[flip, "click"] = 1
    else:
        flip = events.index[events["click"] == 1][: have - clicks]
        events.loc[flip, ["click", "conversion"]] = 0
    assert int(events["click"].sum()) == clicks
    return events


def _ctr(ratio: float, above: bool) -> Callable:
    def edit(ws, past: bool) -> float:
        day, trailing = last_day(ws), _trailing_ctr(ws)
        events = read_day(ws, day)
        clicks = _clicks_for(ratio, above, len(events), trailing, past)
        write_day(ws, day, _set_clicks(events, clicks))
        return clicks / len(events) / trailing

    return edit


def _unclicked_small_day(ws, past: bool) -> float:
    """A last day of 200 (judged) or 199 (too small to judge) impressions, none clicked."""
    rows = 200 if past else 199
    _last_day_with_rows(ws, rows)
    day = last_day(ws)
    write_day(ws, day, _set_clicks(read_day(ws, day), 0))
    return rows


def _bot_user(ws, past: bool) -> float:
    """A new user with 2001 (or 2000) impressions: copies of the day's rows, clicks kept."""
    rows = 2001 if past else 2000
    day = last_day(ws)
    events = read_day(ws, day)
    bot = events.iloc[np.arange(rows) % len(events)].copy()
    bot["event_id"] = np.arange(rows) + 50_000_000
    bot["user_id"] = 4_242_424
    assert not events["user_id"].eq(4_242_424).any()
    write_day(ws, day, pd.concat([events, bot], ignore_index=True))
    return rows


# ---- semantic IDs ----------------------------------------------------------------------------

def _with_sid(df: pd.DataFrame) -> pd.DataFrame:
    df["sid"] = df[["c1", "c2", "c3", "dedup"]].astype(str).agg("-".join, axis=1)
    return df


def _collide(df: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first n items take item 0's code tuple; the dedup level keeps their final IDs unique."""
    assert not df.duplicated(["c1", "c2", "c3"]).any()
    group = df.index[:n]
    df.loc[group, ["c1", "c2", "c3"]] = df.loc[df.index[0], ["c1", "c2", "c3"]].to_numpy()
    df.loc[group, "dedup"] = np.arange(n, dtype=np.int32)
    return _with_sid(df)


def _colliding_items(ws, past: bool) -> float:
    """n of N items collide: just above 5% of them, or exactly 5%."""
    items = len(pd.read_parquet(ws.path("sids"), columns=["item_id"]))
    n = items * 5 // 100 + (1 if past else 0)
    edit_table(ws.path("sids"), lambda df: _collide(df, n))
    return n / items


def _level1_codes(ws, past: bool) -> float:
    """Only k level-1 codes in use: k/64 just below 0.9 (57) or the first k at or above it (58).

    Items moved to a used code get a level-2 code of their own, so no code tuple collides."""
    size = ws.params.codebook.codebook_size
    used = math.ceil(size * 9 / 10) - (1 if past else 0)

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        moved = df.index[df["c1"] >= used]
        df.loc[moved, "c1"] %= used
        df.loc[moved, "c2"] = df["c2"].max() + 1 + np.arange(len(moved), dtype=np.int32)
        assert df["c1"].nunique() == used and not df.duplicated(["c1", "c2", "c3"]).any()
        return _with_sid(df)

    edit_table(ws.path("sids"), edit)
    return used / size


# ---- the model: scores on the evaluation window ------------------------------------------------

def _window(ws, table: str) -> pd.DataFrame:
    """The evaluation day's events with a table's scores and whether each item is new."""
    events = read_day(ws, last_day(ws))[["event_id", "click"]]
    scores = pd.read_parquet(ws.path(table))[["event_id", "p_ctr"]]
    df = events.merge(scores, on="event_id", how="left", validate="one_to_one")
    assert df["p_ctr"].notna().all()
    df["new"] = df["event_id"].isin(set(new_item_events(ws)["event_id"]))
    return df


def _overall_auc(df: pd.DataFrame, scores: np.ndarray) -> float:
    return float(roc_auc_score(df["click"], scores))


def _new_auc(df: pd.DataFrame, scores: np.ndarray) -> float:
    new = df["new"].to_numpy()
    return float(roc_auc_score(df["click"].to_numpy()[new], scores[new]))


def shift_auc(df: pd.DataFrame, movable: np.ndarray, auc_of: Callable, delta: float) -> tuple[np.ndarray, float]:
    """Scores whose AUC moved by ``delta`` or just past it, and the move.

    Swaps the scores of neighbouring (by score) positive/negative events among the ``movable`` ones,
    in batches halved near the target: the first swap that reaches ``delta`` stops, so the move
    overshoots by at most one swap (a few 1/(positives*negatives)). Swapping keeps the scores'
    multiset, hence the calibration; events outside ``movable`` keep their scores.
    """
    scores, labels = df["p_ctr"].to_numpy(float).copy(), df["click"].to_numpy()
    start, down = auc_of(df, scores), delta < 0
    rows = np.flatnonzero(movable)
    batch = 1
    while True:
        order = rows[np.argsort(scores[rows], kind="stable")]
        low, high = order[:-1], order[1:]
        # lowering the AUC: a click ranked just above a non-click; raising it: the reverse
        wanted = (labels[high] == 1) & (labels[low] == 0) if down else (labels[high] == 0) & (labels[low] == 1)
        pairs = np.flatnonzero(wanted & (scores[high] > scores[low]))
        pairs = pairs[np.concatenate([[True], np.diff(pairs) > 1])] if len(pairs) else pairs  # disjoint
        assert len(pairs), "no neighbouring pair left to swap"
        trial = scores.copy()
        chosen = pairs[:batch]
        trial[low[chosen]], trial[high[chosen]] = scores[high[chosen]], scores[low[chosen]]
        moved = auc_of(df, trial) - start
        if abs(moved) >= abs(delta) and batch > 1:
            batch //= 2  # too far: retry with fewer swaps
            continue
        scores = trial
        if abs(moved) >= abs(delta):
            return scores, moved
        batch *= 2


def _write_scores(ws, table: str, df: pd.DataFrame, scores: np.ndarray) -> None:
    by_event = pd.Series(scores, index=df["event_id"].to_numpy())
    edit_table(ws.path(table), lambda t: t.assign(p_ctr=t["event_id"].map(by_event).fillna(t["p_ctr"])))


def _auc_drop(delta_past: float, delta_inside: float) -> Callable:
    """The candidate's CTR AUC lowered by swapping scores of events of items that are not new
    (new items keep theirs, so the new-item AUC does not move)."""
    def edit(ws, past: bool) -> float:
        df = _window(ws, "predictions")
        scores, moved = shift_auc(df, ~df["new"].to_numpy(), _overall_auc, delta_past if past else delta_inside)
        _write_scores(ws, "predictions", df, scores)
        return moved

    return edit


def _new_auc_drop(delta_past: float, delta_inside: float) -> Callable:
    """The candidate's new-item CTR AUC lowered by swapping scores of new items' events.

    The base's baseline ranker is the candidate's own heuristic: it gets the same edit, so the
    baseline comparison stays at a delta of 0 and production's is the only one to move."""
    def edit(ws, past: bool) -> float:
        df = _window(ws, "predictions")
        scores, moved = shift_auc(df, df["new"].to_numpy(), _new_auc, delta_past if past else delta_inside)
        _write_scores(ws, "predictions", df, scores)
        baseline = _window(ws, "baseline_predictions")
        assert np.allclose(baseline["p_ctr"], df["p_ctr"]), "the baseline is expected to score like the candidate"
        _write_scores(ws, "baseline_predictions", df, scores)
        return moved

    return edit


def _better_baseline_on_new_items(gap_past: float, gap_inside: float) -> Callable:
    """The baseline's new-item CTR AUC raised (the candidate untouched): candidate - baseline = -gap."""
    def edit(ws, past: bool) -> float:
        df = _window(ws, "baseline_predictions")
        scores, moved = shift_auc(df, df["new"].to_numpy(), _new_auc, gap_past if past else gap_inside)
        _write_scores(ws, "baseline_predictions", df, scores)
        return -moved

    return edit


def _calibration(ratio_past: float, ratio_inside: float) -> Callable:
    """p_ctr scaled so mean pCTR / observed CTR is the given ratio (the ranking, hence the AUCs, unchanged)."""
    def edit(ws, past: bool) -> float:
        df = _window(ws, "predictions")
        scale = (ratio_past if past else ratio_inside) / (df["p_ctr"].mean() / df["click"].mean())
        edit_table(ws.path("predictions"), lambda t: t.assign(p_ctr=t["p_ctr"] * scale))
        df = _window(ws, "predictions")
        assert df["p_ctr"].max() < 1
        return float(df["p_ctr"].mean() / df["click"].mean())

    return edit


def _last_day_fact(name: str) -> Callable[[dict], float]:
    return lambda verdict: verdict["facts"]["last_day"][name]


def _fact(name: str) -> Callable[[dict], float]:
    return lambda verdict: verdict["facts"][name]


def _auc_delta(metric: str, reference: str) -> Callable[[dict], float]:
    return lambda verdict: verdict["facts"]["candidate"][metric] - verdict["facts"][reference][metric]


def _calibration_ratio(verdict: dict) -> float:
    candidate = verdict["facts"]["candidate"]
    return candidate["mean_p_ctr"] / candidate["observed_ctr"]


BOUNDARIES = [
    # volume_band {ratio: 10}: strict, so 10x itself fails; 1 impression less passes
    Boundary("volume_10x", GATE_LOGS, "volume_band", "day volume outside 1/10x..10x of the trailing median",
             10.0, upper=True, strict=True, resolution=0.001,
             edit=_volume(10.0, past_rows=math.ceil, inside_rows=lambda rows: math.ceil(rows) - 1),
             measured=_last_day_fact("volume_ratio")),
    Boundary("volume_tenth", GATE_LOGS, "volume_band", "day volume outside 1/10x..10x of the trailing median",
             0.1, upper=False, strict=True, resolution=0.001,
             edit=_volume(0.1, past_rows=math.floor, inside_rows=lambda rows: math.floor(rows) + 1),
             measured=_last_day_fact("volume_ratio")),
    # ctr_band {ratio: 3, min_impressions: 200}: one click past 3x or 1/3x of the trailing CTR
    Boundary("ctr_3x", GATE_LOGS, "ctr_band", "day CTR outside 1/3x..3x of the trailing median",
             3.0, upper=True, strict=True, resolution=0.01, edit=_ctr(3.0, above=True), measured=_last_day_fact("ctr_ratio")),
    Boundary("ctr_third", GATE_LOGS, "ctr_band", "day CTR outside 1/3x..3x of the trailing median",
             1 / 3, upper=False, strict=True, resolution=0.01, edit=_ctr(1 / 3, above=False),
             measured=_last_day_fact("ctr_ratio")),
    # a day without a click is judged from 200 impressions on
    Boundary("ctr_judged_from_200_impressions", GATE_LOGS, "ctr_band", "day CTR outside 1/3x..3x of the trailing median",
             200, upper=True, strict=True, resolution=1, edit=_unclicked_small_day, measured=_last_day_fact("impressions")),
    Boundary("bot_2000", GATE_LOGS, "bot_threshold", r"a user has more than 2000 impressions in a day \(bot\)",
             2000, upper=True, strict=False, resolution=1, edit=_bot_user, measured=_last_day_fact("max_user_impressions")),
    Boundary("collision_rate_0.05", GATE_SIDS, "raw_collision_rate", "raw SID collision rate above 0.05",
             0.05, upper=True, strict=False, resolution=0.005, edit=_colliding_items, measured=_fact("raw_collision_rate")),
    Boundary("level1_utilization_0.9", GATE_SIDS, "level1_utilization", "level-1 codebook utilization below 0.9",
             0.9, upper=False, strict=False, resolution=0.016, edit=_level1_codes, measured=_fact("level1_utilization")),
    Boundary("calibration_1.2", GATE_MODEL, "calibration", "mean pCTR off the observed CTR by more than 20%",
             1.2, upper=True, strict=False, resolution=0.011, edit=_calibration(1.21, 1.19), measured=_calibration_ratio),
    Boundary("calibration_0.8", GATE_MODEL, "calibration", "mean pCTR off the observed CTR by more than 20%",
             0.8, upper=False, strict=False, resolution=0.011, edit=_calibration(0.79, 0.81), measured=_calibration_ratio),
    Boundary("auc_regression_0.005", GATE_MODEL, "auc_regression", "CTR AUC below production's by more than 0.005",
             -0.005, upper=False, strict=False, resolution=0.0012, edit=_auc_drop(-0.006, -0.004),
             measured=_auc_delta("auc", "production")),
    Boundary("new_auc_regression_0.01", GATE_MODEL, "new_auc_regression",
             "new-item CTR AUC below production's by more than 0.01",
             -0.01, upper=False, strict=False, resolution=0.0015, edit=_new_auc_drop(-0.011, -0.009),
             measured=_auc_delta("new_auc", "production")),
    Boundary("new_auc_vs_baseline_0.01", GATE_MODEL, "new_auc_vs_baseline",
             r"new-item CTR AUC \S+ below the heuristic baseline's \S+ by more than 0.01",
             -0.01, upper=False, strict=False, resolution=0.0015, edit=_better_baseline_on_new_items(0.011, 0.009),
             measured=_auc_delta("new_auc", "baseline")),
]
