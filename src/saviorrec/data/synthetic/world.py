"""The hidden latent world: users, brands and items with their ground-truth traits.

Everything is drawn from named numpy Generator streams derived from the seed, so the world
is identical for the same seed and config whatever else is generated (images on/off,
chunk sizes). Items are indexed in listing order: the items live on day ``d`` are a prefix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from saviorrec.config.model import Synthetic
from saviorrec.data.synthetic.vocabulary import PRICE_BUCKETS, TOPICS

# Stream ids: one independent random stream per purpose (np.random.default_rng([seed, id, ...])).
STREAM_BRANDS, STREAM_ITEMS, STREAM_USERS, STREAM_EVENTS, STREAM_IMAGES, STREAM_TEXT, STREAM_DRIFT = range(1, 8)

INITIAL_LISTING_DAYS = 60   # initial items were listed over the days before start_date
MAX_USER_TOPICS = 3
USER_TOPIC_COUNT_SHARES = (0.35, 0.4, 0.25)   # how many topics a user likes: 1, 2, 3
BRAND_TIER_SHARES = (0.3, 0.35, 0.25, 0.1)    # brand price tiers, budget .. luxury
PRICE_SHIFT_SHARES = (0.15, 0.7, 0.15)        # an item's price bucket vs its brand's tier: -1, 0, +1
CATEGORY_FOLLOWS_TOPIC = 0.92                 # the rest are mis-filed by their sellers


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, *keys])


@dataclass(frozen=True)
class Users:
    community: np.ndarray       # [U] int: the behavior-only taste (which brands' crowd they follow)
    topics: np.ndarray          # [U, 3] int: preferred topics, -1 = none (1 to 3 per user)
    topic_weight: np.ndarray    # [U, 3] float: strength of each preferred topic
    bias: np.ndarray            # [U] float: click propensity
    cvr_bias: np.ndarray        # [U] float: purchase propensity
    activity: np.ndarray        # [U] float: relative share of impressions (lognormal)


@dataclass(frozen=True)
class Brands:
    community: np.ndarray       # [B] int: random brand -> community map (not visible in text)
    tier: np.ndarray            # [B] int: index into PRICE_BUCKETS


@dataclass(frozen=True)
class Items:
    topic: np.ndarray           # [I] int
    brand: np.ndarray           # [I] int
    community: np.ndarray       # [I] int = brands.community[brand]
    category: np.ndarray        # [I] int (mostly the topic's category)
    price: np.ndarray           # [I] int: index into PRICE_BUCKETS
    quality: np.ndarray         # [I] float: hidden per-item click effect (small)
    popularity: np.ndarray      # [I] float: exposure weight of the old-item recommender
    first_day: np.ndarray       # [I] int: listing day relative to start_date (negative = before)

    def __len__(self) -> int:
        return len(self.topic)


@dataclass(frozen=True)
class Trend:
    """A new topic or community (saviorrec.data.synthetic.drift) whose items are all listed from ``start_day`` on."""
    index: int
    start_day: int
    kind: str                   # "topic" | "community"
    key: int                    # the new topic id or community id (beyond the configured ones)
    brands: np.ndarray          # community trend: its new brands' ids (appended to Brands)
    brand_tiers: np.ndarray     # their price tiers
    adopt_day: np.ndarray       # [U] int: the day each user adopts it (int64 max = never)


@dataclass(frozen=True)
class World:
    cfg: Synthetic
    seed: int
    users: Users                # day 0; saviorrec.data.synthetic.drift.Timeline gives later days
    brands: Brands
    items: Items
    category_names: tuple[str, ...]
    trends: tuple[Trend, ...] = ()

    @property
    def start(self) -> dt.date:
        return self.cfg.start_date

    @property
    def n_topics(self) -> int:
        """Configured topics plus the topic trends."""
        return self.cfg.n_topics + sum(t.kind == "topic" for t in self.trends)

    @property
    def n_communities(self) -> int:
        """Configured communities plus the community trends."""
        return self.cfg.n_communities + sum(t.kind == "community" for t in self.trends)

    def live_items(self, day: int) -> int:
        """How many items are listed on or before ``day`` (they are a prefix of the index)."""
        return int(np.searchsorted(self.items.first_day, day, side="right"))


def category_names(n_categories: int, n_topics: int) -> tuple[str, ...]:
    """Category c holds topics t with t % n_categories == c; its name joins their departments."""
    names = []
    for c in range(n_categories):
        members = [TOPICS[t].department for t in range(c, n_topics, n_categories)]
        names.append(" & ".join(members) if members else f"{TOPICS[c % len(TOPICS)].department} Extras")
    return tuple(names)


def _users(cfg: Synthetic, seed: int) -> Users:
    rng = rng_for(seed, STREAM_USERS)
    n, k = cfg.n_users, min(MAX_USER_TOPICS, cfg.n_topics)
    community = rng.integers(0, cfg.n_communities, n)
    order = np.argsort(rng.random((n, cfg.n_topics)), axis=1)[:, :k]
    n_topics = rng.choice(np.arange(1, k + 1), size=n, p=np.array(USER_TOPIC_COUNT_SHARES[:k]) / sum(USER_TOPIC_COUNT_SHARES[:k]))
    keep = np.arange(k)[None, :] < n_topics[:, None]
    topics = np.where(keep, order, -1)
    weight = np.where(keep, rng.uniform(0.6, 1.0, (n, k)), 0.0)
    weight[:, 0] = 1.0
    return Users(
        community=community,
        topics=topics,
        topic_weight=weight,
        bias=rng.normal(0.0, 0.4, n),
        cvr_bias=rng.normal(0.0, 0.3, n),
        activity=rng.lognormal(0.0, 1.0, n),
    )


def _brands(cfg: Synthetic, seed: int) -> Brands:
    rng = rng_for(seed, STREAM_BRANDS)
    n = cfg.n_brands
    # Balanced communities in random order. Brands are marketplace sellers across product
    # families, so an item's topic says nothing about its community.
    community = rng.permutation(np.arange(n) % cfg.n_communities)
    tier = rng.choice(len(PRICE_BUCKETS), size=n, p=BRAND_TIER_SHARES)
    return Brands(community=community, tier=tier)


def _items(cfg: Synthetic, seed: int, brands: Brands) -> Items:
    rng = rng_for(seed, STREAM_ITEMS)
    n_new = cfg.new_items_per_day * cfg.n_days
    n = cfg.n_initial_items + n_new
    first_day = np.concatenate([
        np.sort(rng.integers(-INITIAL_LISTING_DAYS, 0, cfg.n_initial_items)),
        np.repeat(np.arange(cfg.n_days), cfg.new_items_per_day),
    ])
    brand = rng.integers(0, cfg.n_brands, n)
    topic_share = rng.dirichlet(np.full(cfg.n_topics, 8.0))   # some families are bigger
    topic = rng.choice(cfg.n_topics, size=n, p=topic_share)
    community = brands.community[brand]
    # Category follows the topic, with a little catalog noise (sellers mis-file items).
    category = np.where(rng.random(n) < CATEGORY_FOLLOWS_TOPIC, topic % cfg.n_categories, rng.integers(0, cfg.n_categories, n))
    shift = rng.choice([-1, 0, 1], size=n, p=PRICE_SHIFT_SHARES)
    price = np.clip(brands.tier[brand] + shift, 0, len(PRICE_BUCKETS) - 1)
    return Items(
        topic=topic,
        brand=brand,
        community=community,
        category=category,
        price=price,
        quality=rng.normal(0.0, 0.2, n),      # hidden per-item effect: kept small (content can't see it)
        popularity=rng.lognormal(0.0, 1.0, n),
        first_day=first_day,
    )


def build_world(cfg: Synthetic, seed: int) -> World:
    if cfg.n_topics > len(TOPICS):
        raise ValueError(f"synthetic.n_topics: at most {len(TOPICS)} topics have a vocabulary, got {cfg.n_topics}")
    brands = _brands(cfg, seed)
    users = _users(cfg, seed)
    items = _items(cfg, seed, brands)
    trends: tuple[Trend, ...] = ()
    if cfg.drift.trend_every_days:
        from saviorrec.data.synthetic.drift import add_trend_items, plan_trends  # drift builds on this module

        trends = plan_trends(cfg, seed, cfg.n_users)
        brands, items = add_trend_items(cfg, seed, brands, items, trends)
    return World(
        cfg=cfg,
        seed=seed,
        users=users,
        brands=brands,
        items=items,
        category_names=category_names(cfg.n_categories, cfg.n_topics),
        trends=trends,
    )
