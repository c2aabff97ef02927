"""Read params.yaml, apply the preset overlay and dotted overrides, validate."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from saviorrec.config.errors import describe_validation_error
from saviorrec.config.model import Params


class ParamsError(ValueError):
    """params.yaml (or an override) is invalid; the message names the key."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Set dotted keys (``{"ranker.lr": 0.01}``); unknown sections are caught by validation."""
    result = copy.deepcopy(dict(raw))
    for dotted, value in (overrides or {}).items():
        node = result
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[leaf] = value
    return result


def pin_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Write overrides into a params file's raw dict so that loading it gives them back.

    The preset overlay is merged over the base values on load, so an override goes into the
    base values AND into the selected preset's overlay (``preset`` itself only at the top).
    Used to materialise a workspace's params.yaml (tests, benches, Airflow run folders).
    """
    pinned = apply_overrides(raw, overrides)
    preset = pinned.get("preset", "default")
    overlay = {k: v for k, v in (overrides or {}).items() if k != "preset"}
    presets = pinned.setdefault("presets", {})
    presets[preset] = apply_overrides(presets.get(preset) or {}, overlay)
    return pinned


def resolve_raw(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Base values + preset overlay + overrides, as a plain dict (before validation).

    Overrides are applied twice: first so that an overridden ``preset`` picks its overlay,
    then again on top so an explicit override wins over the preset's value.
    """
    with_overrides = apply_overrides(raw, overrides)
    preset = with_overrides.get("preset", "default")
    presets = with_overrides.get("presets") or {}
    if preset not in presets:
        raise ParamsError(f"preset: unknown preset {preset!r}; choose one of {sorted(presets)}")
    merged = deep_merge(with_overrides, presets[preset] or {})
    return apply_overrides(merged, overrides)


def parse_set(values: list[str]) -> dict[str, Any]:
    """``["ranker.lr=0.01"]`` (the ``--set`` flags) -> {"ranker.lr": 0.01}, values parsed as YAML scalars."""
    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(raw)
    return overrides


def load_params(path: str | Path = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Params:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        return Params.model_validate(resolve_raw(raw, overrides))
    except ValidationError as err:
        raise ParamsError(f"invalid params in {path}: {describe_validation_error(err)}") from None
