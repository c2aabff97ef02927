"""Which model is in production: an explicit bundle folder, or the registry's production pointer."""

from __future__ import annotations

import logging

from saviorrec.config import Params
from saviorrec.storage.registry import open_registry
from saviorrec.workspace import Workspace

log = logging.getLogger("saviorrec.checks")


def production_workspace(params: Params, ws: Workspace,
                         workdir: str | None = None) -> tuple[Workspace | None, str | None]:
    """(Workspace of the production bundle or None, a note explaining a None)."""
    if workdir:
        return Workspace.open(workdir), None
    try:
        prod = open_registry(params, root=ws.root).production_workspace()
    except Exception as err:  # noqa: BLE001 - an unreachable registry must not hide the other checks
        return None, f"the registry could not be read: {err}"
    return prod, (None if prod is not None else "no production model in the registry yet")


def add_production_argument(parser) -> None:
    """``--production-workdir``: the gates' way to compare with a bundle folder instead of the registry."""
    parser.add_argument("--production-workdir", default=None,
                        help="compare with this bundle folder instead of the registry's production model")
