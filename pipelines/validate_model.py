"""validate_model: gate the candidate ranker against the production model on the same evaluation window.

    python -m pipelines.validate_model [--params params.yaml] [--workdir DIR] [--production-workdir DIR]

Checks predictions (present for every evaluation event, no NaN, inside [0, 1]), calibration
(mean pCTR vs observed CTR) and, when a production model exists (registry, or
``--production-workdir``), that overall and new-item CTR AUC are not worse than production's
on the same events by more than the tolerances, and that new-item CTR AUC is not below the
plain-content baseline's (``paths.baseline_predictions``, written by the baseline stage) by more
than ``checks.model.baseline_new_auc_tolerance``. With no production model the comparison is
skipped and recorded as a warning. A production model trained on another setting (data source,
preset, world) is not compared: ``same_setting`` fails, naming what differs. Writes
reports/gates/validate_model.json and Data Docs.
"""

from __future__ import annotations

from data_checks.model_gate import validate_model
from data_checks.production import add_production_argument
from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, production_workdir: str | None = None, **_: object) -> dict:
    return validate_model(params, ws, production_workdir)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, add_arguments=add_production_argument, argv=argv)


if __name__ == "__main__":
    main()
