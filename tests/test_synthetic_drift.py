"""Drift in the synthetic world (synthetic.drift): off, the data is today's byte for byte; on, tastes,
communities and trends move over the days, deterministically; the drift keys count in the setting."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from saviorrec.config import load_params
from saviorrec.config.model import Drift
from saviorrec.data.synthetic import build_world
from saviorrec.data.synthetic.drift import Timeline
from saviorrec.data.synthetic.vocabulary import TOPICS
from saviorrec.stages import run_stage
from saviorrec.storage.lineage import setting_differences, training_setting
from saviorrec.workspace import Workspace
from tests.conftest import REPO, make_workspace

PARAMS = REPO / "params.yaml"
PRESET_RATES = yaml.safe_load((REPO / "params" / "drift.yaml").read_text())["synthetic"]["drift"]
DRIFT_ON = {f"synthetic.drift.{key}": value for key, value in PRESET_RATES.items()}
THREE_WEEKS = {"synthetic.n_days": 21}

# sha256 of the tiny preset's ingest output, recorded with the generator as it was before drift
# existed: (number of files, digest of their "path:sha256" lines). Fails when the stationary world
# changes; if only pyarrow's or Pillow's encoding changed (same frames, other bytes), re-pin.
TINY_WORLD = {
    "items.parquet": (1, "8c6f7e65196d52b5bc2b5a669bf4bb813ccd6bf5dfa6a09b8592baf3952782c9"),
    "events": (6, "6e2844f7052ae1827bf7b2ffe736f7870c0dceeeb698374013f32aeabe1d72f4"),
    "images": (240, "e2f17469c19d61715f543ecc18edb75610436b7f33df56e692b1b202fb9b81b9"),
}
TINY_SETTING_FINGERPRINT = "e8ef555160e0"  # training_setting of the tiny preset before drift existed


def data_hashes(data: Path) -> dict[str, tuple[int, str]]:
    """{group: (files, digest)} of a data folder: items.parquet, events/, images/."""
    groups: dict[str, list[str]] = {}
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        relative = path.relative_to(data).as_posix()
        groups.setdefault(relative.split("/")[0], []).append(f"{relative}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return {group: (len(lines), hashlib.sha256("".join(lines).encode()).hexdigest()) for group, lines in groups.items()}


class Generated:
    """A workspace after the real ingest stage, with the world and its events (day index added)."""

    def __init__(self, root: Path, overrides: dict):
        make_workspace(root, overrides)
        ws = Workspace.open(root)
        run_stage("ingest", ws)
        self.params, self.data = ws.params, root / ws.params.paths.data
        self.world = build_world(self.params.synthetic, self.params.seed)
        events = pd.read_parquet(self.data / "events")
        start = pd.Timestamp(self.params.synthetic.start_date)
        self.day = (events["ts"].dt.tz_localize(None).dt.normalize() - start).dt.days.to_numpy()
        self.user, self.item = events["user_id"].to_numpy() - 1, events["item_id"].to_numpy() - 1
        self.click = events["click"].to_numpy().astype(bool)
        self.oracle = events["oracle_p_click"].to_numpy()
        self.items = pd.read_parquet(self.data / "items.parquet")

    def oracle_share(self, hit: np.ndarray, days: range) -> float:
        """Share of the true click mass of ``days`` on impressions where ``hit``."""
        mask = np.isin(self.day, list(days))
        return float((self.oracle * hit)[mask].sum() / self.oracle[mask].sum())

    def day0_shares(self) -> dict[str, tuple[float, float]]:
        """(first 3 days, last 3 days) true click mass on each user's day-0 community and first topic."""
        users, items, n = self.world.users, self.world.items, self.params.synthetic.n_days
        hits = {"community": users.community[self.user] == items.community[self.item],
                "first topic": users.topics[self.user, 0] == items.topic[self.item]}
        return {k: (self.oracle_share(h, range(3)), self.oracle_share(h, range(n - 3, n))) for k, h in hits.items()}


@pytest.fixture(scope="module")
def drifting(tmp_path_factory) -> Generated:
    """Three weeks of the tiny world with the drift preset's rates."""
    return Generated(tmp_path_factory.mktemp("drifting"), {**DRIFT_ON, **THREE_WEEKS})


@pytest.fixture(scope="module")
def stationary(tmp_path_factory) -> Generated:
    return Generated(tmp_path_factory.mktemp("stationary"), THREE_WEEKS)


def test_drift_off_reproduces_the_stationary_world_byte_for_byte(tiny_pipeline):
    tiny_pipeline.run("ingest")
    assert tiny_pipeline.params.synthetic.drift == Drift() and not Drift().enabled  # the defaults are off
    hashes = data_hashes(tiny_pipeline.root / tiny_pipeline.params.paths.data)
    assert hashes == TINY_WORLD, f"the tiny world changed with drift off: {hashes}"


def test_the_drift_preset_is_the_default_world_with_drift():
    default, drift = load_params(PARAMS), load_params(PARAMS, {"preset": "drift"})
    assert drift.synthetic.drift == Drift(**PRESET_RATES) and drift.synthetic.drift.enabled
    assert drift.synthetic.model_dump(exclude={"drift"}) == default.synthetic.model_dump(exclude={"drift"})


@pytest.mark.timeout(120)
def test_drift_moves_tastes_and_communities_over_the_weeks(drifting, stationary):
    moved, still = drifting.day0_shares(), stationary.day0_shares()
    for key in ("community", "first topic"):  # measured: 0.73 -> 0.62 and 0.43 -> 0.33 (off: 0.73 -> 0.71, 0.43 -> 0.40)
        drop, still_drop = moved[key][0] - moved[key][1], still[key][0] - still[key][1]
        assert abs(still_drop) < 0.05, f"{key}: {still[key]} with drift off"
        assert drop - still_drop > 0.05, f"{key}: {moved[key]} with drift on vs {still[key]} off"
    timeline = Timeline(drifting.world)
    moved_away = (timeline.users_on(20).community != drifting.world.users.community).mean()
    assert 0.1 < moved_away < 0.5  # ~18% switch at 1% a day, plus a community trend's adopters
    ctr = [drifting.click[np.isin(drifting.day, list(days))].mean() for days in (range(3), range(18, 21))]
    assert abs(ctr[0] - ctr[1]) < 0.03  # tastes move, appetite does not


@pytest.mark.timeout(120)
def test_trends_are_all_new_items_that_find_their_adopters(drifting):
    world = drifting.world
    assert [(t.kind, t.start_day) for t in world.trends] == [("topic", 7), ("community", 14)]
    listed_before = drifting.items.iloc[:world.live_items(6)]
    for trend in world.trends:
        field = world.items.topic if trend.kind == "topic" else world.items.community
        members = np.flatnonzero(field == trend.key)
        assert len(members) > 0 and world.items.first_day[members].min() >= trend.start_day, trend.kind
        rows = drifting.items.iloc[members]
        if trend.kind == "topic":  # titles in words of a product family the catalog never carried
            nouns = TOPICS[trend.key].nouns
            assert rows["title"].map(lambda title, nouns=nouns: any(n in title for n in nouns)).all()
            assert not set(world.items.topic[: world.live_items(trend.start_day - 1)]) & {trend.key}
        else:  # sellers nobody listed before
            assert not set(rows["brand"]) & set(listed_before["brand"])
        shown = np.isin(drifting.item, members)
        adopter = trend.adopt_day[drifting.user] <= drifting.day
        assert drifting.click[shown].sum() > 20
        adopters_ctr, others_ctr = drifting.click[shown & adopter].mean(), drifting.click[shown & ~adopter].mean()
        assert adopters_ctr > 2 * others_ctr, (trend.kind, adopters_ctr, others_ctr)


@pytest.mark.timeout(120)
def test_a_drifting_world_is_deterministic(drifting, tmp_path):
    again = Generated(tmp_path / "again", {**DRIFT_ON, **THREE_WEEKS})
    assert data_hashes(again.data) == data_hashes(drifting.data)
    in_order, timeline = Timeline(drifting.world), Timeline(drifting.world)
    late, early = timeline.users_on(18), timeline.users_on(9)  # an earlier day recomputes from day 0
    for day, users in ((9, early), (18, late)):
        expected = in_order.users_on(day)
        assert np.array_equal(users.community, expected.community) and np.array_equal(users.topic_weight, expected.topic_weight)


def test_drift_keys_are_part_of_the_training_setting():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiny = training_setting(load_params(PARAMS, {"preset": "tiny"}), REPO)
        # Off, the drift keys change nothing, and settings recorded before drift existed still match.
        assert tiny["fingerprint"] == TINY_SETTING_FINGERPRINT
        idle = load_params(PARAMS, {"preset": "tiny", "synthetic.drift.trend_item_share": 0.5})
        assert setting_differences(training_setting(idle, REPO), tiny) == []
        on = load_params(PARAMS, {"preset": "tiny", **DRIFT_ON})
        drifting = training_setting(on, REPO)
        differences = setting_differences(drifting, tiny)
        assert differences and differences[0].startswith("synthetic.drift "), differences
        for key, value in PRESET_RATES.items():  # every key of a drifting world counts
            changed = value + 1 if isinstance(value, int) else value / 2
            other = load_params(PARAMS, {"preset": "tiny", **DRIFT_ON, f"synthetic.drift.{key}": changed})
            assert training_setting(other, REPO)["fingerprint"] != drifting["fingerprint"], key
