"""The item catalog as the marketplace shows it: English titles, descriptions, attributes.

Titles are built from the item's topic vocabulary (what a generic text encoder sees) and its
brand's invented name (whose meaning only behavior reveals).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from saviorrec.data.synthetic.vocabulary import (
    BRAND_HEADS,
    BRAND_MIDDLES,
    BRAND_TAILS,
    DESCRIPTION_TEMPLATES,
    PRICE_BUCKETS,
    TOPICS,
)
from saviorrec.data.synthetic.world import STREAM_BRANDS, STREAM_TEXT, World, rng_for

TITLE_SUFFIXES = ("", "", "", "", "", "", " Pro", " Mini", " XL", ", 2-pack", " - 2nd gen", " Classic")


def brand_names(n_brands: int, seed: int, n_new: int = 0) -> list[str]:
    """``n_brands`` distinct invented names (head + middle + tail syllables), then ``n_new`` more
    (the sellers of community trends) drawn from the names not taken, on a stream of their own."""
    space = len(BRAND_HEADS) * len(BRAND_MIDDLES) * len(BRAND_TAILS)
    if n_brands + n_new > space:
        raise ValueError(f"synthetic.n_brands: at most {space} distinct brand names, got {n_brands} (+{n_new} from trends)")
    codes = rng_for(seed, STREAM_BRANDS, 1).choice(space, size=n_brands, replace=False)
    if n_new:
        free = np.setdiff1d(np.arange(space), codes)
        codes = np.concatenate([codes, rng_for(seed, STREAM_BRANDS, 2).choice(free, size=n_new, replace=False)])
    heads, rest = np.divmod(codes, len(BRAND_MIDDLES) * len(BRAND_TAILS))
    middles, tails = np.divmod(rest, len(BRAND_TAILS))
    return [BRAND_HEADS[h] + BRAND_MIDDLES[m] + BRAND_TAILS[t] for h, m, t in zip(heads, middles, tails, strict=True)]


def _article(word: str) -> str:
    return "An" if word[0].lower() in "aeiou" else "A"


def _pick(table: list[tuple[str, ...]], topic: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One word per item from its topic's list ``table[topic]``."""
    sizes = np.array([len(words) for words in table])
    idx = (rng.random(len(topic)) * sizes[topic]).astype(np.int64)
    return [table[t][i] for t, i in zip(topic.tolist(), idx.tolist(), strict=True)]


def build_items(world: World, images: bool) -> pd.DataFrame:
    """The catalog frame (data contract), ordered by listing day; item_id = index + 1."""
    items = world.items
    rng = rng_for(world.seed, STREAM_TEXT)
    topic = items.topic
    nouns = _pick([t.nouns for t in TOPICS], topic, rng)
    adjectives = _pick([t.adjectives for t in TOPICS], topic, rng)
    materials = _pick([t.materials for t in TOPICS], topic, rng)
    uses = _pick([t.uses for t in TOPICS], topic, rng)
    with_material = rng.random(len(items)) < 0.5
    suffix = rng.integers(0, len(TITLE_SUFFIXES), len(items))
    template = rng.integers(0, len(DESCRIPTION_TEMPLATES), len(items))
    n_new_brands = len(world.brands.tier) - world.cfg.n_brands
    brands = np.array(brand_names(world.cfg.n_brands, world.seed, n_new_brands), dtype=object)[items.brand]

    titles = [
        f"{b} {a} {m + ' ' if w else ''}{n}{TITLE_SUFFIXES[s]}"
        for b, a, m, w, n, s in zip(brands, adjectives, materials, with_material.tolist(), nouns, suffix.tolist(), strict=True)
    ]
    descriptions = [
        DESCRIPTION_TEMPLATES[k].format(Adj=a[0].upper() + a[1:], A_adj=_article(a) + " " + a, adj=a, noun=n, material=m, use=u)
        for k, a, n, m, u in zip(template.tolist(), adjectives, nouns, materials, uses, strict=True)
    ]
    item_id = np.arange(1, len(items) + 1, dtype=np.int64)
    first_seen = pd.Timestamp(world.start) + pd.to_timedelta(items.first_day, unit="D")
    frame = pd.DataFrame({
        "item_id": item_id,
        "title": pd.array(titles, dtype="str"),
        "description": pd.array(descriptions, dtype="str"),
        "category": pd.array(np.array(world.category_names, dtype=object)[items.category], dtype="str"),
        "brand": pd.array(brands, dtype="str"),
        "price_bucket": pd.array(np.array(PRICE_BUCKETS, dtype=object)[items.price], dtype="str"),
        "image_ref": pd.array([f"images/{i}.png" for i in item_id.tolist()] if images else [None] * len(items), dtype="str"),
        "first_seen": pd.DatetimeIndex(first_seen).astype("datetime64[ns]"),
    })
    return frame

