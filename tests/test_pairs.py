"""Pair mining: window, gap, conversions, support, cap, popularity correction, holdout."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from saviorrec.config.model import Pairs
from saviorrec.data.pairs import PAIR_COLUMNS, mine_pairs, split_holdout


def cfg(**over) -> Pairs:
    base = dict(window_days=14, max_gap_events=20, min_support=1, cap_per_item=50,
                conversion_weight=2.0, popularity_alpha=0.0, holdout_fraction=0.1)
    return Pairs(**{**base, **over})


def log(rows) -> pd.DataFrame:
    """rows: (user, item, day offset, click, conversion)."""
    start = pd.Timestamp("2024-01-01", tz="UTC")
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "day", "click", "conversion"])
    df["ts"] = start + pd.to_timedelta(df["day"], unit="D") + pd.to_timedelta(df.index, unit="s")
    df["event_id"] = range(len(df))
    df["click"] = df["click"].astype("int8")
    df["conversion"] = df["conversion"].astype("Int8")
    return df.drop(columns="day")


def as_set(pairs: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(pairs["trigger"], pairs["target"], strict=True))


def test_co_clicks_within_window_and_gap_form_unordered_pairs():
    events = log([
        (1, 30, 0, 1, 0), (1, 10, 0, 1, 0), (1, 20, 1, 1, 0),
        (1, 99, 1, 0, 0),                      # impression without click: ignored
        (1, 40, 30, 1, 0),                     # 29+ days later: outside the window
        (2, 10, 0, 1, 0), (2, 10, 1, 1, 0),    # same item twice: no self pair
    ])
    pairs = mine_pairs(events, cfg())
    assert list(pairs.columns) == PAIR_COLUMNS
    assert as_set(pairs) == {(10, 30), (10, 20), (20, 30)}
    assert (pairs["trigger"] < pairs["target"]).all()
    gap1 = mine_pairs(events, cfg(max_gap_events=1))
    assert as_set(gap1) == {(10, 30), (10, 20)}  # 30 and 20 are two clicks apart


def test_end_excludes_later_days_and_conversions_weigh_more():
    events = log([
        (1, 1, 0, 1, 1), (1, 2, 0, 1, 1),      # co-conversion
        (2, 3, 0, 1, 0), (2, 4, 0, 1, 0),      # co-click
        (3, 5, 2, 1, 0), (3, 6, 2, 1, 0),      # on the end day: excluded
    ])
    pairs = mine_pairs(events, cfg(conversion_weight=3.0), end=dt.date(2024, 1, 3)).set_index(["trigger", "target"])
    assert (5, 6) not in pairs.index
    assert pairs.loc[(1, 2), "weight"] == pytest.approx(3 * pairs.loc[(3, 4), "weight"])


def test_support_counts_users_once_and_min_support_filters():
    events = log([
        (1, 1, 0, 1, 0), (1, 2, 0, 1, 0), (1, 1, 1, 1, 0), (1, 2, 1, 1, 0),  # one user, repeated
        (2, 1, 0, 1, 0), (2, 3, 0, 1, 0),
        (3, 1, 0, 1, 0), (3, 3, 0, 1, 0),
    ])
    pairs = mine_pairs(events, cfg()).set_index(["trigger", "target"])
    assert pairs.loc[(1, 2), "support"] == 1 and pairs.loc[(1, 3), "support"] == 2
    assert as_set(mine_pairs(events, cfg(min_support=2))) == {(1, 3)}


def test_popularity_correction_discounts_hub_items():
    rows = []
    for user in range(20):  # item 0 is a hub clicked with everything
        rows += [(user, 0, 0, 1, 0), (user, 100 + user, 0, 1, 0)]
    rows += [(50, 1, 0, 1, 0), (50, 2, 0, 1, 0)]
    events = log(rows)
    flat = mine_pairs(events, cfg(popularity_alpha=0.0)).set_index(["trigger", "target"])
    corrected = mine_pairs(events, cfg(popularity_alpha=0.5)).set_index(["trigger", "target"])
    assert flat.loc[(0, 100), "weight"] == flat.loc[(1, 2), "weight"]
    assert corrected.loc[(0, 100), "weight"] < corrected.loc[(1, 2), "weight"] / 4


def test_cap_per_item_limits_pairs_of_every_item():
    rows = [(u, 0, 0, 1, 0) for u in range(10)] + [(u, 100 + u, 0, 1, 0) for u in range(10)]
    rows = sorted(rows, key=lambda r: r[0])
    pairs = mine_pairs(log(rows), cfg(cap_per_item=3))
    counts = pd.concat([pairs["trigger"], pairs["target"]]).value_counts()
    assert counts.max() <= 3 and counts[0] == 3


def test_no_pairs_gives_empty_frame():
    pairs = mine_pairs(log([(1, 1, 0, 1, 0), (2, 2, 0, 1, 0), (3, 3, 0, 0, 0)]), cfg())
    assert pairs.empty and list(pairs.columns) == PAIR_COLUMNS


def test_holdout_is_seeded_and_stable_as_data_grows():
    pairs = pd.DataFrame({"trigger": range(0, 2000), "target": range(5000, 7000), "support": 1, "weight": 1.0})
    train, held = split_holdout(pairs, 0.1, seed=7)
    assert 150 < len(held) < 250 and len(train) + len(held) == len(pairs)
    assert not set(zip(train.trigger, train.target, strict=True)) & set(zip(held.trigger, held.target, strict=True))
    _, held_again = split_holdout(pairs.iloc[500:], 0.1, seed=7)       # fewer pairs: same verdicts
    assert set(zip(held_again.trigger, held_again.target, strict=True)) <= set(zip(held.trigger, held.target, strict=True))
    _, other_seed = split_holdout(pairs, 0.1, seed=8)
    assert set(zip(other_seed.trigger, other_seed.target, strict=True)) != set(zip(held.trigger, held.target, strict=True))


def test_pairs_file_gives_back_the_same_train_and_holdout(tmp_path):
    from saviorrec.data.pairs import read_pairs, write_pairs

    pairs = mine_pairs(log([(u, i, 0, 1, 0) for u in range(6) for i in (u, u + 1, u + 2)]), cfg())
    train, held = split_holdout(pairs, 0.3, seed=1)
    assert len(train) and len(held)
    write_pairs(train, held, tmp_path / "pairs.parquet")
    back_train, back_held = read_pairs(tmp_path / "pairs.parquet")
    pd.testing.assert_frame_equal(back_train, train, check_exact=True)
    pd.testing.assert_frame_equal(back_held, held, check_exact=True)
    write_pairs(train, held.iloc[:0], tmp_path / "pairs.parquet")  # an empty side keeps its dtypes
    back_train, back_held = read_pairs(tmp_path / "pairs.parquet")
    pd.testing.assert_frame_equal(back_train, train, check_exact=True)
    assert back_held.empty and back_held.dtypes.equals(held.dtypes)


def test_cold_items_are_the_newest_listings_with_seeded_ties():
    from saviorrec.data.pairs import cold_item_ids

    items = pd.DataFrame({"item_id": range(100, 140),
                          "first_seen": pd.Timestamp("2024-01-01") + pd.to_timedelta([i // 10 for i in range(40)], unit="D")})
    cold = cold_item_ids(items, dt.date(2024, 1, 4), 0.2, seed=3)  # 30 listed before the cut: the newest 6
    assert len(cold) == 6 and set(cold) <= set(range(120, 130))   # all from the last listed day
    assert (cold == cold_item_ids(items, dt.date(2024, 1, 4), 0.2, seed=3)).all()
    assert set(cold) != set(cold_item_ids(items, dt.date(2024, 1, 4), 0.2, seed=4))  # ties broken by the seed
    assert len(cold_item_ids(items, dt.date(2024, 1, 4), 0.0, seed=3)) == 0


def test_next_click_pairs_follow_each_users_clicks_in_time_order():
    from saviorrec.data.pairs import next_click_pairs

    events = log([(1, 10, 0, 1, 0), (1, 11, 0, 0, 0), (1, 12, 1, 1, 0), (1, 12, 2, 1, 0), (1, 13, 3, 1, 0),
                  (2, 20, 0, 1, 0), (2, 21, 5, 1, 0)])
    got = list(zip(next_click_pairs(events)["trigger"], next_click_pairs(events)["target"], strict=True))
    assert got == [(10, 12), (12, 13), (20, 21)]  # no skip (11), no self pair (12 -> 12), no cross-user pair


def test_pairs_file_keeps_the_cold_items_pairs_apart(tmp_path):
    from saviorrec.data.pairs import read_pair_splits, read_pairs, split_by_items, write_pairs

    pairs = mine_pairs(log([(u, i, 0, 1, 0) for u in range(6) for i in (u, u + 1, u + 2)]), cfg())
    known, cold = split_by_items(pairs, [3])
    assert len(cold) and not (known["trigger"].eq(3) | known["target"].eq(3)).any()
    assert (cold["trigger"].eq(3) | cold["target"].eq(3)).all()
    write_pairs(known, known.iloc[:0], tmp_path / "pairs.parquet", cold=cold)
    splits = read_pair_splits(tmp_path / "pairs.parquet")
    pd.testing.assert_frame_equal(splits["cold"], cold, check_exact=True)
    pd.testing.assert_frame_equal(read_pairs(tmp_path / "pairs.parquet")[0], known, check_exact=True)
