"""Small product pictures whose look follows the item's hidden style.

The palette comes from the item's community (behavior-only: a generic image model sees a
colour, not who buys it) and the pattern from its topic. Rendered in numpy batches, saved
with Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from saviorrec.data.synthetic.world import STREAM_IMAGES, World, rng_for

N_PATTERNS = 6
BATCH = 4096


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) -> RGB uint8, shape [..., 3]."""
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.clip(np.stack([r, g, b], axis=-1) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _masks(topic: np.ndarray, phase: np.ndarray, centre: np.ndarray, size: int) -> np.ndarray:
    """[N, S, S] bool foreground masks: pattern kind and frequency from the topic."""
    grid = (np.arange(size) + 0.5) / size
    y, x = grid[None, :, None], grid[None, None, :]
    kind = (topic % N_PATTERNS)[:, None, None]
    freq = (1 + (topic // N_PATTERNS) % 3)[:, None, None].astype(float)
    ph = phase[:, None, None]
    cx, cy = centre[:, 0, None, None], centre[:, 1, None, None]
    radius = 0.15 + 0.07 * freq
    options = [
        np.sin(2 * np.pi * (freq + 1) * y + ph) > 0,                                  # horizontal stripes
        np.sin(2 * np.pi * (freq + 1) * x + ph) > 0,                                  # vertical stripes
        (np.floor((x + ph / 7) * 2 * freq) + np.floor(y * 2 * freq)) % 2 == 0,        # checker
        (x - cx) ** 2 + (y - cy) ** 2 < radius**2,                                    # disc
        np.sin(2 * np.pi * (freq + 1) * (x + y) / 1.4 + ph) > 0,                      # diagonal stripes
        np.maximum(np.abs(x - cx), np.abs(y - cy)) < radius,                          # square
    ]
    out = np.zeros((len(topic), size, size), dtype=bool)
    for k, mask in enumerate(options):
        out |= (kind == k) & mask
    return out


def community_hue(community: np.ndarray, n_communities: int) -> np.ndarray:
    """Evenly spaced hues for the configured communities; a trend community (id >= n) sits halfway
    between two of them."""
    base = community / n_communities
    return np.where(community < n_communities, base, (community - n_communities + 0.5) / n_communities)


def render(world: World, index: np.ndarray) -> np.ndarray:
    """[N, S, S, 3] uint8 images for the items at ``index``."""
    items, n_comm, size = world.items, world.cfg.n_communities, world.cfg.image_size
    rng = rng_for(world.seed, STREAM_IMAGES, int(index[0]) if len(index) else 0)
    n = len(index)
    hue = (community_hue(items.community[index], n_comm) + rng.normal(0.0, 0.12 / n_comm, n)) % 1.0
    fg = _hsv_to_rgb(hue, rng.uniform(0.65, 0.95, n), rng.uniform(0.6, 0.9, n))
    bg = _hsv_to_rgb((hue + 0.5) % 1.0, rng.uniform(0.1, 0.3, n), rng.uniform(0.85, 1.0, n))
    mask = _masks(items.topic[index], rng.uniform(0, 2 * np.pi, n), rng.uniform(0.3, 0.7, (n, 2)), size)
    image = np.where(mask[..., None], fg[:, None, None, :], bg[:, None, None, :]).astype(np.int16)
    image += rng.integers(-8, 9, image.shape, dtype=np.int16)   # sensor-like noise
    return np.clip(image, 0, 255).astype(np.uint8)


def write_images(world: World, item_ids: np.ndarray, images_dir: Path) -> int:
    """One PNG per item, ``images_dir/<item_id>.png``; item i has id i + 1. Returns the count."""
    images_dir = Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    index = np.asarray(item_ids, dtype=np.int64) - 1
    for start in range(0, len(index), BATCH):
        batch = index[start:start + BATCH]
        for item, pixels in zip((batch + 1).tolist(), render(world, batch), strict=True):
            Image.fromarray(pixels).save(images_dir / f"{item}.png", optimize=False)
    return len(index)
