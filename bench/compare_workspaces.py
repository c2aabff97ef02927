"""Did a change move any result? Compare two workspaces that ran the same pipeline.

    .venv/bin/python bench/compare_workspaces.py BEFORE_DIR AFTER_DIR [--tolerance 1e-6]

Each folder is a workspace after `dvc repro` (e.g. two clones at two commits, same params and
seed). Prints whether the semantic IDs are identical, the largest difference of the item
vectors, and which metrics (timings excluded) differ by more than the tolerance. Exit code 1
when the SIDs or the ranker metrics differ: a refactor must leave both unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

SID_TABLES = ("artifacts/sids.parquet", "artifacts/sids_generic.parquet")
VECTOR_TABLES = ("artifacts/embeddings.parquet", "artifacts/text_features.parquet")
METRICS = ("reports/details/ranker.json", "reports/details/codebook.json", "reports/details/encoder.json")


def numbers(payload: dict, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a metrics file as ``dotted.key -> value``."""
    out: dict[str, float] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            out.update(numbers(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[prefix + key] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    args = parser.parse_args()
    unchanged = True
    for name in SID_TABLES:
        same = pd.read_parquet(args.before / name).equals(pd.read_parquet(args.after / name))
        print(f"{name}: {'identical' if same else 'DIFFERENT'}")
        unchanged &= same
    for name in VECTOR_TABLES:
        a, b = (np.stack(pd.read_parquet(root / name)["vector"]) for root in (args.before, args.after))
        print(f"{name}: max |diff| {np.abs(a - b).max():.3g}" if a.shape == b.shape else f"{name}: shapes differ")
    for name in METRICS:
        a, b = (numbers(json.loads((root / name).read_text())) for root in (args.before, args.after))
        moved = {k: (v, b.get(k)) for k, v in a.items()
                 if "seconds" not in k and (b.get(k) is None or abs(v - b[k]) > args.tolerance)}
        print(f"{name}: {len(a)} numbers, {len(moved)} differ by > {args.tolerance:g} (timings excluded)"
              + (f": {moved}" if moved else ""))
        if name == "reports/details/ranker.json":
            unchanged &= not moved
    print("results unchanged" if unchanged else "RESULTS CHANGED")
    raise SystemExit(0 if unchanged else 1)


if __name__ == "__main__":
    main()
