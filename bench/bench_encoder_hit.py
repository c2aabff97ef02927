"""hit@k of the behavior-aware encoder vs plain MiniLM: warm, cold, future and future-new pairs.

    python bench/bench_encoder_hit.py --root /tmp/bench_enc                       # synthetic default
    python bench/bench_encoder_hit.py --root /tmp/bench_enc --preset movielens \
        --set data.path=/work/shared/data/movielens-small-dev

One workspace per preset under --root (ingested once, reused). Runs the real
train_encoder stage and prints hit@k of z, of the plain MiniLM text features of the same
items (the reference, same process, same pairs) and their ratio, for each pair set of
reports/details/encoder.json: warm (held-out pairs of trained items), cold (pairs of the newest
listings, never trained on), future and future_new (next clicks after the cut, and those on
items listed after it). Also the chosen epoch and correction scale, and the stage time.
Targets: warm ratio >= 1.30; cold and future_new ratio >= 1.30 on synthetic worlds and
>= 1.00 on MovieLens.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from saviorrec.config import (  # noqa: E402
    load_params,
    parse_set,
    write_workspace_params,
)
from saviorrec.data import io  # noqa: E402
from saviorrec.stages import run_stage  # noqa: E402
from saviorrec.workspace import Workspace  # noqa: E402


def workspace(root: Path, preset: str, overrides: dict) -> Workspace:
    params_file = write_workspace_params(root, {"preset": preset}, base=REPO / "params.yaml")
    params = load_params(params_file, overrides=overrides)
    return Workspace(root, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cold", action="store_true", help="ignore a previous encoder (no warm start)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    overrides = parse_set(args.set)
    if args.cold:
        overrides["encoder.warm_start"] = False
    ws = workspace(args.root / args.preset, args.preset, overrides)
    if not ws.path("events").is_dir():
        started = time.perf_counter()
        run_stage("ingest", ws)
        print(f"ingest {args.preset}: {time.perf_counter() - started:.1f}s")
    before = io.read_parquet(ws.path("embeddings")) if ws.path("embeddings").is_file() else None
    started = time.perf_counter()
    summary = run_stage("train_encoder", ws)
    wall = time.perf_counter() - started
    k = summary["hit_k"]
    hit, ref = summary[f"hit_at_{k}"], summary[f"hit_at_{k}_minilm"]
    print(json.dumps({key: summary[key] for key in ("n_items", "n_pairs", "n_holdout_pairs", "epochs", "train_loss", "warm_started")}))
    print(f"{args.preset}: hit@{k} behavior-aware {hit:.4f} | plain MiniLM {ref:.4f} | "
          f"ratio {hit / ref:.3f} (target >= 1.30) | train_encoder wall {wall:.1f}s on {torch.get_num_threads()} threads"
          f" ({'cuda' if torch.cuda.is_available() else 'cpu'})")
    for name, r in summary.get("retrieval", {}).items():
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        print(f"  {name:10s} {r['pairs']:7d} pairs: z {r['hit'] if r['hit'] is not None else float('nan'):.4f} | "
              f"MiniLM {r['minilm'] if r['minilm'] is not None else float('nan'):.4f} | ratio {ratio}")
    print(f"  chosen: epoch {summary.get('selected_epoch')} of {summary.get('epochs_run')}, "
          f"correction scale {summary.get('correction_scale')}")
    if before is not None:  # stability of z across a refresh (what keeps SID churn low)
        after = io.read_parquet(ws.path("embeddings")).merge(before, on="item_id", suffixes=("", "_before"))
        cos = (np.stack(after["vector"].to_numpy()) * np.stack(after["vector_before"].to_numpy())).sum(axis=1)
        print(f"z vs previous run ({len(cos)} items, warm_started={summary['warm_started']}): "
              f"cosine median {np.median(cos):.4f}, p5 {np.percentile(cos, 5):.4f}")


if __name__ == "__main__":
    main()
