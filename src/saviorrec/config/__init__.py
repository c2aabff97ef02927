"""Validated access to params.yaml: the single source of hyperparameters and thresholds.

    from saviorrec.config import load_params
    params = load_params("params.yaml", overrides={"ranker.lr": 0.01})
    params.ranker.lr

`preset` selects an overlay from `presets:` that is deep-merged over the base values
before validation, so `preset: tiny` shrinks every stage at once.
"""

from saviorrec.config.loader import (
    ParamsError,
    apply_overrides,
    deep_merge,
    load_params,
    parse_set,
    pin_overrides,
    resolve_raw,
)
from saviorrec.config.model import Params

__all__ = ["Params", "ParamsError", "apply_overrides", "deep_merge", "load_params", "parse_set", "pin_overrides", "resolve_raw"]
