"""Validated access to params.yaml: the single source of hyperparameters and thresholds.

    from saviorrec.config import load_params
    params = load_params("params.yaml", overrides={"ranker.lr": 0.01})
    params.ranker.lr

Precedence: the base values of params.yaml < the overlay ``params/<preset>.yaml`` of the
selected `preset` (deep-merged, so `preset: tiny` shrinks every stage at once) < overrides.
`write_workspace_params` writes a workspace's self-contained params.yaml (docs/params.md).
"""

from saviorrec.config.loader import (
    REPO_PARAMS,
    ParamsError,
    apply_overrides,
    available_presets,
    deep_merge,
    dump_resolved_params,
    load_params,
    parse_set,
    resolve_raw,
    write_workspace_params,
)
from saviorrec.config.model import Params
from saviorrec.config.presets import ShadowedParamWarning

__all__ = [
    "REPO_PARAMS",
    "Params",
    "ParamsError",
    "ShadowedParamWarning",
    "apply_overrides",
    "available_presets",
    "deep_merge",
    "load_params",
    "parse_set",
    "resolve_raw",
    "dump_resolved_params",
    "write_workspace_params",
]
