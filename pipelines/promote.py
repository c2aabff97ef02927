"""Publish the model bundle to the registry and move the production pointer (after every gate).

Refuses unless validate_logs, validate_sids and validate_model each wrote a gate file with
``passed: true``. Then ``registry.promote`` decides: ``always`` moves production to the new
version, ``never`` only publishes it, ``first`` (default) moves production only while there is
none, so ``dvc exp run`` does not replace it (``-S registry.promote=always`` does). Production
never moves onto a model of another setting (data source, preset, world). When it stays, the
stage prints how to promote the version. Writes a small receipt (reports/promotion.json) for DVC.
"""

from __future__ import annotations

from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.storage.promotion import promote
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, **_: object) -> dict:
    return promote(params, ws)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, argv=argv)


if __name__ == "__main__":
    main()
