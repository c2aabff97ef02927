"""Compare ranker variants end to end: ingest -> train_encoder -> build_codebook -> (train_ranker -> evaluate) per variant.

    python bench/compare_variants.py --source synthetic --train-end 2024-01-25 --eval-end 2024-01-31 \
        --seeds 3 --variants id_only,content_frozen,sid_ids,saviorrec --out results.json
    python bench/compare_variants.py --source movielens --path ../shared/data/movielens-small-dev \
        --train-end 2012-01-01 --eval-end 2015-01-01 --seeds 3 --variants id_only,heuristic,saviorrec --out ml.json

One fresh workspace per seed (``seed = params.seed + i``; the synthetic world changes with it);
every stage runs through ``saviorrec.stages.run_stage``, as in Airflow and the tests. Writes JSON
``variant -> seed -> bucket -> metric`` and prints mean +- std of CTR AUC per bucket, and the
per-seed gain of each variant over ``--baseline``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from saviorrec.config import load_params, write_workspace_params  # noqa: E402
from saviorrec.metrics.ranking import BUCKETS  # noqa: E402
from saviorrec.models.variants import VARIANT_NAMES  # noqa: E402
from saviorrec.stages import run_stage  # noqa: E402
from saviorrec.workspace import Workspace  # noqa: E402

UPSTREAM = ["ingest", "train_encoder", "build_codebook"]
ALL_VARIANTS = list(VARIANT_NAMES)


def make_workspace(root: Path, preset: str, overrides: dict) -> Path:
    """A workspace folder whose params.yaml is the repository's with ``preset`` and ``overrides`` applied."""
    write_workspace_params(root, {"preset": preset, **overrides}, base=REPO / "params.yaml")
    return root


def run_in(root: Path, stage: str, overrides: dict | None = None) -> dict:
    """Run ``stage`` in the workspace folder ``root`` (``overrides`` for this call only)."""
    return run_stage(stage, Workspace.open(root, overrides))


def flatten(metrics: dict) -> dict:
    return {"overall": metrics["overall"], **metrics["buckets"]}


def seed_list(n: int, params_file: Path = REPO / "params.yaml") -> list[int]:
    """The seeds of ``n`` runs: ``params.seed + i``."""
    base_seed = load_params(params_file).seed
    return [base_seed + i for i in range(n)]


def run_upstream(root: Path, seed: int, timings: dict) -> dict:
    """ingest -> train_encoder -> build_codebook in ``root``, timed into ``timings``; stage -> summary."""
    summaries = {}
    for stage in UPSTREAM:
        start = time.perf_counter()
        summaries[stage] = run_in(root, stage)
        timings[f"{seed}/{stage}"] = round(time.perf_counter() - start, 1)
        print(f"[seed {seed}] {stage}: {timings[f'{seed}/{stage}']}s", flush=True)
    return summaries


def run_variants(root: Path, variants: list[str], seed: int, extra: dict, timings: dict):
    """train_ranker -> evaluate per variant in ``root``; yields (variant, flattened reports/details/ranker.json)."""
    for variant in variants:
        start = time.perf_counter()
        # extra (--set) applies here too: an existing --workspace has its own params.yaml
        stage_overrides = {**extra, "ranker.variant": variant, "seed": seed}
        run_in(root, "train_ranker", stage_overrides)
        run_in(root, "evaluate", stage_overrides)
        timings[f"{seed}/{variant}"] = round(time.perf_counter() - start, 1)
        metrics = json.loads((root / "reports" / "details" / "ranker.json").read_text())
        m = metrics["buckets"]["new"]
        print(f"[seed {seed}] {variant}: overall {metrics['overall']['ctr_auc']}, new {m['ctr_auc']} "
              f"(oracle {m.get('ctr_oracle_auc')}) in {timings[f'{seed}/{variant}']}s", flush=True)
        yield variant, flatten(metrics)


def summarize(results: dict, metric: str = "ctr_auc", baseline: str | None = None) -> str:
    lines = [f"{metric} mean +- std over seeds (n seeds)"]
    header = f"{'variant':28s}" + "".join(f"{b:>18s}" for b in ("overall", *BUCKETS))
    lines.append(header)

    def cell(values: list[float]) -> str:
        if not values:
            return f"{'undefined':>18s}"
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):>10.4f} +-{std:.4f}"

    def values(variant: str, bucket: str, key: str) -> list[float]:
        return [s[bucket].get(key) for s in results[variant].values() if s[bucket].get(key) is not None]

    for variant in results:
        lines.append(f"{variant:28s}" + "".join(cell(values(variant, b, metric)) for b in ("overall", *BUCKETS)))
    oracle_key = metric.replace("_auc", "_oracle_auc")
    first = next(iter(results))
    if values(first, "overall", oracle_key):
        lines.append(f"{'oracle':28s}" + "".join(cell(values(first, b, oracle_key)) for b in ("overall", *BUCKETS)))
    if baseline in results:
        lines.append(f"\ngain over {baseline} per seed (points of {metric}):")
        for variant in results:
            if variant == baseline:
                continue
            parts = []
            for b in ("overall", *BUCKETS):
                gains = [results[variant][s][b].get(metric) - results[baseline][s][b].get(metric)
                         for s in results[variant] if s in results[baseline]
                         and results[variant][s][b].get(metric) is not None and results[baseline][s][b].get(metric) is not None]
                parts.append(f"{b}=" + ",".join(f"{100 * g:+.2f}" for g in gains))
            lines.append(f"  {variant:26s} " + "  ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["synthetic", "movielens", "parquet"], default="synthetic")
    parser.add_argument("--path", default=None, help="source folder (movielens / parquet)")
    parser.add_argument("--train-end", default=None, help="YYYY-MM-DD (default: params split)")
    parser.add_argument("--eval-end", default=None, help="YYYY-MM-DD (default: params split)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS), help="comma-separated")
    parser.add_argument("--out", default="results.json")
    parser.add_argument("--preset", default=None, help="params preset (default: movielens for --source movielens, else default)")
    parser.add_argument("--baseline", default="id_only")
    parser.add_argument("--workdir", default=None, help="keep the per-seed workspaces here (default: a temp dir, removed)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra param override")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--workspace", default=None,
                        help="an existing workspace whose upstream stages already ran: run only train_ranker -> "
                             "evaluate per variant there; seeds then vary the ranker only")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(ALL_VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {ALL_VARIANTS}")
    preset = args.preset or ("movielens" if args.source == "movielens" else "default")
    overrides: dict = {"data.source": args.source}
    if args.path:
        overrides["data.path"] = str(Path(args.path).resolve())
    if args.train_end:
        overrides["split.train_end"] = args.train_end
    if args.eval_end:
        overrides["split.eval_end"] = args.eval_end
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = yaml.safe_load(value)
    overrides.update(extra)

    results: dict = {v: {} for v in variants}
    timings: dict = {}
    tmp = tempfile.TemporaryDirectory(prefix="compare_variants_") if args.workdir is None else None
    workdir = Path(tmp.name if tmp else args.workdir)
    try:
        # with --workspace: upstream fixed (the workspace's own); the seed varies the ranker only
        seeds = seed_list(args.seeds, Path(args.workspace).resolve() / "params.yaml" if args.workspace else REPO / "params.yaml")
        for seed in seeds:
            if args.workspace:
                root = Path(args.workspace).resolve()
            else:
                root = make_workspace(workdir / f"seed_{seed}", preset, {**overrides, "seed": seed})
                run_upstream(root, seed, timings)
            for variant, metrics in run_variants(root, variants, seed, extra, timings):
                results[variant][str(seed)] = metrics
                Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if tmp:
            tmp.cleanup()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    Path(args.out).with_suffix(".timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    _plot(results, Path(args.out).with_suffix(".png"))
    print(summarize(results, "ctr_auc", args.baseline))
    print(summarize(results, "ctcvr_auc", args.baseline))
    return results


def _plot(results: dict, path: Path) -> None:
    """AUC per bucket per variant (mean over seeds), with the same plot code as the evaluate stage."""
    import pandas as pd

    from saviorrec.evaluation import plot_auc

    rows = []
    for variant, seeds in results.items():
        for bucket in ("overall", *BUCKETS):
            aucs = [s[bucket].get("ctr_auc") for s in seeds.values() if s[bucket].get("ctr_auc") is not None]
            oracle = [s[bucket].get("ctr_oracle_auc") for s in seeds.values() if s[bucket].get("ctr_oracle_auc") is not None]
            sizes = [s[bucket].get("n", 0) for s in seeds.values()]  # the bars' labels carry each bucket's n
            rows.append({"variant": variant, "bucket": bucket, "ctr_auc": statistics.mean(aucs) if aucs else None,
                         "ctr_oracle_auc": statistics.mean(oracle) if oracle else None,
                         "n": round(statistics.mean(sizes)) if sizes else 0})
    if rows:
        plot_auc(pd.DataFrame(rows), path)


if __name__ == "__main__":
    main()
