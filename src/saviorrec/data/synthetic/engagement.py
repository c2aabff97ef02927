"""The hidden ground truth: who sees what (exposure) and who clicks and buys (engagement).

    logit p_click = base + user.bias + item.quality + price effect
                    + topic_weight * affinity(user topics, item topic)       <- visible in the title
                    + community_weight * [user.community == item.community]  <- behavior only
                    + small per-impression noise
    logit p_buy|click = cvr_base + user.cvr_bias + price effect + community/topic terms

``oracle_p_click`` is p_click and ``oracle_p_conversion`` is p_click * p_buy|click (pCTCVR).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from saviorrec.config.model import Synthetic
from saviorrec.data.synthetic.world import Users, World


@dataclass(frozen=True)
class GroundTruth:
    base: float = -3.5
    topic_weight: float = 1.6          # params: synthetic.topic_weight
    community_weight: float = 2.2      # params: synthetic.community_weight
    impression_noise: float = 0.1
    price_click: tuple[float, ...] = (0.15, 0.0, -0.1, -0.25)     # budget .. luxury
    cvr_base: float = -1.5
    price_cvr: tuple[float, ...] = (0.5, 0.1, -0.3, -0.8)
    cvr_community: float = 0.6
    cvr_topic: float = 0.4

    @classmethod
    def from_config(cls, cfg: Synthetic) -> GroundTruth:
        return cls(topic_weight=cfg.topic_weight, community_weight=cfg.community_weight)


@dataclass(frozen=True)
class ExposureMix:
    """Shares of the day's impressions by how the platform picked the item."""
    fresh: float = 0.18       # items listed today or yesterday, uniformly (cold-start boost)
    targeted: float = 0.2     # an item of one of the user's topics (a content recommender)
    collaborative: float = 0.15  # an item of the user's community (a collaborative-filtering recommender)
    popular: float = 0.35     # older items, by popularity, decaying with age
    explore: float = 0.12     # any live item, uniformly
    fresh_days: int = 2
    age_half_days: float = 30.0

    @classmethod
    def from_config(cls, cfg: Synthetic) -> ExposureMix:
        """``cfg.fresh_share`` for fresh items; the other sources keep their relative sizes."""
        mix = cls()
        scale = (1.0 - cfg.fresh_share) / (1.0 - mix.fresh)
        return replace(
            mix, fresh=cfg.fresh_share, targeted=mix.targeted * scale, collaborative=mix.collaborative * scale,
            popular=mix.popular * scale, explore=mix.explore * scale,
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def topic_affinity(world: World, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    topics, weights = world.users.topics[user], world.users.topic_weight[user]
    return (weights * (topics == world.items.topic[item][:, None])).sum(axis=1)


def community_match(world: World, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    return (world.users.community[user] == world.items.community[item]).astype(np.float64)


def engagement_probabilities(
    world: World, user: np.ndarray, item: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(p_click, p_conversion_given_click) for each (user, item) impression."""
    truth = GroundTruth.from_config(world.cfg)
    users, items = world.users, world.items
    affinity = topic_affinity(world, user, item)
    match = community_match(world, user, item)
    price = items.price[item]
    logit = (
        truth.base + users.bias[user] + items.quality[item] + np.asarray(truth.price_click)[price]
        + truth.topic_weight * affinity + truth.community_weight * match
        + rng.normal(0.0, truth.impression_noise, len(user))
    )
    cvr_logit = (
        truth.cvr_base + users.cvr_bias[user] + np.asarray(truth.price_cvr)[price]
        + truth.cvr_community * match + truth.cvr_topic * affinity
    )
    return _sigmoid(logit), _sigmoid(cvr_logit)


class Exposure:
    """Samples (user, item) impressions for one day; all work is vectorised."""

    def __init__(self, world: World):
        self.world, self.mix = world, ExposureMix.from_config(world.cfg)
        # A drifting world's tastes mix old and new topics at uneven weights: the content
        # recommender then targets a topic in proportion to its weight (else: uniformly).
        self.weighted_targeting = world.cfg.drift.enabled
        self.user_cdf = np.cumsum(world.users.activity) / world.users.activity.sum()
        self.set_users(world.users)
        self.by_topic = _Groups(world.items.topic, world.n_topics)
        self.by_community = _Groups(world.items.community, world.n_communities)
        self.day = None

    def set_users(self, users: Users) -> None:
        """The users' tastes and communities of the day to sample (a drifting world moves them)."""
        self.users = users
        self.n_user_topics = (users.topics >= 0).sum(axis=1)

    def set_day(self, day: int) -> None:
        """Precompute the day's live set, fresh range and popularity distribution."""
        world, items = self.world, self.world.items
        self.day = day
        self.n_live = world.live_items(day)
        self.fresh_lo = int(np.searchsorted(items.first_day, day - self.mix.fresh_days + 1))
        n_old = self.fresh_lo if self.fresh_lo > 0 else self.n_live
        age = day - items.first_day[:n_old]
        weight = items.popularity[:n_old] * np.exp(2.0 * items.quality[:n_old]) / (1.0 + age / self.mix.age_half_days)
        self.pop_cdf = np.cumsum(weight) / weight.sum()
        self.by_topic.set_live(self.n_live)
        self.by_community.set_live(self.n_live)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` impressions of the current day as (user index, item index) arrays."""
        mix, users = self.mix, self.users
        user = np.minimum(np.searchsorted(self.user_cdf, rng.random(n)), len(self.user_cdf) - 1)
        shares = [mix.fresh, mix.targeted, mix.collaborative, mix.popular, mix.explore]
        source = rng.choice(len(shares), size=n, p=np.array(shares) / sum(shares))
        u = rng.random(n)
        item = (u * self.n_live).astype(np.int64)          # explore: any live item

        fresh = source == 0
        item[fresh] = self.fresh_lo + (u[fresh] * (self.n_live - self.fresh_lo)).astype(np.int64)

        targeted = np.flatnonzero(source == 1)
        pick = self._pick_topic(user[targeted], rng.random(len(targeted)))
        item[targeted] = self.by_topic.draw(users.topics[user[targeted], pick], u[targeted], item[targeted])

        collaborative = np.flatnonzero(source == 2)
        item[collaborative] = self.by_community.draw(users.community[user[collaborative]], u[collaborative], item[collaborative])

        popular = source == 3
        item[popular] = np.minimum(np.searchsorted(self.pop_cdf, u[popular]), len(self.pop_cdf) - 1)
        return user, item

    def _pick_topic(self, user: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Which of each user's topics the content recommender targets (``u`` uniform in [0, 1))."""
        if not self.weighted_targeting:
            return (u * self.n_user_topics[user]).astype(np.int64)
        cumulative = np.cumsum(self.users.topic_weight[user], axis=1)
        below = cumulative <= (u * cumulative[:, -1])[:, None]
        return np.minimum(below.sum(axis=1), self.n_user_topics[user] - 1)


class _Groups:
    """Items grouped by a key (topic, community), for uniform draws among a group's live items."""

    def __init__(self, key: np.ndarray, n_keys: int):
        self.members = np.argsort(key, kind="stable")        # grouped, each group in listing order
        self.start = np.searchsorted(key[self.members], np.arange(n_keys))
        self.end = np.searchsorted(key[self.members], np.arange(n_keys), side="right")
        self.live = self.end - self.start

    def set_live(self, n_live: int) -> None:
        self.live = np.array([np.searchsorted(self.members[s:e], n_live) for s, e in zip(self.start, self.end, strict=True)])

    def draw(self, group: np.ndarray, u: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """A uniform live member of each ``group`` (``fallback`` where the group has none yet)."""
        live = self.live[group]
        slot = np.minimum(self.start[group] + (u * np.maximum(live, 1)).astype(np.int64), len(self.members) - 1)
        return np.where(live > 0, self.members[slot], fallback)
