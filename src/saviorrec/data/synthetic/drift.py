"""A world that changes over weeks (params ``synthetic.drift``; every mechanism off by default).

Real catalogs are not stationary: people take up hobbies and drop others, move between crowds,
and new product families and new sellers appear and draw a following. Three mechanisms:

- **taste**: each user's topic taste moves ``taste_rate`` of the remaining way per day toward a
  second taste drawn like the first (day d is ``1 - (1 - rate)^d`` of the way there), scaled so
  the strongest topic keeps full weight;
- **community**: each day a ``community_switch`` share of users joins another (base) community,
  the behavior-only crowd that titles do not reveal;
- **trends**: every ``trend_every_days`` days a trend starts, alternately a new topic (a product
  family the catalog never carried, with its own words) and a new community (a cohort of new
  sellers with their own palette). All its items are new: from its first day on,
  ``trend_item_share`` of each day's new listings belong to the live trends (split evenly), and
  ``trend_adopt_share`` of the users adopt it on a day within ``trend_ramp_days`` of its start
  (a topic trend adds the topic to their taste at full weight, a community trend moves them in).

Everything is deterministic from the seed and the world day index (day 0 = start_date): the state
of day d never depends on ``n_days``. Drift draws come from their own streams (STREAM_DRIFT), so a
world without drift consumes exactly the random numbers it always did. Day 0 is the base world.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from saviorrec.config.model import Synthetic
from saviorrec.data.synthetic.vocabulary import PRICE_BUCKETS, TOPICS
from saviorrec.data.synthetic.world import (
    BRAND_TIER_SHARES,
    CATEGORY_FOLLOWS_TOPIC,
    MAX_USER_TOPICS,
    PRICE_SHIFT_SHARES,
    STREAM_DRIFT,
    USER_TOPIC_COUNT_SHARES,
    Brands,
    Items,
    Trend,
    Users,
    World,
    rng_for,
)

# Sub-streams of STREAM_DRIFT: rng_for(seed, STREAM_DRIFT, purpose, day or trend index).
TASTE, COMMUNITY, TREND, TREND_ITEMS = range(1, 5)
NEVER = np.iinfo(np.int64).max   # adoption day of a user who never adopts a trend


def trend_starts(cfg: Synthetic) -> range:
    """The start days of the trends within ``cfg.n_days`` (the first one on day K, never on day 0)."""
    every = cfg.drift.trend_every_days
    return range(every, cfg.n_days, every) if every else range(0)


def plan_trends(cfg: Synthetic, seed: int, n_users: int) -> tuple[Trend, ...]:
    """The trends of the world: kind, new topic or community id, new brands, adoption days."""
    drift, trends = cfg.drift, []
    next_topic, next_community, next_brand = cfg.n_topics, cfg.n_communities, cfg.n_brands
    brands_per_community = max(1, cfg.n_brands // cfg.n_communities)
    for index, start in enumerate(trend_starts(cfg)):
        rng = rng_for(seed, STREAM_DRIFT, TREND, index)
        adopts = rng.random(n_users) < drift.trend_adopt_share
        adopt_day = np.where(adopts, start + rng.integers(0, drift.trend_ramp_days, n_users), NEVER)
        # Alternate topic / community; once the vocabulary has no unused topic, communities only.
        if index % 2 == 0 and next_topic < len(TOPICS):
            trends.append(Trend(index, start, "topic", next_topic, np.zeros(0, np.int64), np.zeros(0, np.int64), adopt_day))
            next_topic += 1
        else:
            brands = np.arange(next_brand, next_brand + brands_per_community)
            tiers = rng.choice(len(PRICE_BUCKETS), size=len(brands), p=BRAND_TIER_SHARES)
            trends.append(Trend(index, start, "community", next_community, brands, tiers, adopt_day))
            next_community += 1
            next_brand += len(brands)
    return tuple(trends)


def add_trend_items(cfg: Synthetic, seed: int, brands: Brands, items: Items,
                    trends: tuple[Trend, ...]) -> tuple[Brands, Items]:
    """Brands with the trends' new sellers appended, items with trend listings from each start on."""
    new_brands = [t for t in trends if t.kind == "community"]
    brands = Brands(
        community=np.concatenate([brands.community, *[np.full(len(t.brands), t.key) for t in new_brands]]),
        tier=np.concatenate([brands.tier, *[t.brand_tiers for t in new_brands]]),
    )
    topic, brand, community = items.topic.copy(), items.brand.copy(), items.community.copy()
    category, price = items.category.copy(), items.price.copy()
    for day in range(trends[0].start_day if trends else cfg.n_days, cfg.n_days):
        live = [t for t in trends if t.start_day <= day]
        listed = np.flatnonzero(items.first_day == day)
        n = len(listed)
        rng = rng_for(seed, STREAM_DRIFT, TREND_ITEMS, day)
        joins = rng.random(n) < cfg.drift.trend_item_share
        which = rng.integers(0, len(live), n)
        seller = rng.random(n)
        misfiled = rng.random(n) >= CATEGORY_FOLLOWS_TOPIC
        other_category = rng.integers(0, cfg.n_categories, n)
        shift = rng.choice([-1, 0, 1], size=n, p=PRICE_SHIFT_SHARES)
        for k, trend in enumerate(live):
            mine = joins & (which == k)
            at = listed[mine]
            if trend.kind == "topic":
                topic[at] = trend.key
                category[at] = np.where(misfiled[mine], other_category[mine], trend.key % cfg.n_categories)
            else:
                brand[at] = trend.brands[(seller[mine] * len(trend.brands)).astype(np.int64)]
                community[at] = trend.key
                price[at] = np.clip(brands.tier[brand[at]] + shift[mine], 0, len(PRICE_BUCKETS) - 1)
    return brands, replace(items, topic=topic, brand=brand, community=community, category=category, price=price)


def _dense_taste(users: Users, n_topics: int) -> np.ndarray:
    """[U, n_topics] topic weights from the (topics, topic_weight) lists."""
    dense = np.zeros((len(users.topics), n_topics))
    rows, cols = np.nonzero(users.topics >= 0)
    dense[rows, users.topics[rows, cols]] = users.topic_weight[rows, cols]
    return dense


def _sparse_taste(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(topics, topic_weight) lists, strongest first, padded with -1 / 0."""
    width = max(1, int((dense > 0).sum(axis=1).max()))
    order = np.argsort(-dense, axis=1, kind="stable")[:, :width]
    weight = np.take_along_axis(dense, order, axis=1)
    return np.where(weight > 0, order, -1), np.where(weight > 0, weight, 0.0)


def _target_taste(cfg: Synthetic, seed: int, n_users: int, n_topics: int) -> np.ndarray:
    """Each user's second taste, drawn like the first (1 to 3 base topics, the first at full weight)."""
    rng = rng_for(seed, STREAM_DRIFT, TASTE)
    k = min(MAX_USER_TOPICS, cfg.n_topics)
    order = np.argsort(rng.random((n_users, cfg.n_topics)), axis=1)[:, :k]
    shares = np.array(USER_TOPIC_COUNT_SHARES[:k]) / sum(USER_TOPIC_COUNT_SHARES[:k])
    count = rng.choice(np.arange(1, k + 1), size=n_users, p=shares)
    weight = np.where(np.arange(k)[None, :] < count[:, None], rng.uniform(0.6, 1.0, (n_users, k)), 0.0)
    weight[:, 0] = 1.0
    target = np.zeros((n_users, n_topics))
    np.put_along_axis(target, order, weight, axis=1)
    return target


class Timeline:
    """The world as it stands on each day: the base world with its users' tastes and communities moved.

    Communities evolve day by day (a switch depends on the day before), so days are computed in
    order and cached; asking for an earlier day starts again from day 0.
    """

    def __init__(self, world: World):
        self.world, self.drift = world, world.cfg.drift
        if not self.drift.enabled:
            return
        n_users = len(world.users.community)
        self._base_taste = _dense_taste(world.users, world.n_topics)
        self._target = _target_taste(world.cfg, world.seed, n_users, world.n_topics) if self.drift.taste_rate > 0 else None
        self._restart()

    def _restart(self) -> None:
        self._day, self._community = 0, self.world.users.community.copy()

    def _advance(self, day: int) -> None:
        """Move the communities from ``day - 1`` to ``day``: random switches, then trend adopters."""
        n_base, community = self.world.cfg.n_communities, self._community
        rng = rng_for(self.world.seed, STREAM_DRIFT, COMMUNITY, day)
        switch = rng.random(len(community)) < self.drift.community_switch
        draw = rng.random(len(community))
        if n_base > 1:
            # a uniform other base community (any base one for members of a trend community)
            in_base = community < n_base
            other = np.where(in_base, (draw * (n_base - 1)).astype(np.int64), (draw * n_base).astype(np.int64))
            other += in_base & (other >= community)
            community[switch] = other[switch]
        for trend in self.world.trends:
            if trend.kind == "community":
                community[trend.adopt_day == day] = trend.key

    def taste_on(self, day: int) -> np.ndarray:
        """[U, n_topics] topic weights of ``day``."""
        taste = self._base_taste
        if self._target is not None:
            taste = taste + (1.0 - (1.0 - self.drift.taste_rate) ** day) * (self._target - taste)
            # The strongest interest stays at full weight, as in every base taste: a user between
            # two tastes likes both somewhat, not everything less.
            taste /= taste.max(axis=1, keepdims=True)
        else:
            taste = taste.copy()
        for trend in self.world.trends:
            if trend.kind == "topic" and trend.start_day <= day:
                adopted = trend.adopt_day <= day
                taste[adopted, trend.key] = 1.0
        return taste

    def users_on(self, day: int) -> Users:
        if not self.drift.enabled:
            return self.world.users
        if day < self._day:
            self._restart()
        while self._day < day:
            self._day += 1
            self._advance(self._day)
        topics, weight = _sparse_taste(self.taste_on(day))
        return replace(self.world.users, community=self._community.copy(), topics=topics, topic_weight=weight)

    def world_on(self, day: int) -> World:
        """The world of ``day`` (the base world itself when nothing drifts)."""
        return replace(self.world, users=self.users_on(day)) if self.drift.enabled else self.world
