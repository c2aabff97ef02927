"""Preset overlays: ``params/<preset>.yaml`` next to a params file, and the shadowed-edit warning.

An overlay lives in its own file so that DVC stages depend on the active preset's file only
(dvc.yaml ``params: - params/${preset}.yaml:``): editing the tiny overlay leaves the default
pipeline up to date.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = "params"
_MISSING = object()


class ShadowedParamWarning(UserWarning):
    """A base value edited in params.yaml is overridden by the active preset, so the edit has no effect."""


def overlay_file(params_file: Path, preset: str) -> Path:
    return Path(params_file).parent / PRESETS_DIR / f"{preset}.yaml"


def overlay_names(params_file: Path) -> list[str]:
    """The presets whose overlay files lie next to ``params_file``."""
    folder = Path(params_file).parent / PRESETS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def read_overlay(params_file: Path, preset: str) -> dict[str, Any] | None:
    """The overlay of ``preset``, or None when no such file exists."""
    path = overlay_file(params_file, preset)
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}


def _shadowed(overlay: Mapping[str, Any], base: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted keys that the overlay sets and the base values also set (the base value loses)."""
    for key, value in overlay.items():
        if key not in base:
            continue
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base[key], Mapping):
            yield from _shadowed(value, base[key], dotted + ".")
        else:
            yield dotted


def _lookup(raw: Mapping[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def committed_version(params_file: Path) -> dict[str, Any] | None:
    """``params_file`` as of git HEAD; None outside a checkout or when it is not committed."""
    path = Path(params_file)
    try:
        out = subprocess.run(["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        return yaml.safe_load(out.stdout) or {}
    except yaml.YAMLError:
        return None


def warn_shadowed_edits(params_file: Path, base: Mapping[str, Any], overlay: Mapping[str, Any], preset: str,
                        overrides: Mapping[str, Any] | None = None) -> list[str]:
    """Warn about base values edited since the last commit that the active preset overrides.

    Shadowing itself is the point of a preset (the base sizes serve the default pipeline); an
    *edited* shadowed value is most likely meant for this run and silently has no effect, e.g.
    ``dvc exp run -S ranker.epochs=3`` with the tiny preset. Git is asked only when the overlay
    shadows something; outside a checkout nothing is compared. Returns the keys warned about.
    """
    overridden = set(overrides or {})
    candidates = [key for key in _shadowed(overlay, base)
                  if not any(key == o or key.startswith(o + ".") or o.startswith(key + ".") for o in overridden)]
    if not candidates:
        return []
    committed = committed_version(params_file)
    if committed is None:
        return []
    edited = [key for key in candidates if _lookup(base, key) != _lookup(committed, key)]
    for key in edited:
        warnings.warn(
            f"{params_file}: {key} = {_lookup(base, key)!r} was edited (last commit: "
            f"{_describe(_lookup(committed, key))}) but preset {preset!r} sets it to {_lookup(overlay, key)!r}, "
            f"which wins; set it in {PRESETS_DIR}/{preset}.yaml or as a run override (--set {key}=...)",
            ShadowedParamWarning,
            stacklevel=4,
        )
    return edited


def _describe(value: Any) -> str:
    return "not set" if value is _MISSING else repr(value)
