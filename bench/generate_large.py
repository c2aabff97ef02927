"""Benchmark the synthetic generator at `large` scale (streamed day by day, images off).

    python bench/generate_large.py --scale 0.1        # a tenth of `large`, in a temp dir
    python bench/generate_large.py --out /big/disk    # the full preset, kept on disk

Prints rows/s and peak RSS of the large run, then the `default` preset (images off, same
process, run second so the peak stays the large run's) as the reference: the ratio of
per-row throughput says whether generation scales linearly.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from saviorrec.config import load_params
from saviorrec.data.synthetic import generate

REPO = Path(__file__).resolve().parents[1]
SCALED = ("n_users", "n_initial_items", "new_items_per_day", "impressions_per_day", "n_brands")


def scaled_world(cfg, scale: float) -> dict:
    """The ``SCALED`` sizes of a ``synthetic:`` config multiplied by ``scale`` (each at least 1); days kept."""
    return {k: max(1, round(getattr(cfg, k) * scale)) for k in SCALED}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run(preset: str, out: Path, scale: float = 1.0) -> dict:
    params = load_params(REPO / "params.yaml", {"preset": preset})
    cfg = params.synthetic
    if scale != 1.0:
        cfg = cfg.model_copy(update=scaled_world(cfg, scale))
    cfg = cfg.model_copy(update={"images": False})
    started = time.perf_counter()
    summary = generate(cfg, params.seed, out / "events", out / "items.parquet", None)
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    return {**summary, "wall_s": seconds, "rows_per_s": summary["impressions"] / seconds, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply users, items, brands and daily impressions")
    parser.add_argument("--out", type=Path, default=None, help="keep the data here (default: a temp dir, deleted)")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="saviorrec-large-"))
    try:
        rss_before = peak_rss_mib()
        large = run("large", root / "large", args.scale)
        rss_large = peak_rss_mib()
        reference = run("default", root / "default")
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)

    print(f"large x{args.scale:g}: {large['impressions']:,} impressions, {large['items']:,} items, "
          f"{large['days']} days x {large['parts_per_day']} parts, {large['bytes'] / 2**20:,.0f} MiB parquet")
    print(f"  {large['wall_s']:.1f} s, {large['rows_per_s']:,.0f} rows/s, ctr {large['ctr']:.3f}, cvr {large['cvr']:.3f}")
    print(f"  peak RSS {rss_large:,.0f} MiB (process start {rss_before:,.0f} MiB)")
    print(f"default (reference, images off): {reference['impressions']:,} impressions, {reference['wall_s']:.1f} s, "
          f"{reference['rows_per_s']:,.0f} rows/s")
    print(f"per-row throughput large / default: {large['rows_per_s'] / reference['rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
