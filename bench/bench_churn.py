"""SID churn of a warm-started daily rebuild: day D from scratch, then day D+1 warm-started.

    python bench/bench_churn.py --preset default --workdir /tmp/churn
    python bench/bench_churn.py --preset default --workdir /tmp/churn --reuse --set encoder.anchor_weight=20

Day D trains the encoder and codebook from scratch (encoder.warm_start=false,
codebook.full_rebuild=true) on days < D; day D+1 runs train_encoder + build_codebook with the
params as given (warm starts from day D's encoder and codebook) on days < D+1. D+1 is the last
day of data unless --day says otherwise. Prints, per day, churn (share of known items whose SID
changed; the target is <= 5%, checks.sids.max_churn), the codes-only churn and that of greedy assignment, raw
collision rate, unique share, level-1 utilization and hit@k of z vs plain MiniLM, plus the mean
squared drift of z between the days. ``--reuse`` keeps the workspace and day D (snapshotted
under <workdir>/day_d) so D+1 variants can be compared quickly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from saviorrec.config import (  # noqa: E402
    load_params,
    parse_set,  # noqa: E402
    write_workspace_params,
)
from saviorrec.stages import run_stage  # noqa: E402
from saviorrec.workspace import Workspace  # noqa: E402

SNAPSHOT = ("encoder", "codebook", "embeddings", "text_features")


def stage(root: Path, name: str, overrides: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    summary = run_stage(name, Workspace.open(root, overrides))
    return summary, time.perf_counter() - started


def day_report(encoder: dict, codebook: dict) -> dict:
    k = encoder.get("hit_k", 30)
    hit, minilm = encoder.get(f"hit_at_{k}"), encoder.get(f"hit_at_{k}_minilm")
    return {
        "churn": codebook.get("churn"), "churn_codes": codebook.get("churn_codes"),
        "churn_codes_greedy": codebook.get("churn_codes_greedy"),
        "raw_collision_rate": codebook["raw_collision_rate"], "unique_fraction": codebook["unique_fraction"],
        "utilization_level1": codebook["utilization"][0],
        f"hit_at_{k}": hit, f"hit_at_{k}_minilm": minilm,
        "hit_gain_vs_minilm": (hit / minilm - 1.0) if hit is not None and minilm else None,
        f"hit_at_{k}_reconstructed": codebook.get(f"hit_at_{k}_reconstructed"),
        "reconstruction_mse_relative": codebook["reconstruction_mse_relative"],
        "encoder_warm": encoder["warm_started"], "codebook_warm": codebook["warm_started"],
        "anchor_drift": encoder.get("anchor_drift"),
        "generic_churn": codebook["generic"].get("churn"),
    }


def z_drift(before: Path, after: Path) -> float:
    from saviorrec.data import io

    a = io.read_parquet(before).set_index("item_id")
    b = io.read_parquet(after).set_index("item_id")
    common = a.index.intersection(b.index)
    za, zb = np.stack(a.loc[common, "vector"].to_numpy()), np.stack(b.loc[common, "vector"].to_numpy())
    return float(np.mean(np.sum((za - zb) ** 2, axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--day", default=None, help="D+1 (train_end of the warm rebuild); default: last data day")
    parser.add_argument("--set", action="append", default=[], help="section.key=value for day D+1 (repeatable)")
    parser.add_argument("--reuse", action="store_true", help="keep the workspace and day D from an earlier run")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    root = args.workdir.resolve()
    saved = root / "day_d"
    if not args.reuse and root.exists():
        shutil.rmtree(root)
    if not (root / "params.yaml").exists():
        write_workspace_params(root, {"preset": args.preset}, base=REPO / "params.yaml")
    base = load_params(root / "params.yaml")
    ws = Workspace(root, base)
    if not ws.data_days():
        _, seconds = stage(root, "ingest", {})
        print(f"ingest: {seconds:.1f}s", flush=True)
    days = ws.data_days()
    day1 = dt.date.fromisoformat(args.day) if args.day else days[-1]
    day0 = day1 - dt.timedelta(days=1)
    paths = {name: ws.path(name) for name in SNAPSHOT}

    if not (saved / "report.json").exists():
        fresh = {"split.train_end": str(day0), "encoder.warm_start": False, "codebook.full_rebuild": True}
        for path in paths.values():
            if path.is_dir():
                shutil.rmtree(path)
        enc, t_enc = stage(root, "train_encoder", fresh)
        cb, t_cb = stage(root, "build_codebook", fresh)
        report0 = {"day": str(day0), **day_report(enc, cb), "seconds": round(t_enc + t_cb, 1)}
        if saved.exists():
            shutil.rmtree(saved)
        saved.mkdir(parents=True)
        for name, path in paths.items():
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, saved / name)
        (saved / "report.json").write_text(json.dumps(report0, indent=2))
    report0 = json.loads((saved / "report.json").read_text())
    for name, path in paths.items():  # every D+1 variant starts from the same day D
        if path.is_dir():
            shutil.rmtree(path)
        (shutil.copytree if (saved / name).is_dir() else shutil.copy2)(saved / name, path)

    warm = {"split.train_end": str(day1), **parse_set(args.set)}
    enc, t_enc = stage(root, "train_encoder", warm)
    cb, t_cb = stage(root, "build_codebook", warm)
    report1 = {"day": str(day1), **day_report(enc, cb), "seconds": round(t_enc + t_cb, 1),
               "z_drift": z_drift(saved / "embeddings", paths["embeddings"])}
    result = {"preset": args.preset, "overrides": warm, "day_d": report0, "day_d_plus_1": report1,
              "churn": report1["churn"], "churn_target_met": report1["churn"] is not None and report1["churn"] <= 0.05}
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
