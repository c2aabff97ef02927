"""Build the RQ-VAE codebooks and the semantic ID of every catalog item.

Reads z (behavior-aware embeddings), the plain MiniLM text features, the behavior pairs and
holdout train_encoder wrote (``paths.pairs``), the encoder metrics (hit@30) and the previous
codebook (warm start unless codebook.full_rebuild). Writes codebook/ (behavior model, generic/
model, SID snapshots for churn), sids, sids_generic and metrics/codebook.json.
``--ckpt-path`` resumes an interrupted build (``last``: each space, behavior and generic, from
its own ``<codebook>/checkpoints/<space>/last.ckpt``; Airflow retries pass it).
"""

from __future__ import annotations

from pathlib import Path

from pipelines._common import add_ckpt_path_argument, stage_main
from saviorrec.config import Params
from saviorrec.models.codebook_training import build_codebook
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, ckpt_path: str | Path | None = None, **_: object) -> dict:
    return build_codebook(params, ws, ckpt_path=ckpt_path)


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, add_arguments=add_ckpt_path_argument, argv=argv)


if __name__ == "__main__":
    main()
