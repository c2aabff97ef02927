"""The MovieLens adapter on the shared dev folder: counts match the source, no tag leakage."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from saviorrec.data import io
from saviorrec.data.contract import validate_events, validate_items
from saviorrec.data.movielens import load_movielens
from saviorrec.stages import run_stage

pytestmark = pytest.mark.movielens


@pytest.fixture(scope="module")
def movielens(movielens_path):
    from saviorrec.config import load_params
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml", {"preset": "movielens"})
    return load_movielens(movielens_path, params.movielens, tags_before=dt.date(2012, 1, 1)), movielens_path


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


def test_first_seen_is_first_event(movielens):
    data, _ = movielens
    first = data.events.groupby("item_id")["ts"].min().dt.tz_convert(None).dt.normalize()
    joined = data.items.set_index("item_id")["first_seen"].reindex(first.index)
    assert (joined <= first).all()
    assert (joined == first).mean() > 0.99  # the rest were tagged before their first rating


def test_tags_only_before_cutoff(movielens):
    data, path = movielens
    tags = pd.read_csv(path / "tags.csv")
    late = tags[pd.to_datetime(tags["timestamp"], unit="s", utc=True) >= pd.Timestamp("2012-01-01", tz="UTC")]
    only_late = set(late["tag"].str.lower()) - set(tags.drop(late.index)["tag"].str.lower())
    assert only_late, "the dev folder should have tags first used after the cut-off"
    descriptions = " ".join(data.items["description"].dropna())
    leaked = [t for t in only_late if f" {t}," in descriptions or descriptions.endswith(f" {t}")]
    assert not leaked, f"tags from after the cut-off leaked into content: {leaked[:5]}"


def test_ingest_stage_writes_72901_impressions(movielens_path, tmp_path):
    from saviorrec.workspace import Workspace
    from tests.conftest import make_workspace

    root = make_workspace(tmp_path / "ws", {"data.path": str(movielens_path)}, preset="movielens")
    summary = run_stage("ingest", Workspace.open(root))
    assert summary["impressions"] == 72_901
    assert io.count_events(root / "data" / "events") == 72_901
    assert summary["items"] == 7_361
