"""The embedded synthetic marketplace: contract, determinism, new items daily, hidden truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from PIL import Image

from saviorrec.config import load_params
from saviorrec.data import contract, io
from saviorrec.data.synthetic import build_world, generate
from saviorrec.data.synthetic.diagnostics import community_predictability, new_item_auc
from tests.conftest import REPO


def _cfg(**overrides):
    params = load_params(REPO / "params.yaml", {"preset": "tiny", **{f"synthetic.{k}": v for k, v in overrides.items()}})
    return params.synthetic, params.seed


def _generate(root, cfg, seed, images=True):
    summary = generate(cfg, seed, root / "events", root / "items.parquet", root / "images" if images else None)
    return summary, io.read_items(root / "items.parquet"), io.read_events(root / "events")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg, seed = _cfg()
    root = tmp_path_factory.mktemp("synthetic")
    summary, items, events = _generate(root, cfg, seed)
    return cfg, seed, root, summary, items, events


def test_every_day_meets_the_contract(tiny):
    cfg, _, root, summary, items, events = tiny
    contract.validate_items(items)
    days = io.list_days(root / "events")
    assert len(days) == cfg.n_days == summary["days"]
    assert days[0] == cfg.start_date
    for day in days:
        contract.validate_events(io.read_event_day(root / "events", day), items, str(day))
    assert events["event_id"].is_unique
    assert summary["impressions"] == len(events) == cfg.n_days * cfg.impressions_per_day
    assert summary["items"] == len(items) == cfg.n_initial_items + cfg.n_days * cfg.new_items_per_day
    assert summary["clicks"] == int(events["click"].sum())


def test_probabilities_and_labels_are_consistent(tiny):
    *_, summary, _, events = tiny
    assert events["conversion"].notna().all()
    assert not ((events["conversion"] == 1) & (events["click"] == 0)).any()
    p_click, p_ctcvr = events["oracle_p_click"], events["oracle_p_conversion"]
    assert p_click.between(0, 1).all() and p_ctcvr.between(0, 1).all()
    assert (p_ctcvr <= p_click).all()  # P(click and buy) <= P(click)
    # Labels are drawn from the oracle: observed rates match the mean probabilities.
    assert abs(events["click"].mean() - p_click.mean()) < 0.02
    assert 0.05 <= summary["ctr"] <= 0.25 and 0.1 <= summary["cvr"] <= 0.4


def test_new_items_are_listed_and_shown_every_day(tiny):
    cfg, _, _, summary, items, events = tiny
    first_seen = items.set_index("item_id")["first_seen"]
    assert (first_seen < pd.Timestamp(cfg.start_date)).sum() == cfg.n_initial_items
    assert first_seen[first_seen < pd.Timestamp(cfg.start_date)].nunique() > 10  # spread before the log starts
    for ds, day in events.groupby("ds"):
        listed_today = first_seen.index[first_seen == pd.Timestamp(ds)]
        assert len(listed_today) == cfg.new_items_per_day
        assert set(listed_today) <= set(day["item_id"])  # every new item is shown on its first day
    assert summary["new_items_per_day"] == cfg.new_items_per_day


def test_items_read_like_products_and_images_resolve(tiny):
    cfg, _, root, _, items, _ = tiny
    assert items["title"].str.split().str.len().min() >= 3
    assert (items["title"].str.split().str[0] == items["brand"]).all()
    assert items["category"].nunique() == cfg.n_categories
    assert set(items["price_bucket"]) <= {"budget", "mid", "premium", "luxury"}
    assert (items["image_ref"] == "images/" + items["item_id"].astype(str) + ".png").all()
    for ref in items["image_ref"].sample(20, random_state=0):
        with Image.open(root / ref) as image:
            assert image.size == (cfg.image_size, cfg.image_size) and image.mode == "RGB"


def test_same_seed_same_data_other_seed_other_data(tiny, tmp_path):
    cfg, seed, _, _, items, events = tiny
    _, items_again, events_again = _generate(tmp_path / "same", cfg, seed, images=False)
    pdt.assert_frame_equal(items.drop(columns="image_ref"), items_again.drop(columns="image_ref"))
    assert items_again["image_ref"].isna().all()  # images off: no reference
    pdt.assert_frame_equal(events, events_again)
    _, items_other, events_other = _generate(tmp_path / "other", cfg, seed + 1, images=False)
    assert not items["title"].equals(items_other["title"])
    assert not events["item_id"].equals(events_other["item_id"])


def test_images_are_deterministic(tiny, tmp_path):
    cfg, seed, root, *_ = tiny
    generate(cfg, seed, tmp_path / "events", tmp_path / "items.parquet", tmp_path / "images")
    for name in ("1.png", f"{cfg.n_initial_items + 1}.png"):
        assert (tmp_path / "images" / name).read_bytes() == (root / "images" / name).read_bytes()


def test_chunked_generation_streams_in_time_order(tmp_path):
    cfg, seed = _cfg(impressions_per_day=2500, partition_rows=1000, n_days=2)
    summary, items, events = _generate(tmp_path, cfg, seed, images=False)
    assert summary["parts_per_day"] == 3
    assert len(list((tmp_path / "events" / f"ds={cfg.start_date}").glob("part-*.parquet"))) == 3
    for ds, day in events.groupby("ds"):
        contract.validate_events(day, items, ds)
        ordered = day.sort_values("event_id")
        assert ordered["ts"].is_monotonic_increasing  # parts cover consecutive time slots


def test_bad_config_is_rejected_with_a_clear_message(tmp_path):
    cfg, seed = _cfg(impressions_per_day=10, new_items_per_day=20)
    with pytest.raises(ValueError, match="impressions_per_day"):
        generate(cfg, seed, tmp_path / "events", tmp_path / "items.parquet", None)
    cfg, seed = _cfg(n_topics=99)
    with pytest.raises(ValueError, match="n_topics"):
        generate(cfg, seed, tmp_path / "events", tmp_path / "items.parquet", None)


def test_community_shows_in_brand_and_palette_not_in_topic(tiny):
    cfg, seed, root, _, items, _ = tiny
    world = build_world(cfg, seed)
    guess = community_predictability(world)
    assert guess["from_brand"] == 1.0
    assert guess["from_topic"] < guess["chance"] + 0.15
    # Images: the palette follows the community: the dominant hue names it (circular distance).
    hues = []
    for item_id in items["item_id"]:
        with Image.open(root / "images" / f"{item_id}.png") as image:
            hsv = np.asarray(image.convert("HSV"), dtype=float)
        saturated = hsv[..., 1] > 100
        hues.append(np.median(hsv[..., 0][saturated]) / 256.0)
    centres = np.arange(cfg.n_communities) / cfg.n_communities
    gap = np.abs(np.asarray(hues)[:, None] - centres[None, :])
    nearest = np.minimum(gap, 1.0 - gap).argmin(axis=1)
    assert (nearest == world.items.community).mean() > 0.9


def test_behavior_only_signal_matters_for_new_items(tiny):
    """Topic-level content (what text shows) is clearly worse than topic + brand community."""
    cfg, seed, _, _, _, events = tiny
    auc = new_item_auc(build_world(cfg, seed), events, eval_days=2)
    assert auc["eval_clicks"] >= 30
    assert auc["user_only"] < auc["text"] < auc["behavior"] <= auc["oracle"] + 0.03
    assert auc["behavior"] - auc["text"] >= 0.03
