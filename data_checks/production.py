"""Which model is in production: an explicit bundle folder, or the registry's production pointer."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("saviorrec.checks")


def production_workspace(params, ws, workdir: str | None = None):
    """(Workspace of the production bundle or None, a note explaining a None)."""
    from pipelines._common import Workspace
    from saviorrec.config import load_params

    if workdir:
        root = Path(workdir).resolve()
        return Workspace(root, load_params(root / "params.yaml")), None
    try:
        from saviorrec.storage.registry import open_registry
    except ImportError as err:  # registry not installed in this checkout
        return None, f"no model registry available ({err})"
    try:
        prod = open_registry(params, root=ws.root).production_workspace()
    except Exception as err:  # noqa: BLE001 - an unreachable registry must not hide the other checks
        return None, f"the registry could not be read: {err}"
    return prod, (None if prod is not None else "no production model in the registry yet")


def add_production_argument(parser) -> None:
    """``--production-workdir``: the gates' way to compare with a bundle folder instead of the registry."""
    parser.add_argument("--production-workdir", default=None,
                        help="compare with this bundle folder instead of the registry's production model")
