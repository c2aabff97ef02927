"""Write the simulated marketplace: catalog, PNGs, and the behavior log day by day.

Memory is bounded by ``cfg.partition_rows``: each day is generated and written in chunks
that cover consecutive time slots of the day, so part files are in time order.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from saviorrec.config.model import Synthetic
from saviorrec.data import io
from saviorrec.data.synthetic.catalog import build_items
from saviorrec.data.synthetic.drift import Timeline
from saviorrec.data.synthetic.engagement import Exposure, engagement_probabilities
from saviorrec.data.synthetic.images import write_images
from saviorrec.data.synthetic.world import STREAM_EVENTS, World, build_world, rng_for

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 10**9


def chunk_sizes(total: int, max_rows: int) -> list[int]:
    """Split ``total`` rows into near-equal chunks of at most ``max_rows``."""
    k = max(1, math.ceil(total / max_rows))
    return [total // k + (1 if i < total % k else 0) for i in range(k)]


def simulate_chunk(world: World, exposure: Exposure, day: int, part: int, n_parts: int, n: int, first_event_id: int) -> pd.DataFrame:
    """``n`` impressions of ``day`` in the ``part``-th time slot, as a data-contract frame."""
    rng = rng_for(world.seed, STREAM_EVENTS, day, part)
    user, item = exposure.sample(n, rng)
    if part == 0:
        # Every item listed today is shown at least once today (random users, random times).
        new = np.flatnonzero(world.items.first_day == day)[:n]
        item[: len(new)] = new
    p_click, p_buy = engagement_probabilities(world, user, item, rng)
    click = rng.random(n) < p_click
    conversion = click & (rng.random(n) < p_buy)

    day_start = pd.Timestamp(world.start + dt.timedelta(days=day), tz="UTC").value
    slot = NS_PER_DAY // n_parts
    offset = (rng.random(n) * slot).astype(np.int64) + part * slot
    order = np.argsort(offset, kind="stable")
    return pd.DataFrame({
        "event_id": np.arange(first_event_id, first_event_id + n, dtype=np.int64),
        "ts": pd.DatetimeIndex((day_start + offset[order]).astype("datetime64[ns]")).tz_localize("UTC"),
        "user_id": (user[order] + 1).astype(np.int64),
        "item_id": (item[order] + 1).astype(np.int64),
        "click": click[order].astype(np.int8),
        "conversion": pd.array(conversion[order].astype(np.int8), dtype="Int8"),
        "oracle_p_click": p_click[order].astype(np.float64),
        "oracle_p_conversion": (p_click * p_buy)[order].astype(np.float64),
    })


def generate(
    cfg: Synthetic,
    seed: int,
    events_root: Path | str,
    items_path: Path | str,
    images_dir: Path | None,
) -> dict:
    """Generate ``cfg.n_days`` of impressions, the item catalog and (optionally) item images.

    Deterministic: the same ``seed`` and ``cfg`` give byte-identical frames.
    Returns a summary (days, impressions, items, clicks, conversions, ctr, cvr, ...).
    """
    started = time.perf_counter()
    if cfg.impressions_per_day < cfg.new_items_per_day:
        raise ValueError(
            f"synthetic.impressions_per_day ({cfg.impressions_per_day}) must be at least "
            f"synthetic.new_items_per_day ({cfg.new_items_per_day}): every new item is shown on its first day"
        )
    world = build_world(cfg, seed)
    items = build_items(world, images=cfg.images and images_dir is not None)
    io.write_items(items, items_path)
    n_images = write_images(world, items["item_id"].to_numpy(), Path(images_dir)) if cfg.images and images_dir is not None else 0

    exposure = Exposure(world)
    timeline = Timeline(world)   # the base world every day unless synthetic.drift is on
    sizes = chunk_sizes(cfg.impressions_per_day, cfg.partition_rows)
    next_event_id = 1
    clicks = conversions = impressions = 0
    new_shown: list[int] = []
    for day in range(cfg.n_days):
        today = timeline.world_on(day)
        exposure.set_users(today.users)
        exposure.set_day(day)
        shown_new: list[np.ndarray] = []
        ds = (world.start + dt.timedelta(days=day)).isoformat()
        for part, n in enumerate(sizes):
            events = simulate_chunk(today, exposure, day, part, len(sizes), n, next_event_id)
            io.write_event_day(events, events_root, ds, part=part)
            next_event_id += n
            impressions += n
            clicks += int(events["click"].sum())
            conversions += int(events["conversion"].sum())
            item_id = events["item_id"].to_numpy()
            shown_new.append(item_id[world.items.first_day[item_id - 1] == day])
        new_shown.append(len(np.unique(np.concatenate(shown_new))))
        log.info("synthetic day %s: %d impressions", ds, cfg.impressions_per_day)

    return {
        "source": "synthetic",
        "seed": seed,
        "days": cfg.n_days,
        "first_day": cfg.start_date.isoformat(),
        "last_day": (cfg.start_date + dt.timedelta(days=cfg.n_days - 1)).isoformat(),
        "users": cfg.n_users,
        "items": len(items),
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "ctr": clicks / impressions,
        "cvr": conversions / max(clicks, 1),
        "new_items_per_day": min(new_shown),
        "images": n_images,
        "parts_per_day": len(sizes),
        **({"trends": [f"{t.kind} {t.key} from day {t.start_day}" for t in world.trends]} if world.trends else {}),
        "seconds": round(time.perf_counter() - started, 3),
    }
