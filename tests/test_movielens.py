"""The MovieLens adapter: on the shared dev folder, counts match the source and no tag leaks;
on a small CSV folder written here, each subsetting option (since, until, max_users, max_items,
content) changes what it should and the defaults change nothing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from saviorrec.config import REPO_PARAMS, ParamsError, load_params
from saviorrec.config.model import MovieLens
from saviorrec.data import io
from saviorrec.data.contract import validate_events, validate_items
from saviorrec.data.movielens import load_movielens
from saviorrec.stages import run_stage

needs_dev_folder = pytest.mark.movielens


@pytest.fixture(scope="module")
def movielens(movielens_path):
    from saviorrec.config import load_params
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml", {"preset": "movielens"})
    return load_movielens(movielens_path, params.movielens, tags_before=dt.date(2012, 1, 1)), movielens_path


@needs_dev_folder
def test_counts_match_source(movielens):
    data, path = movielens
    ratings = pd.read_csv(path / "ratings.csv")
    assert len(data.events) == len(ratings) == 72_901
    assert data.events["event_id"].is_unique
    assert int(data.events["click"].sum()) == int((ratings["rating"] >= 4).sum())
    assert int(data.events["conversion"].sum()) == int((ratings["rating"] == 5).sum())
    assert len(data.items) == len(pd.read_csv(path / "movies.csv"))
    validate_items(data.items)
    validate_events(data.events, data.items)


@needs_dev_folder
def test_first_seen_is_first_event(movielens):
    data, _ = movielens
    first = data.events.groupby("item_id")["ts"].min().dt.tz_convert(None).dt.normalize()
    joined = data.items.set_index("item_id")["first_seen"].reindex(first.index)
    assert (joined <= first).all()
    assert (joined == first).mean() > 0.99  # the rest were tagged before their first rating


@needs_dev_folder
def test_tags_only_before_cutoff(movielens):
    data, path = movielens
    tags = pd.read_csv(path / "tags.csv")
    late = tags[pd.to_datetime(tags["timestamp"], unit="s", utc=True) >= pd.Timestamp("2012-01-01", tz="UTC")]
    only_late = set(late["tag"].str.lower()) - set(tags.drop(late.index)["tag"].str.lower())
    assert only_late, "the dev folder should have tags first used after the cut-off"
    descriptions = " ".join(data.items["description"].dropna())
    leaked = [t for t in only_late if f" {t}," in descriptions or descriptions.endswith(f" {t}")]
    assert not leaked, f"tags from after the cut-off leaked into content: {leaked[:5]}"


@needs_dev_folder
def test_ingest_stage_writes_72901_impressions(movielens_path, tmp_path):
    from saviorrec.workspace import Workspace
    from tests.conftest import make_workspace

    root = make_workspace(tmp_path / "ws", {"data.path": str(movielens_path)}, preset="movielens")
    summary = run_stage("ingest", Workspace.open(root))
    assert summary["impressions"] == 72_901
    assert io.count_events(root / "data" / "events") == 72_901
    assert summary["items"] == 7_361


# --- subsetting, on a small CSV folder in the MovieLens layout ---------------------------------

def _ts(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


RATINGS = [  # userId, movieId, rating, day
    (1, 1, 4.0, "2001-01-05"), (1, 2, 3.0, "2001-02-01"), (2, 1, 5.0, "2001-03-01"), (2, 2, 4.0, "2001-08-01"),
    (2, 3, 4.0, "2002-06-01"), (3, 4, 2.0, "2003-01-10"), (3, 1, 4.5, "2003-02-01"), (4, 5, 4.0, "2004-05-05"),
    (4, 1, 5.0, "2004-06-06"), (5, 6, 3.5, "2005-01-01"), (5, 7, 4.0, "2005-07-07"), (1, 4, 4.0, "2005-02-02"),
    (6, 8, 5.0, "2006-03-03"), (6, 3, 1.0, "2006-04-04"), (3, 7, 5.0, "2006-05-05"), (5, 8, 2.5, "2006-06-06"),
]
TAGS = [(2, 3, "Heist", "2002-06-02"), (4, 5, "space", "2004-05-06"), (6, 8, "late tag", "2006-03-04")]


@pytest.fixture
def small_folder(tmp_path):
    """8 films over 2001-2006: film 2 is rated only in 2001, films 5-8 first appear from 2004 on."""
    folder = tmp_path / "ml"
    folder.mkdir()
    genres = ["Comedy", "Drama|Crime", "Crime|Thriller", "Horror", "Sci-Fi", "Comedy|Romance", "Drama", "Animation"]
    pd.DataFrame({"movieId": range(1, 9), "title": [f"Film {i} ({1990 + i})" for i in range(1, 9)],
                  "genres": genres}).to_csv(folder / "movies.csv", index=False)
    pd.DataFrame([(u, m, r, _ts(d)) for u, m, r, d in RATINGS],
                 columns=["userId", "movieId", "rating", "timestamp"]).to_csv(folder / "ratings.csv", index=False)
    pd.DataFrame([(u, m, t, _ts(d)) for u, m, t, d in TAGS],
                 columns=["userId", "movieId", "tag", "timestamp"]).to_csv(folder / "tags.csv", index=False)
    return folder


def _cfg(**options) -> MovieLens:
    return MovieLens(click_min_rating=4.0, conversion_rating=5.0, **options)


CUT = dt.date(2004, 1, 1)  # tags_before (the training cut-off)


def test_defaults_keep_the_whole_folder(small_folder):
    cfg = _cfg()
    assert not cfg.subsets and cfg.content == "full"
    repo_cfg = load_params(REPO_PARAMS, {"preset": "movielens"}).movielens
    assert repo_cfg == cfg, "params.yaml movielens: must default to the whole folder"
    data = load_movielens(small_folder, cfg, tags_before=CUT)
    assert len(data.events) == len(RATINGS) and data.events["event_id"].tolist() == list(range(len(RATINGS)))
    assert sorted(data.items["item_id"]) == list(range(1, 9))
    descriptions = data.items.set_index("item_id")["description"]
    assert descriptions[3] == "tags: heist" and pd.isna(descriptions[5]) and pd.isna(descriptions[8])
    # a window around all the data and samples larger than the folder change nothing either
    same = load_movielens(small_folder, _cfg(since=dt.date(2000, 1, 1), until=dt.date(2010, 1, 1), max_users=100,
                                             max_items=100), tags_before=CUT, seed=7)
    pd.testing.assert_frame_equal(same.events, data.events)
    pd.testing.assert_frame_equal(same.items, data.items)


def test_since_drops_earlier_activity_but_not_first_seen(small_folder):
    full = load_movielens(small_folder, _cfg(), tags_before=CUT)
    data = load_movielens(small_folder, _cfg(since=dt.date(2003, 1, 1)), tags_before=CUT)
    assert (data.events["ts"] >= pd.Timestamp("2003-01-01", tz="UTC")).all()
    assert len(data.events) == sum(d >= "2003-01-01" for *_, d in RATINGS)
    assert 2 not in set(data.items["item_id"])  # rated only in 2001
    assert set(data.items["item_id"]) == set(range(1, 9)) - {2}
    first_seen = data.items.set_index("item_id")["first_seen"]
    # film 1 keeps its 2001 listing date: it is not a new item of a later window
    assert first_seen[1] == pd.Timestamp("2001-01-05")
    assert (first_seen == full.items.set_index("item_id")["first_seen"].reindex(first_seen.index)).all()
    # tag of film 3 (2002) is before `since`: dropped with the rest of that period
    assert pd.isna(data.items.set_index("item_id")["description"][3])


def test_until_drops_later_activity_and_later_items(small_folder):
    data = load_movielens(small_folder, _cfg(until=dt.date(2004, 1, 1)), tags_before=None)
    assert (data.events["ts"] < pd.Timestamp("2004-01-01", tz="UTC")).all()
    assert len(data.events) == sum(d < "2004-01-01" for *_, d in RATINGS)
    assert set(data.items["item_id"]) == {1, 2, 3, 4}
    assert data.items["description"].dropna().tolist() == ["tags: heist"]


def test_max_users_keeps_a_seeded_sample_of_whole_users(small_folder):
    data = load_movielens(small_folder, _cfg(max_users=3), tags_before=CUT, seed=11)
    users = set(data.events["user_id"])
    assert len(users) == 3
    assert len(data.events) == sum(u in users for u, *_ in RATINGS)  # every rating of a kept user
    assert set(data.items["item_id"]) == set(data.events["item_id"]) | {m for u, m, *_ in TAGS if u in users}
    again = load_movielens(small_folder, _cfg(max_users=3), tags_before=CUT, seed=11)
    pd.testing.assert_frame_equal(again.events, data.events)
    samples = {frozenset(load_movielens(small_folder, _cfg(max_users=3), tags_before=CUT, seed=s).events["user_id"])
               for s in range(8)}
    assert len(samples) > 1, "the sample should depend on the seed"


def test_max_items_keeps_a_seeded_sample_of_whole_items(small_folder):
    data = load_movielens(small_folder, _cfg(max_items=4), tags_before=CUT, seed=3)
    items = set(data.items["item_id"])
    assert len(items) == 4 and set(data.events["item_id"]) <= items
    assert len(data.events) == sum(m in items for _, m, *_ in RATINGS)  # every rating of a kept item
    validate_items(data.items)
    validate_events(data.events, data.items)
    again = load_movielens(small_folder, _cfg(max_items=4), tags_before=CUT, seed=3)
    pd.testing.assert_frame_equal(again.items, data.items)
    samples = {frozenset(load_movielens(small_folder, _cfg(max_items=4), tags_before=CUT, seed=s).items["item_id"])
               for s in range(8)}
    assert len(samples) > 1, "the sample should depend on the seed"


def test_title_genres_drops_only_the_descriptions(small_folder):
    full = load_movielens(small_folder, _cfg(), tags_before=CUT)
    bare = load_movielens(small_folder, _cfg(content="title_genres"), tags_before=CUT)
    assert bare.items["description"].isna().all()
    pd.testing.assert_frame_equal(bare.events, full.events)
    pd.testing.assert_frame_equal(bare.items.drop(columns="description"), full.items.drop(columns="description"))


def test_subsetting_params_are_validated():
    with pytest.raises(ParamsError, match="until"):
        load_params(REPO_PARAMS, {"preset": "movielens", "movielens.since": "2005-01-01", "movielens.until": "2004-01-01"})
    with pytest.raises(ParamsError, match="content"):
        load_params(REPO_PARAMS, {"movielens.content": "tags_only"})


def test_ingest_stage_applies_the_subset_with_params_seed(small_folder, tmp_path):
    from saviorrec.workspace import Workspace
    from tests.conftest import make_workspace

    overrides = {"data.path": str(small_folder), "split.train_end": "2004-01-01", "split.eval_end": "2007-01-01",
                 "movielens.max_items": 5, "seed": 5}
    root = make_workspace(tmp_path / "ws", overrides, preset="movielens")
    summary = run_stage("ingest", Workspace.open(root))
    expected = load_movielens(small_folder, _cfg(max_items=5), tags_before=CUT, seed=5)
    assert summary["items"] == 5
    assert sorted(io.read_items(root / "data" / "items.parquet")["item_id"]) == sorted(expected.items["item_id"])
    assert summary["impressions"] == len(expected.events)
