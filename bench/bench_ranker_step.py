"""One ranker training step against catalog size: the item-ID table with dense vs sparse gradients.

    .venv/bin/python bench/bench_ranker_step.py                       # 20k, 50k, 200k, 1M IDs
    .venv/bin/python bench/bench_ranker_step.py --ids 20000,1000000 --steps 20

The item-ID table is the one weight that grows with the catalog. With dense gradients every step
writes a zero-filled [catalog, id_dim] gradient and Adam updates every row, so a step's cost grows
with the catalog and a pass over the log grows faster than the log. With ``ranker.sparse_ids`` the
gradient holds the batch's rows only and SparseAdam updates those. Both are the stage's own
``RankerModule`` (``configure_optimizers`` and ``ranker_losses``) on one fixed batch of the
default shapes (``ranker.batch_size``, ``ranker.seq_len``, MiniLM-wide content, 5 x 256 SIDs).

It prints milliseconds per step for both, the ratio dense / sparse at each size, and each
layout's growth from the smallest catalog to the largest: all ratios within this one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from saviorrec.config import load_params  # noqa: E402
from saviorrec.data.samples import DENSE_FEATURES  # noqa: E402
from saviorrec.models.ranker_module import RankerModule, optimizer_list, ranker_losses  # noqa: E402

CONTENT_DIM, LEVELS, CODEBOOK, CATEGORIES = 384, 5, 256, 50


def batch_of(n_ids: int, batch_size: int, seq_len: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    def ints(high: int, *shape: int) -> torch.Tensor:
        return torch.randint(1, high, shape, generator=generator)

    def floats(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    return {"cand_id": ints(n_ids, batch_size), "cand_cat": ints(CATEGORIES, batch_size),
            "cand_sid": ints(CODEBOOK, batch_size, LEVELS), "hist_id": ints(n_ids, batch_size, seq_len),
            "hist_cat": ints(CATEGORIES, batch_size, seq_len), "hist_sid": ints(CODEBOOK, batch_size, seq_len, LEVELS),
            "hist_mask": torch.ones(batch_size, seq_len), "cand_content": floats(batch_size, CONTENT_DIM),
            "hist_content": floats(batch_size, seq_len, CONTENT_DIM), "dense": floats(batch_size, len(DENSE_FEATURES)),
            "click": ints(3, batch_size).float() - 1, "conversion": -torch.ones(batch_size)}


def ms_per_step(n_ids: int, sparse: bool, batch: dict[str, torch.Tensor], rp, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    config = {"variant": "saviorrec", "n_ids": n_ids, "n_categories": CATEGORIES, "dense_dim": len(DENSE_FEATURES),
              "content_dim": CONTENT_DIM, "levels": LEVELS, "codebook_size": CODEBOOK, "id_dim": rp.id_dim,
              "attn_dim": rp.attn_dim, "mba_hidden": rp.mba_hidden, "dnn_hidden": list(rp.dnn_hidden),
              "interactions": rp.interactions, "prior_feature": DENSE_FEATURES.index("heuristic_logit"),
              "sparse_ids": sparse}
    module = RankerModule(config, lr=rp.lr, weight_decay=rp.weight_decay).train()
    optimizers = optimizer_list(module)  # two with sparse ID gradients
    for i in range(warmup + steps):
        if i == warmup:
            started = time.perf_counter()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        ranker_losses(module.model, batch, 1.0)["loss"].backward()
        for opt in optimizers:
            opt.step()
    return 1000 * (time.perf_counter() - started) / steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default="20000,50000,200000,1000000", help="comma-separated catalog sizes")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    rp = load_params(REPO / "params.yaml").ranker
    sizes = [int(s) for s in args.ids.split(",")]
    results = {}
    print(f"{'item IDs':>10} {'dense ms':>9} {'sparse ms':>10} {'dense/sparse':>13}")
    for n_ids in sizes:
        batch = batch_of(n_ids, rp.batch_size, rp.seq_len, torch.Generator().manual_seed(n_ids))
        dense = ms_per_step(n_ids, False, batch, rp, args.steps, args.warmup)
        sparse = ms_per_step(n_ids, True, batch, rp, args.steps, args.warmup)
        results[n_ids] = {"dense_ms": round(dense, 1), "sparse_ms": round(sparse, 1)}
        print(f"{n_ids:>10} {dense:>9.1f} {sparse:>10.1f} {dense / sparse:>13.2f}", flush=True)
    first, last = results[sizes[0]], results[sizes[-1]]
    for kind in ("dense", "sparse"):
        growth = last[f"{kind}_ms"] / first[f"{kind}_ms"]
        print(f"{kind}: a step at {sizes[-1]:,} IDs costs {growth:.2f}x a step at {sizes[0]:,}")
    return results


if __name__ == "__main__":
    main()
