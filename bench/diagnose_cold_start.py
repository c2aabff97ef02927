"""Why z can rank new items worse than plain content: hit@30 per epoch and correction scale.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    # a MovieLens workspace (train < 2012, evaluate 2012-2014) whose ingest and train_encoder ran, e.g.
    .venv/bin/python bench/compare_variants.py --source movielens --path ../shared/data/movielens-small-dev \
        --train-end 2012-01-01 --eval-end 2015-01-01 --seeds 1 --variants id_only --workdir /tmp/sr/ml
    .venv/bin/python bench/diagnose_cold_start.py --workspace /tmp/sr/ml/seed_20250801
    .venv/bin/python bench/diagnose_cold_start.py --workspace /tmp/sr/ml/seed_20250801 --random-cold
    .venv/bin/python bench/diagnose_cold_start.py --workspace /tmp/sr/ml/seed_20250801 --plain   # the paper's z

Trains the workspace's encoder again in this process, as train_encoder does (the same library
calls for pairs, cold items, budget and seed), without choosing: after every epoch it prints hit@30 of z at each
correction scale on the four pair sets of reports/details/encoder.json (warm, cold, future, future_new),
beside plain MiniLM and its principal-axes projection (the content part of z). Nothing in the
workspace is written. ``--random-cold`` holds out a seeded random share of items instead of the
newest listings, to compare the two as a guide for choosing the scale; ``--plain`` trains the
paper's z (the fusion network alone, ``encoder.content_residual: false``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from saviorrec.data import io  # noqa: E402
from saviorrec.data.contract import EVENT_COLUMNS  # noqa: E402
from saviorrec.data.pairs import (  # noqa: E402
    encoder_pair_splits,
    listed_before,
    mine_pairs,
    split_by_items,
    split_holdout,
)
from saviorrec.data.vectors import vectors_array  # noqa: E402
from saviorrec.metrics.retrieval import retrieval_report  # noqa: E402
from saviorrec.metrics.retrieval_sets import retrieval_sets  # noqa: E402
from saviorrec.models.encoder import ItemEncoder, encoder_config  # noqa: E402
from saviorrec.models.encoder_module import fit_encoder  # noqa: E402
from saviorrec.models.encoder_selection import ColdSelection  # noqa: E402
from saviorrec.models.encoder_training import pairs_per_epoch  # noqa: E402
from saviorrec.workspace import Workspace  # noqa: E402

SETS = ("warm", "cold", "future", "future_new")


def row(name: str, report: dict) -> str:
    return f"{name:24s}" + "".join(f"{report[s]['hit']:>12.4f}" if report[s]["hit"] is not None else f"{'-':>12s}"
                                    for s in SETS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--random-cold", action="store_true", help="hold out a seeded random share of items")
    parser.add_argument("--plain", action="store_true", help="the paper's z (no content residual)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {"encoder.content_residual": False} if args.plain else {}
    ws = Workspace.open(args.workspace, overrides)
    params, cfg = ws.params, ws.params.encoder
    train_end, _ = ws.split()
    items = io.read_items(ws.path("items")).sort_values("item_id", kind="stable").reset_index(drop=True)
    ids = items["item_id"].to_numpy()
    text_ids, text = vectors_array(io.read_parquet(ws.path("text_features")))
    if not np.array_equal(text_ids, ids):
        sys.exit(f"{ws.path('text_features')} does not cover the catalog: run train_encoder in {ws.root} first")

    events = io.read_events(ws.path("events"), end=train_end, columns=EVENT_COLUMNS)
    pairs = mine_pairs(events, params.pairs, train_end)
    splits = encoder_pair_splits(pairs, items, train_end, params.pairs.holdout_fraction, cfg.cold_item_fraction,
                                 params.seed)
    cold = splits["cold_ids"]
    if args.random_cold:  # the same share of items, drawn at random among the listed ones
        is_listed = listed_before(items, train_end)
        cold = ids[is_listed & (np.random.default_rng(params.seed).random(len(ids)) < cfg.cold_item_fraction)]
        mined_train, mined_holdout = split_holdout(pairs, params.pairs.holdout_fraction, params.seed)
        (train, train_cold), (holdout, holdout_cold) = split_by_items(mined_train, cold), split_by_items(mined_holdout, cold)
        splits = {"train": train, "holdout": holdout, "cold": pd.concat([train_cold, holdout_cold], ignore_index=True)}
    train = splits["train"]
    sets = retrieval_sets(ws, items, splits["holdout"], splits["cold"])
    k = cfg.hit_k
    print(f"{ws.root}: {len(ids)} items, {len(cold)} cold ({'random' if args.random_cold else 'newest'}), "
          f"{len(train)} training pairs; pairs per set: " + ", ".join(f"{s} {len(p)}" for s, p in sets.items().items()))
    print(f"hit@{k}{'':17s}" + "".join(f"{s:>12s}" for s in SETS))

    L.seed_everything(params.seed, verbose=False)
    is_listed = listed_before(items, train_end)
    encoder = ItemEncoder(encoder_config(cfg, items.loc[is_listed]))
    if encoder.content_residual:
        encoder.set_text_basis(text[is_listed])
    print(row("plain MiniLM", retrieval_report(ids, text, text, sets, k)))
    features = encoder.featurize(items, ws.path("data"), text_vectors=text)
    if encoder.content_residual:
        print(row("content part of z", retrieval_report(ids, encoder.embed_parts(features)[0], text, sets, k)))

    class PrintEpochs(ColdSelection):  # the selection's candidates, printed instead of chosen
        def score(self, enc, epoch):
            for scale, z in self.candidates(enc):
                label = f"epoch {epoch}" + (f" scale {scale:g}" if scale is not None else "")
                print(row(label, retrieval_report(ids, z, text, sets, k)), flush=True)
            return 0.0

        def restore(self, enc):
            pass

    row_of = pd.Series(np.arange(len(ids)), index=ids)
    pairs = np.stack([row_of.reindex(train["trigger"]).to_numpy(), row_of.reindex(train["target"]).to_numpy()], 1)
    printer = PrintEpochs(features, ids, sets.cold, k, [s for s in cfg.correction_scales if s > 0] or [1.0])
    fit_encoder(encoder, features, pairs.astype(np.int64), train["weight"].to_numpy(), epochs=cfg.epochs, lr=cfg.lr,
                cfg=cfg, seed=params.seed, selection=printer,
                pairs_per_epoch=pairs_per_epoch(cfg, int(is_listed.sum())))


if __name__ == "__main__":
    main()
