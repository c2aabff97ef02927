"""validate_logs: Great Expectations gate on the behavior log (every day partition) and the item catalog.

    python -m pipelines.validate_logs [--params params.yaml] [--workdir DIR]

Writes reports/gates/validate_logs.json and the Data Docs (path printed); a failed critical
expectation raises StageError naming it and its observed value, so promotion never happens.
"""

from __future__ import annotations

from data_checks.log_gate import validate_logs
from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, **_: object) -> dict:
    return validate_logs(params, ws)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, argv=argv)


if __name__ == "__main__":
    main()
