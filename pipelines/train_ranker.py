"""Train the CTR/CTCVR ranker (``ranker.variant``) on days before ``split.train_end``.

Writes ``paths.ranker`` (checkpoint + config.json + ID vocabulary) and the training curve
``plots/ranker_training.csv`` (the mean loss every few optimizer steps: step, epoch, loss).
With ``ranker.warm_start: true`` it continues from the previous ranker (``--previous DIR``,
default: the workspace's own ``paths.ranker``) on the new days only. ``--ckpt-path last`` (what
a retry passes) resumes an interrupted fit from its last epoch checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines._common import add_ckpt_path_argument, stage_main
from saviorrec.config import Params
from saviorrec.models.ranker_training import train_ranker
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, previous: str | Path | None = None,
        ckpt_path: str | Path | None = None, **_: object) -> dict:
    summary = train_ranker(params, ws, previous_dir=Path(previous) if previous else None, ckpt_path=ckpt_path)
    curve = summary.pop("curve", None)
    if curve:
        plots = ws.path("plots")
        plots.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(curve).to_csv(plots / "ranker_training.csv", index=False)
        summary["final_loss"] = summary["epoch_losses"][-1]  # the last epoch's mean loss
    return summary


def _arguments(parser) -> None:
    parser.add_argument("--previous", default=None, help="previous ranker directory to warm-start from")
    add_ckpt_path_argument(parser)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, add_arguments=_arguments, argv=argv)


if __name__ == "__main__":
    main()
