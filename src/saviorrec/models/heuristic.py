"""The non-neural reference ranker (variant ``heuristic``).

pCTR = the user's smoothed click rate on the candidate's category, whose prior is the user's
running click rate times the category's relative attractiveness (all online counters over
the strict past, prior strength ``ranker.heuristic_prior_strength``); see
:func:`saviorrec.data.samples.smoothed_rates`. pCTCVR = pCTR * the historical
conversion-per-click rate (a constant: it ranks like pCTR).
"""

from __future__ import annotations

import numpy as np

from saviorrec.data.samples import DaySamples, smoothed_rates


def heuristic_ctr(samples: DaySamples, prior_strength: float) -> np.ndarray:
    return np.clip(smoothed_rates(samples.counts, prior_strength)["heuristic"], 1e-6, 1 - 1e-6)
