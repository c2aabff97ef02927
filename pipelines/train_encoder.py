"""Train SaviorEnc (behavior-aware multimodal item encoder) on co-click pairs; write z per item.

Reads clicks before train_end (nothing later), the item catalog and pictures. Writes the
plain MiniLM text features, the encoder (model.pt + config.json), z for every catalog item,
the pairs it trained on with its holdout (``paths.pairs``) and metrics/encoder.json (pair
counts, hit@k of z vs plain MiniLM on held-out pairs, loss).

A warm start (previous encoder, same architecture) trains warm_start_epochs at warm_start_lr and,
with encoder.anchor_weight > 0, keeps every item's z near the previous encoder's z (stable SIDs).
``--ckpt-path`` resumes an interrupted fit from its last epoch checkpoint (``last``: the
``<encoder>/checkpoints/last.ckpt`` Lightning keeps; Airflow retries pass it).
"""

from __future__ import annotations

from pathlib import Path

from pipelines._common import add_ckpt_path_argument, stage_main
from saviorrec.config import Params
from saviorrec.models.encoder_training import train_encoder
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, ckpt_path: str | Path | None = None, **_: object) -> dict:
    return train_encoder(params, ws, ckpt_path=ckpt_path)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, add_arguments=add_ckpt_path_argument, argv=argv)


if __name__ == "__main__":
    main()
