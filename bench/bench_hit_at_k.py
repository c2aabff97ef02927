"""Cost of hit@k against catalog size: the exact search, with and without the trigger cap.

    .venv/bin/python bench/bench_hit_at_k.py                      # catalogs of 10k..80k items
    .venv/bin/python bench/bench_hit_at_k.py --sizes 20000,200000 --cap 8192

hit@k (saviorrec.metrics.retrieval) searches every distinct trigger item against the whole
catalog. Held-out pairs touch a share of the catalog, so the triggers grow with it and the
search is quadratic in the catalog; ``encoder.hit_max_triggers`` caps the triggers at a seeded
sample, which makes it linear. Random unit vectors (384 dims, as MiniLM), pairs drawn so that
half the catalog appears as a trigger. It prints seconds per size for both, the cost exponent
of each (log-log slope of seconds against items; 1.0 = linear) and the ratio uncapped / capped.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from saviorrec.metrics.retrieval import hits_at_k


def timed(*args, **kwargs) -> float:
    """Seconds of one hits_at_k call."""
    started = time.perf_counter()
    hits_at_k(*args, **kwargs)
    return time.perf_counter() - started


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = np.log(xs), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,20000,40000,80000", help="catalog sizes (items)")
    parser.add_argument("--cap", type=int, default=8192, help="encoder.hit_max_triggers")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        ids = np.arange(n, dtype=np.int64)
        vectors = rng.standard_normal((n, args.dim), dtype=np.float32)
        pairs = pd.DataFrame({"trigger": rng.choice(ids, n // 4), "target": rng.choice(ids, n // 4)})
        exact = timed(ids, vectors, pairs, 30)
        capped = timed(ids, vectors, pairs, 30, max_triggers=args.cap)
        rows.append({"items": n, "triggers": len(np.unique(np.concatenate([pairs.trigger, pairs.target]))),
                     "exact_s": exact, "capped_s": capped, "ratio": exact / capped})
        print(f"{n:>9,} items, {rows[-1]['triggers']:>7,} triggers: exact {exact:7.2f} s, "
              f"capped at {args.cap:,}: {capped:7.2f} s, exact / capped {exact / capped:5.1f}x", flush=True)
    if len(rows) > 1:
        items = [r["items"] for r in rows]
        print(f"cost exponent (seconds vs items): exact {slope(items, [r['exact_s'] for r in rows]):.2f}, "
              f"capped {slope(items, [r['capped_s'] for r in rows]):.2f}")
    above = [r for r in rows if r["triggers"] > args.cap]
    if len(above) > 1:  # below the cap both are the same search
        print(f"capped, over the sizes whose triggers exceed the cap: "
              f"{slope([r['items'] for r in above], [r['capped_s'] for r in above]):.2f}")

if __name__ == "__main__":
    main()
