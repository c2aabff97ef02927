"""Codebook build time, reconstruction error and SID assignment throughput vs faiss, same process.

    python bench/bench_codebook.py                         # clustered synthetic z, params.yaml L x K
    python bench/bench_codebook.py --embeddings artifacts/embeddings.parquet --threads 2

References at equal L x K on the same embeddings: faiss.ResidualQuantizer (beam search) and
residual k-means on faiss.Kmeans (greedy, what our quantizer starts from). Ours is reported as
the quantizer fit alone (PCA + residual k-means, epochs=0) and as the full RQ-VAE with the
configured epochs. Ratios < 1 mean ours is faster / more accurate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(64, d))
    x = centers[rng.integers(64, size=n)] + 0.35 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def faiss_rq(x, levels, k, iters):
    import faiss

    rq = faiss.ResidualQuantizer(x.shape[1], levels, int(np.log2(k)))
    rq.cp.niter = iters
    _, seconds = timed(lambda: rq.train(x))
    codes = rq.compute_codes(x)
    return {"build_s": seconds, "mse": float(np.mean((rq.decode(codes) - x) ** 2)), "assign": rq.compute_codes}


def faiss_residual_kmeans(x, levels, k, iters, seed):
    import faiss

    def build():
        books, residual = [], x.copy()
        for level in range(levels):
            km = faiss.Kmeans(x.shape[1], k, niter=iters, seed=seed + level, min_points_per_centroid=1)
            km.train(residual)
            _, idx = km.index.search(residual, 1)
            residual = residual - km.centroids[idx[:, 0]]
            books.append(km.index)
        return books, residual

    (books, residual), seconds = timed(build)

    def assign(z):
        residual = z.copy()
        for index in books:
            _, idx = index.search(residual, 1)
            residual -= index.reconstruct_n(0, index.ntotal)[idx[:, 0]]
        return residual

    return {"build_s": seconds, "mse": float(np.mean(residual ** 2)), "assign": assign}


def ours(x, params, epochs, seed, pairs=None):
    from saviorrec.models.codebook import Codebook
    from saviorrec.models.rqvae import RQVAEConfig
    from saviorrec.models.rqvae_module import fit_rqvae

    cb = params.codebook
    config = RQVAEConfig.from_params(cb, x.shape[1])
    model, seconds = timed(lambda: fit_rqvae(x, config, epochs=epochs, batch_size=cb.batch_size, seed=seed,
                                             kmeans_iters=cb.kmeans_iters, pairs=pairs))
    book = Codebook(model.rqvae)
    codes = book.assign(x)
    return {"build_s": seconds, "mse": float(np.mean((book.reconstruct(codes) - x) ** 2)), "assign": book.assign,
            "raw_collision_rate": _collisions(codes)}


def _collisions(codes):
    from saviorrec.metrics.codebook import raw_collision_rate

    return raw_collision_rate(codes)


def throughput(assign, z, threads):
    """Items per minute of wall time, and per minute of `threads` cores' CPU time (a shared
    machine's wall time understates what the cores do when other jobs compete for them)."""
    assign(z[:1000])  # warm-up
    cpu = time.process_time()
    _, seconds = timed(lambda: assign(z))
    cpu_seconds = time.process_time() - cpu
    return {"items": len(z), "wall_s": seconds, "cpu_s": cpu_seconds, "per_min_wall": len(z) / seconds * 60.0,
            "per_min_cpu_on_threads": len(z) / max(cpu_seconds / threads, 1e-9) * 60.0}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--preset", default=None, help="override params `preset` (e.g. tiny)")
    parser.add_argument("--embeddings", default=None, help="parquet with item_id, vector (default: clustered)")
    parser.add_argument("--items", type=int, default=20_000, help="clustered items when no --embeddings")
    parser.add_argument("--dim", type=int, default=None, help="clustered dim (default encoder.embedding_dim)")
    parser.add_argument("--assign-items", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="RQ-VAE epochs (default codebook.epochs)")
    args = parser.parse_args(argv)

    import faiss
    import torch

    from saviorrec.config import load_params
    from saviorrec.data import io

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    params = load_params(args.params, overrides={"preset": args.preset} if args.preset else None)
    cb = params.codebook
    if args.embeddings:
        x = np.stack(io.read_parquet(args.embeddings)["vector"].to_numpy()).astype(np.float32)
    else:
        x = clustered(args.items, args.dim or params.encoder.embedding_dim, params.seed)
    epochs = cb.epochs if args.epochs is None else args.epochs
    print(f"embeddings {x.shape}, {cb.levels} x {cb.codebook_size}, kmeans_iters={cb.kmeans_iters}, "
          f"threads={args.threads}, rq-vae epochs={epochs}", flush=True)

    rq = faiss_rq(x, cb.levels, cb.codebook_size, cb.kmeans_iters)
    rkm = faiss_residual_kmeans(x, cb.levels, cb.codebook_size, cb.kmeans_iters, params.seed)
    fit_alone = ours(x, params, 0, params.seed)
    full = ours(x, params, epochs, params.seed)

    rng = np.random.default_rng(0)
    big = x[rng.integers(len(x), size=args.assign_items)] + 0.01 * rng.normal(size=(args.assign_items, x.shape[1]))
    big = big.astype(np.float32)
    result = {"n_items": len(x), "dim": x.shape[1], "levels": cb.levels, "codebook_size": cb.codebook_size}
    for name, run in (("faiss_rq", rq), ("faiss_residual_kmeans", rkm), ("ours_quantizer_fit", fit_alone),
                      ("ours_rqvae", full)):
        result[name] = {k: v for k, v in run.items() if k != "assign"}
    result["assign_throughput"] = {"ours": throughput(full["assign"], big, args.threads),
                                   "faiss_rq": throughput(rq["assign"], big[:100_000], args.threads)}
    for ref in ("faiss_rq", "faiss_residual_kmeans"):
        for name in ("ours_quantizer_fit", "ours_rqvae"):
            result[f"{name}_vs_{ref}"] = {
                "build_time_ratio": result[name]["build_s"] / result[ref]["build_s"],
                "mse_ratio": result[name]["mse"] / result[ref]["mse"],
            }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
