"""Read params: base values < preset overlay < dotted overrides, validated; write resolved copies.

A params file is either
- layered (the repository's params.yaml): ``preset`` picks ``params/<preset>.yaml`` next to it,
  deep-merged over the base values;
- resolved (a workspace's params.yaml: tests, Airflow run folders, benches, registry bundles):
  marked ``preset_applied: true``, every value final, so it needs no overlay file to load.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from saviorrec.atomic_files import write_text_atomic
from saviorrec.config.errors import describe_validation_error
from saviorrec.config.model import Params
from saviorrec.config.presets import overlay_names, read_overlay, warn_shadowed_edits
from saviorrec.config.repository import repository_root

# the checkout in use when the process started ($SAVIORREC_REPO, the cwd's checkout, else the installed one)
REPO_PARAMS = repository_root() / "params.yaml"
PARAMS_FILE = "params.yaml"
RESOLVED = "preset_applied"  # top-level mark of a resolved file
INLINE_PRESETS = "presets"  # files written before the overlays moved to params/ carry them inline


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


def parse_set(values: list[str]) -> dict[str, Any]:
    """``["ranker.lr=0.01"]`` (the ``--set`` flags) -> {"ranker.lr": 0.01}, values parsed as YAML scalars."""
    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(raw)
    return overrides


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    return yaml.safe_load(path.read_text()) or {}


def available_presets(path: str | Path = "params.yaml") -> list[str]:
    """The presets a params file can run with: its overlays (a resolved file: its own preset only)."""
    path = Path(path)
    raw = _read(path)
    if raw.get(RESOLVED):
        return [raw.get("preset", "default")]
    if INLINE_PRESETS in raw:
        return sorted(raw[INLINE_PRESETS] or {})
    return overlay_names(path)


def _overlay(path: Path, raw: Mapping[str, Any], preset: str) -> dict[str, Any]:
    inline = raw.get(INLINE_PRESETS)
    if inline is not None:
        overlay = (inline[preset] or {}) if preset in inline else None
    else:
        overlay = read_overlay(path, preset)
    if overlay is None:
        raise ParamsError(f"preset: unknown preset {preset!r}; choose one of {available_presets(path)}")
    return overlay


def resolve_raw(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The params of ``path`` with its preset overlay and ``overrides`` applied, before validation."""
    path = Path(path)
    raw = _read(path)
    if raw.pop(RESOLVED, False):
        resolved = apply_overrides(raw, overrides)
        if resolved.get("preset") != raw.get("preset"):
            raise ParamsError(f"preset: {path} is resolved for preset {raw.get('preset')!r}; "
                              "write a new workspace params file to change the preset")
        return resolved
    # Overrides are applied twice: first so that an overridden ``preset`` picks its overlay,
    # then again on top so an explicit override wins over the preset's value.
    with_overrides = apply_overrides(raw, overrides)
    preset = with_overrides.get("preset", "default")
    overlay = _overlay(path, raw, preset)
    if INLINE_PRESETS not in raw:
        warn_shadowed_edits(path, raw, overlay, preset, overrides)
    merged = deep_merge(with_overrides, overlay)
    merged.pop(INLINE_PRESETS, None)
    return apply_overrides(merged, overrides)


def load_params(path: str | Path = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Params:
    path = Path(path)
    resolved = resolve_raw(path, overrides)
    try:
        return Params.model_validate(resolved)
    except ValidationError as err:
        raise ParamsError(f"invalid params in {path}: {describe_validation_error(err)}") from None


def dump_resolved_params(params: Params, note: str) -> str:
    """A self-contained params file of ``params`` (``note`` becomes its header comment)."""
    values = params.model_dump(mode="json")
    header = "".join(f"# {line}\n" for line in note.splitlines())
    return header + yaml.safe_dump({"preset": values.pop("preset"), RESOLVED: True, **values}, sort_keys=False)


def write_workspace_params(folder: str | Path, overrides: Mapping[str, Any] | None = None,
                           base: str | Path = REPO_PARAMS) -> Path:
    """Write ``folder/params.yaml``: ``base`` < its preset overlay < ``overrides``, resolved.

    ``overrides`` may pick another ``preset`` (of a layered base). The file loads without the
    repository's overlay files; loading it with more overrides puts them on top. ``base`` may be
    the file itself (adding overrides to a workspace).
    """
    params = load_params(base, overrides)
    note = (f"Resolved params (preset {params.preset!r} and run overrides applied): self-contained,\n"
            "loading it reads no preset overlay. See docs/params.md.")
    return write_text_atomic(Path(folder) / PARAMS_FILE, dump_resolved_params(params, note))
