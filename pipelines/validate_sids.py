"""validate_sids: gate on semantic IDs (coverage, raw collisions, unique final IDs, utilization, churn vs production).

    python -m pipelines.validate_sids [--params params.yaml] [--workdir DIR] [--production-workdir DIR]

The production model comes from the registry (``registry:`` in params) unless
``--production-workdir`` names a bundle folder. Writes reports/gates/validate_sids.json and
the Data Docs (path printed); a failed critical expectation raises StageError.
"""

from __future__ import annotations

from data_checks.production import add_production_argument
from data_checks.sid_gate import validate_sids
from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, production_workdir: str | None = None, **_: object) -> dict:
    return validate_sids(params, ws, production_workdir)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, add_arguments=add_production_argument, argv=argv)


if __name__ == "__main__":
    main()
