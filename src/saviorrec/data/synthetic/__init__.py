"""The embedded default data: a simulated marketplace, deterministic from a seed.

``generate(cfg, seed, events_root, items_path, images_dir)`` writes the behavior log (day
partitions), the item catalog and one small PNG per item. Modules, one job each:
``vocabulary`` (words), ``world`` (hidden latents), ``catalog`` (titles, attributes),
``images`` (pictures), ``engagement`` (exposure and the true click/buy model),
``drift`` (tastes, communities and trends that move over weeks; off by default),
``generate`` (streaming writer), ``diagnostics`` (does the world reward behavior-aware content?).
"""

from saviorrec.data.synthetic.generate import generate
from saviorrec.data.synthetic.world import World, build_world

__all__ = ["generate", "build_world", "World"]
