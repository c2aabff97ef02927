"""Ingest: write the behavior log (day partitions) and the item catalog into the workspace.

    python -m pipelines.ingest [--source synthetic|movielens|parquet] [--path DIR] [--out DIR]

Sources (defaults from params.yaml `data:`): the embedded synthetic marketplace
(`synthetic:` preset), a MovieLens CSV folder, or a Parquet folder already in the data
contract (`events/ds=*/...` + `items.parquet`, local or s3://). Every day is checked
against the contract; output is written to a temporary folder and swapped in at the end,
so a failed ingest leaves the previous data intact.
"""

from __future__ import annotations

import argparse

from pipelines._common import stage_main
from saviorrec.config import Params
from saviorrec.data.ingest import ingest
from saviorrec.workspace import Workspace


def run(params: Params, ws: Workspace, source: str | None = None, path: str | None = None,
        out: str | None = None, **_: object) -> dict:
    return ingest(params, ws, source=source, path=path, out=out)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=["synthetic", "movielens", "parquet"], default=None,
                        help="data source (default: params data.source)")
    parser.add_argument("--path", default=None, help="source folder for movielens / parquet (default: params data.path)")
    parser.add_argument("--out", default=None, help="output data folder (default: params paths)")


def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, _arguments, argv)


if __name__ == "__main__":
    main()
