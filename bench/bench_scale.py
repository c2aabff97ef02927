"""Cost of the whole pipeline against data size: the `large` preset at several scales, stage by stage.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    .venv/bin/python bench/bench_scale.py --scales 0.02,0.05 --root /tmp/scale
    .venv/bin/python bench/bench_scale.py --scales 0.1,0.2 --root /tmp/scale    # adds to the same metrics/scale.json
    .venv/bin/python bench/bench_scale.py --report                               # table, exponents and PNG only
    .venv/bin/python bench/bench_scale.py --daily 0.2 --root /tmp/scale          # the warm daily run at x0.2
    .venv/bin/python bench/bench_scale.py --daily 0.2 --root /tmp/scale --seed-from /tmp/scale/scale_0.2
                                                          # the same, its cold day reusing that run's MiniLM vectors
    .venv/bin/python bench/bench_scale.py --scales 0.02,0.05 --root /tmp/scale --from-stage train_ranker
                                                          # after a ranker change: its stages again, same data

For each scale ``s`` it builds ``ROOT/scale_<s>`` (the ``large`` world with users, items, brands and
daily impressions multiplied by ``s``, 60 days kept, the training budgets scaled to the data as
bench/bench_cold_start.py's ``syn-large-<s>`` settings) and runs every stage up to
``validate_model`` exactly as ``dvc repro`` does: ``python -m pipelines.<stage>`` in a child
process, so that each stage's wall time and peak RSS are its own (``os.wait4``), with its RSS
every 2 s in ``logs/<stage>.rss.csv`` (where in the stage memory grows). Then the
``id_only`` ranker on the same workspace, for the quality comparison. A gate that fails is
recorded and the run goes on; a training stage that fails stops that scale. Each scale gets a cold
MiniLM text cache: encoding the catalog is part of what a first run costs.

It prints, per stage and scale, seconds, peak RSS and throughput (impressions/s, items/s), and the
cost exponent of every stage (least-squares slope of log seconds against log impressions, and
against log items, over the scales measured; 1.0 is linear). For the run: collision rate and
unique final IDs, and saviorrec's and id_only's new-item and overall CTR AUC beside the oracle.
Results accumulate in ``--out`` (default metrics/scale.json, one entry per scale, so scales can be
measured in separate sessions) with a PNG of seconds and peak RSS against impressions beside it.
The exponents are ratios between runs of this machine, but runs made on different days share it
with different neighbours: compare scales measured in one invocation where it matters.

``--daily S`` measures what users pay every day at scale ``S``: a two-step rolling backtest
(``saviorrec.backtest.run_backtest``, the DAG's own cadence and warm-start code) on the same
world, whose first step is the cold build and whose second is the next day's run: the new
day's window, the encoder and codebook reused and extended to the day's new items, and the
ranker (``saviorrec``) and the baseline's ranker (``content_frozen``) continued on the new day
only. It prints the second step's seconds per stage; ``validate_model`` and ``promote`` are not
in a backtest step, and its stages run in this process (``--threads`` does not apply).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_cold_start as cold  # noqa: E402  (puts the repository root on sys.path)

from saviorrec.config import load_params, write_workspace_params  # noqa: E402

REPO = cold.REPO
STAGES = ["ingest", "validate_logs", "train_encoder", "build_codebook", "validate_sids",
          "train_ranker", "evaluate", "baseline", "validate_model"]
GATES = {"validate_logs", "validate_sids", "validate_model"}
COMPARED = "id_only"  # ranker variant run after the pipeline, for the quality comparison
RSS_EVERY_S = 2.0  # the per-stage RSS trace (logs/<stage>.rss.csv)


def scale_overrides(scale: float) -> dict:
    """The `large` world at ``scale`` with its budgets, and its own text cache."""
    setting = cold.Setting("large", cold.SYN_LARGE_SPLIT, "", scale=scale)
    return cold.setting_overrides(setting)


def run_child(stage: str, ws: Path, log: Path, sets: list[str], threads: int | None) -> dict:
    """``python -m pipelines.<stage>`` in ``ws``; its own wall seconds, peak RSS and exit status."""
    cmd = [sys.executable, "-m", f"pipelines.{stage}", "--params", str(ws / "params.yaml"), "--workdir", str(ws)]
    for item in sets:
        cmd += ["--set", item]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started = time.perf_counter()
    trace = log.with_suffix(".rss.csv")
    with log.open("w") as out:
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        stop = threading.Event()
        sampler = threading.Thread(target=trace_rss, args=(child.pid, trace, started, stop), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the session's
        stop.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return {"seconds": round(time.perf_counter() - started, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "exit": child.returncode, "log": str(log), "rss_trace": str(trace)}


def trace_rss(pid: int, path: Path, started: float, stop: threading.Event, every_s: float = RSS_EVERY_S) -> None:
    """``seconds,rss_mib`` of process ``pid`` every ``every_s`` seconds until ``stop`` (Linux /proc):
    where in a stage memory grows, which the peak alone does not say (it grew with an epoch's batches)."""
    status = Path(f"/proc/{pid}/status")
    with path.open("w") as out:
        out.write("seconds,rss_mib\n")
        while not stop.wait(every_s):
            try:
                rss_kib = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS:"))
            except (OSError, StopIteration):  # gone, or a zombie without VmRSS
                return
            out.write(f"{time.perf_counter() - started:.1f},{rss_kib / 1024:.0f}\n")
            out.flush()


def _ranker_metrics(ws: Path) -> dict:
    metrics = json.loads((ws / "reports" / "details" / "ranker.json").read_text())
    new = metrics["buckets"]["new"]
    return {"auc": metrics["overall"]["ctr_auc"], "oracle_auc": metrics["overall"].get("ctr_oracle_auc"),
            "new_auc": new["ctr_auc"], "new_oracle_auc": new.get("ctr_oracle_auc"), "new_n": new.get("n")}


def measure_scale(scale: float, root: Path, threads: int | None, earlier: dict | None = None,
                  start: str = STAGES[0], keep=lambda entry: None) -> dict:
    """Every stage from ``start`` on; the stages before it are ``earlier``'s (the same workspace's
    measurement, whose upstream outputs the rerun reads). ``keep(entry)`` after every stage: a run
    stopped halfway (hours at 0.2) keeps the stages it finished."""
    ws = root / f"scale_{scale:g}"
    (ws / "logs").mkdir(parents=True, exist_ok=True)
    overrides = {**scale_overrides(scale), "paths.text_cache": str(ws / ".cache" / "text_features")}
    write_workspace_params(ws, {"preset": "large", **overrides}, base=REPO / "params.yaml")
    entry: dict = {"scale": scale, "overrides": overrides, "stages": {}, "quality": {}}
    if earlier is not None:
        kept = STAGES[:STAGES.index(start)]
        entry.update({k: earlier[k] for k in ("impressions", "items", "sids") if k in earlier},
                     stages={k: earlier["stages"][k] for k in kept}, remeasured_from=start)
    for stage in STAGES[STAGES.index(start):]:
        result = run_child(stage, ws, ws / "logs" / f"{stage}.log", [], threads)
        entry["stages"][stage] = result
        print(f"[x{scale:g}] {stage}: {result['seconds']}s, peak RSS {result['peak_rss_mib']:.0f} MiB"
              + ("" if result["exit"] == 0 else f", exit {result['exit']} (see {result['log']})"), flush=True)
        if stage == "ingest" and result["exit"] == 0:
            entry["impressions"], entry["items"] = _data_size(ws)
        if stage == "evaluate" and result["exit"] == 0:
            entry["quality"]["saviorrec"] = _ranker_metrics(ws)
        keep({**entry, "partial": True})
        if result["exit"] != 0 and stage not in GATES:
            entry["stopped_at"] = stage
            return entry
    codebook = json.loads((ws / "reports" / "details" / "codebook.json").read_text())
    entry["sids"] = {k: codebook.get(k) for k in ("raw_collision_rate", "unique_fraction", "utilization", "codebook_size", "levels")}
    entry["gates"] = {g: json.loads((ws / "reports" / "gates" / f"{g}.json").read_text())["passed"]
                      for g in sorted(GATES) if (ws / "reports" / "gates" / f"{g}.json").is_file()}
    sets = [f"ranker.variant={COMPARED}"]
    for stage in ("train_ranker", "evaluate"):
        result = run_child(stage, ws, ws / "logs" / f"{stage}_{COMPARED}.log", sets, threads)
        entry["stages"][f"{stage}[{COMPARED}]"] = result
        keep({**entry, "partial": True})
        if result["exit"] != 0:
            break
    else:
        entry["quality"][COMPARED] = _ranker_metrics(ws)
    return entry


def _data_size(ws: Path) -> tuple[int, int]:
    """(impressions, catalog items) of the workspace, read from the written data."""
    import pyarrow.dataset as ds

    impressions = ds.dataset(ws / "data" / "events", format="parquet", partitioning="hive").count_rows()
    items = ds.dataset(ws / "data" / "items.parquet", format="parquet").count_rows()
    return int(impressions), int(items)


def exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two distinct x)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def stage_names(entries: list[dict]) -> list[str]:
    """Every stage measured at any scale, in first-seen order (a stopped scale lacks some)."""
    return list(dict.fromkeys(name for e in entries for name in e["stages"]))


def report(results: dict) -> str:
    entries = sorted((e for e in results["scales"].values() if "impressions" in e), key=lambda e: e["scale"])
    if not entries:
        return "no measured scale"
    names = stage_names(entries)
    heads = [f"x{e['scale']:g} ({e['impressions']:,} imp, {e['items']:,} items)" + (" PARTIAL" if e.get("partial") else "")
             for e in entries]
    lines = ["seconds (peak RSS MiB) per stage; throughput in impressions/s and items/s",
             f"{'stage':28s}" + "".join(f"{h:>44s}" for h in heads)]
    exponents = {}
    for name in names:
        cells = []
        for e in entries:
            r = e["stages"].get(name)
            cells.append("-" if r is None else
                         f"{r['seconds']:.0f}s ({r['peak_rss_mib']:.0f}) {e['impressions'] / r['seconds']:,.0f}/s "
                         f"{e['items'] / r['seconds']:,.0f}/s" + ("" if r["exit"] == 0 else " FAILED"))
        lines.append(f"{name:28s}" + "".join(f"{c:>44s}" for c in cells))
        done = [e for e in entries if name in e["stages"] and e["stages"][name]["exit"] == 0]
        secs = [e["stages"][name]["seconds"] for e in done]
        exponents[name] = {"vs_impressions": exponent([e["impressions"] for e in done], secs),
                           "vs_items": exponent([e["items"] for e in done], secs),
                           "rss_vs_impressions": exponent([e["impressions"] for e in done],
                                                          [e["stages"][name]["peak_rss_mib"] for e in done])}
    totals = [sum(r["seconds"] for r in e["stages"].values()) for e in entries]
    peaks = [max(r["peak_rss_mib"] for r in e["stages"].values()) for e in entries]
    cells = [f"{t:.0f}s (peak {p:.0f})" + (" so far" if e.get("partial") else "")
             for t, p, e in zip(totals, peaks, entries, strict=True)]
    # a stopped run's total is not a run's cost
    whole = [i for i, e in enumerate(entries) if not e.get("partial") and not e.get("stopped_at")]
    entries_whole = [entries[i] for i in whole]
    totals, peaks = [totals[i] for i in whole], [peaks[i] for i in whole]
    lines.append(f"{'whole run':28s}" + "".join(f"{c:>44s}" for c in cells))
    exponents["whole run"] = {"vs_impressions": exponent([e["impressions"] for e in entries_whole], totals),
                              "vs_items": exponent([e["items"] for e in entries_whole], totals),
                              "rss_vs_impressions": exponent([e["impressions"] for e in entries_whole], peaks)}
    results["exponents"] = exponents
    lines += ["", "cost exponent (log-log slope; 1.0 = linear): seconds vs impressions, vs items; peak RSS vs impressions"]
    for name, ex in exponents.items():
        lines.append(f"{name:28s}" + "".join(f"{'-' if v is None else f'{v:.2f}':>10s}" for v in ex.values()))
    lines += ["", "quality on the evaluation window (CTR AUC; oracle = the world's true click probability)"]
    for e in entries:
        q, sids = e.get("quality", {}), e.get("sids", {})
        parts = [f"{v}: new {_num(m['new_auc'])} (oracle {_num(m['new_oracle_auc'])}, n={m['new_n']}), "
                 f"overall {_num(m['auc'])} (oracle {_num(m['oracle_auc'])})" for v, m in q.items()]
        lines.append(f"x{e['scale']:g}: " + "; ".join(parts or ["not evaluated"]))
        if e.get("remeasured_from"):
            lines.append(f"      stages from {e['remeasured_from']} on: measured again, in a later invocation")
        if sids:
            lines.append(f"      SIDs: collisions {sids['raw_collision_rate']:.2%}, unique {sids['unique_fraction']:.2%}, "
                         f"{sids.get('levels')} x {sids.get('codebook_size')} codes; gates {e.get('gates')}")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = sorted((e for e in results["scales"].values() if "impressions" in e), key=lambda e: e["scale"])
    fig, (secs, rss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in stage_names(entries):
        done = [e for e in entries if name in e["stages"] and e["stages"][name]["exit"] == 0]
        x = [e["impressions"] for e in done]
        secs.plot(x, [e["stages"][name]["seconds"] for e in done], marker="o", label=name)
        rss.plot(x, [e["stages"][name]["peak_rss_mib"] / 1024 for e in done], marker="o", label=name)
    for ax, what in ((secs, "seconds"), (rss, "peak RSS (GiB)")):
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("impressions"), ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    rss.axhline(8, color="red", linestyle="--", label="8 GiB target")
    secs.legend(fontsize=7)
    fig.suptitle("bench/bench_scale.py: `large` preset at several scales, 2-core machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


DAILY_VARIANTS = "saviorrec,content_frozen"  # the candidate and the model gate's baseline ranker


def measure_daily(scale: float, root: Path, seed_from: Path | None = None) -> dict:
    """Seconds per stage of the warm daily run at ``scale`` (the second step of a 2-step backtest),
    and the process's RSS over both steps (``logs/daily.rss.csv``; the stages run in this process).

    The backtest replays the last two days of the ``--scales`` world (the same 60 days, so the same
    catalog). ``seed_from``: a ``--scales`` workspace at this scale whose MiniLM vectors seed the
    backtest's text cache, so the cold first day skips encoding titles already encoded there; the
    titles of items first seen on the warm day are left out, so the warm day still encodes its own.
    """
    from saviorrec.backtest import run_backtest

    world = {k: v for k, v in scale_overrides(scale).items() if not k.startswith("split.")}
    folder = root / f"daily_{scale:g}"
    if folder.exists():  # a measurement, not a resume: an earlier run's finished steps would be kept
        shutil.rmtree(folder)
    params = load_params(REPO / "params.yaml", {"preset": "large", **world})
    warm_day = params.synthetic.start_date + dt.timedelta(days=params.synthetic.n_days - 1)
    if seed_from is not None:
        _seed_text_cache(seed_from, folder / ".cache" / "text_features", params.encoder.text_model, warm_day)
    overrides = {"preset": "large", **world, "backtest.root": str(folder), "backtest.days": 2,
                 "backtest.start": (warm_day - dt.timedelta(days=1)).isoformat(),
                 "backtest.variants": DAILY_VARIANTS.split(","), "backtest.gates": True}
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    started, events, stop = time.perf_counter(), [], threading.Event()

    def echo(line: str) -> None:  # the backtest's progress lines, timed to place its stages on the RSS trace
        events.append((round(time.perf_counter() - started, 1), line.strip()))
        print(line, flush=True)

    sampler = threading.Thread(target=trace_rss, daemon=True,
                               args=(os.getpid(), folder / "logs" / "daily.rss.csv", started, stop))
    sampler.start()
    try:
        report = run_backtest(REPO / "params.yaml", overrides, echo=echo)
    finally:
        stop.set()
        sampler.join()
    (folder / "logs" / "daily.events.json").write_text(json.dumps(events, indent=1))
    warm, cold = (_step_seconds([r for r in report["rows"] if r["step"] == step]) for step in (1, 0))
    rows = [r for r in report["rows"] if r["step"] == 1]
    return {"scale": scale, "warm_day": warm, "warm_total": round(sum(warm.values()), 1),
            "cold_day_total": round(sum(cold.values()), 1), "encoder_refreshed": rows[0]["encoder_refreshed"],
            "warm_starts": {r["variant"]: r["ranker_warm_start"] for r in rows},
            "text_cache_seeded_from": str(seed_from) if seed_from else None,
            "peak_rss_mib": _step_peaks(folder / "logs" / "daily.rss.csv", events)}


def _seed_text_cache(workspace: Path, cache: Path, model: str, warm_day: dt.date) -> None:
    """Copy ``workspace``'s cached MiniLM vectors to ``cache``, without the warm day's new items."""
    import numpy as np
    import pandas as pd

    from saviorrec.models.text import cache_keys, item_texts

    items = pd.read_parquet(workspace / "data" / "items.parquet")
    new = set(cache_keys(model, item_texts(items[pd.to_datetime(items["first_seen"]).dt.date >= warm_day])))
    keys, vectors = [], []
    for part in sorted((workspace / ".cache" / "text_features").glob("part-*.npz")):
        with np.load(part) as data:
            keep = np.array([k not in new for k in data["keys"].tolist()], dtype=bool)
            keys.append(data["keys"][keep])
            vectors.append(data["vectors"][keep])
    cache.mkdir(parents=True)
    np.savez(cache / "part-seed.npz", keys=np.concatenate(keys), vectors=np.concatenate(vectors))
    print(f"text cache seeded from {workspace}: {sum(map(len, keys))} titles, "
          f"{len(new)} first seen on the warm day {warm_day} left out", flush=True)


def _step_peaks(trace: Path, events: list[tuple[float, str]]) -> dict[str, float]:
    """Peak RSS (MiB) of the sampled trace before and after the first step's finishing line.

    One process runs both steps, so the warm day's figure includes what the cold day left on the
    heap: an upper bound for the DAG, whose tasks each run in a fresh process."""
    samples = [tuple(map(float, line.split(","))) for line in trace.read_text().splitlines()[1:]]
    split = next((t for t, line in events if line.startswith("step 1/")), math.inf)
    cold = [rss for t, rss in samples if t <= split]
    warm = [rss for t, rss in samples if t > split]
    return {"cold_day": max(cold, default=0.0), "warm_day": max(warm, default=0.0)}


def _step_seconds(rows: list[dict]) -> dict[str, float]:
    """One step's seconds per stage: shared stages once, each variant's ranker stages by name."""
    per_variant = ("train_ranker", "evaluate")
    stages = {k.removeprefix("seconds_"): v for k, v in rows[0].items()
              if k.startswith("seconds_") and k.removeprefix("seconds_") not in per_variant}
    for row in rows:
        stages |= {f"{name}[{row['variant']}]": row[f"seconds_{name}"] for name in per_variant}
    return stages


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="0.02,0.05", help="comma-separated multiples of the large preset")
    parser.add_argument("--root", type=Path, default=Path("/tmp/saviorrec-scale"), help="workspaces (kept)")
    parser.add_argument("--out", type=Path, default=REPO / "metrics" / "scale.json", help="results JSON (accumulates)")
    parser.add_argument("--threads", type=int, default=None, help="OMP/MKL threads per stage (default: all cores)")
    parser.add_argument("--report", action="store_true", help="only print the table and redraw the PNG from --out")
    parser.add_argument("--daily", type=float, default=None, help="only the warm daily run at this scale")
    parser.add_argument("--seed-from", type=Path, default=None,
                        help="with --daily: a --scales workspace at the same scale whose MiniLM vectors seed the "
                             "text cache (the warm day's new titles left out)")
    # no later than train_ranker: the id_only run after a whole run leaves its ranker in the folder
    # the candidate's evaluate would then score
    parser.add_argument("--from-stage", choices=STAGES[:STAGES.index("train_ranker") + 1], default=STAGES[0],
                        help="measure again from this stage on, in the kept workspaces of --scales (after a change "
                             "to that stage or a later one); the earlier stages' figures are kept")
    args = parser.parse_args(argv)

    results = json.loads(args.out.read_text()) if args.out.is_file() else {"scales": {}}
    if args.daily is not None:
        daily = measure_daily(args.daily, args.root, args.seed_from)
        results.setdefault("daily", {})[f"{args.daily:g}"] = daily
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"warm daily run at x{args.daily:g}: {daily['warm_total']:.0f} s (the cold first day: "
              f"{daily['cold_day_total']:.0f} s); encoder refreshed: {daily['encoder_refreshed']}; "
              f"rankers continued: {daily['warm_starts']}; peak RSS MiB {daily['peak_rss_mib']}")
        for stage, seconds in daily["warm_day"].items():
            print(f"  {stage:32s} {seconds:8.1f} s")
        return results

    if not args.report:
        for scale in (float(s) for s in args.scales.split(",")):
            earlier = results["scales"].get(f"{scale:g}") if args.from_stage != STAGES[0] else None
            if args.from_stage != STAGES[0] and (earlier is None or earlier.get("partial") or earlier.get("stopped_at")
                                                 or not (args.root / f"scale_{scale:g}").is_dir()):
                parser.error(f"--from-stage {args.from_stage}: x{scale:g} has no finished earlier measurement in "
                             f"{args.out} and workspace under {args.root}; measure it whole first")
            def keep(entry: dict, key: str = f"{scale:g}") -> None:
                results["scales"][key] = entry
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2))

            keep(measure_scale(scale, args.root, args.threads, earlier, args.from_stage, keep))
    text = report(results)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    if results["scales"]:
        plot(results, args.out.with_suffix(".png"))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return results


if __name__ == "__main__":
    main()
