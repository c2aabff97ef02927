"""Compare ranker variants over settings that stress cold start: one command, every setting.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    # the default list (DEFAULT_SETTINGS below), 3 seeds, id_only,content_frozen,saviorrec:
    .venv/bin/python bench/bench_cold_start.py --root /tmp/sr/cold --out /tmp/sr/cold.json
    # chosen settings, seeds and variants; --set goes to every workspace (and the ranker stages)
    .venv/bin/python bench/bench_cold_start.py --settings syn-tiny,ml-small --seeds 1 --threads 1 \\
        --root /tmp/sr/cold --out /tmp/sr/cold_smoke.json
    .venv/bin/python bench/bench_cold_start.py --settings syn-large-0.05 --seeds 2 --set ranker.lr=0.004
    .venv/bin/python bench/bench_cold_start.py --list          # every setting with what it is

The default list (syn-tiny, syn-default, ml-dev, ml-early, ml-small, ml-cut-2010) is sized for a
2-core laptop: one seed of syn-tiny takes ~35 s and one of ml-small ~45 s on 1 thread (text vectors
cached); the others were not timed here, the estimate for the list with 3 seeds is ~30-40 min.

For every setting and seed (``seed = params.seed + i``) it builds a workspace
``ROOT/<setting>/seed_<seed>`` and runs ingest -> train_encoder -> build_codebook, then
train_ranker -> evaluate per variant, all through ``saviorrec.stages.run_stage`` (the functions of
bench/compare_variants.py). With ``--root``, a rerun reuses a workspace's upstream stages when its
resolved params.yaml is unchanged and they had finished (delete the folder, or pass ``--fresh``,
after a code change). MiniLM text vectors are cached once for all settings (ROOT/.cache).

Per setting it prints: the data (impressions, items, the evaluation window's new bucket), the
variant table of CTR AUC on ``new`` items and overall (mean +- std over seeds, worst seed, the
synthetic oracle), whether saviorrec >= max(content_frozen, id_only) on new items on every seed
(the margin per seed), and the encoder's hit@k numbers from reports/details/encoder.json (every
``hit_at_*`` key and every number under ``retrieval``, mean over seeds). ``--out`` gets one JSON
with all of it (per setting: params overrides, per-seed metrics of every bucket, encoder numbers,
timings, summary). A setting that fails is reported and the others still run (exit status 1).

Settings (``--list``). MovieLens ones read the folder of params ``data.path`` (or ``--set
data.path=DIR``, relative to the repository) and are skipped, with the reason printed, when it
has no ratings.csv. Their cut dates come from the dev folder (ratings to 2015-01-01; 467 users
with ratings, 7,361 movies); counts are for seed 20250801, "new" = first listed in the window
with no training impression, and "with a click" = at least one rating >= 4 in the window:

    setting      period / sample                        train < | eval window   users items  new items (with a click)
    ml-dev       whole folder                            2012    | 2012-2014      467   7361   680 (299)
    ml-early     since 2000, until 2005 (late-start log) 2003    | 2003-2004      122   4284  1025 (458)
    ml-small     until 2006, 1,500 items, 250 users,     2003    | 2003-2005      250   1500   356 (204)
                 title + genres only                                                  (seeds 2-3: 350/450 (208/200))
    ml-cut-2008  until 2010                              2008    | 2008-2009      384   6294   546 (252)
    ml-cut-2010  until 2012                              2010    | 2010-2011      421   6679   385 (199)
    ml-cut-2013  whole folder                            2013    | 2013-2014      467   7361   363 (141)

Two-year windows keep >= ~140 new films with a click in each: after 2008 the folder lists only
~150-300 new films a year and about half of those in a window get a click. ml-early keeps a short
log (3 years of history, 17,461 training ratings by 91 users) and has the most new films of any
window (2003-2004 lists ~500 a year). ml-small samples uniformly (seeded) so new and long-tail
films keep their share of a small catalog; it stops in 2006 because the folder has 296 users
before then ("a few hundred"), and 250 of them are sampled.
first_seen comes from the whole folder, so films listed before ``since`` are never "new".

Synthetic: ``syn-tiny`` (the tiny preset's world at twice its size: 300 users, 300 + 30/day items,
6 topics, 4 communities, 30 brands, 10 days, evaluate the last 3; the default preset's budgets), ``syn-default`` (default preset, evaluate the last 6 days, as docs/results.md), and
``syn-large-<s>`` = the ``large`` preset (60 days, evaluate the last 6) with n_users,
n_initial_items, new_items_per_day, impressions_per_day and n_brands multiplied by s (days kept;
bench/generate_large.py's ``scaled_world``) and the training budgets scaled to the data: the
encoder's pairs per epoch follow the catalog size (by itself with ``encoder.pairs_per_epoch:
null``; a fixed value is scaled here in proportion), the ranker makes one pass over however many
impressions there are, and the encoder, codebook and ranker batch sizes double for every 4x of
catalog (ranker: impressions) over the default preset, capped at 8x. syn-large-* are opt-in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import compare_variants as cv  # noqa: E402  (puts the repository root on sys.path)
from generate_large import scaled_world  # noqa: E402

from saviorrec.config import Params, load_params, parse_set  # noqa: E402

REPO = cv.REPO
PARAMS = REPO / "params.yaml"
MARKER = ".bench_upstream.json"  # written when ingest -> build_codebook finished: params hash + ingest summary
DEFAULT_VARIANTS = "id_only,content_frozen,saviorrec"
CHECKED, AGAINST = "saviorrec", ("content_frozen", "id_only")


@dataclass(frozen=True)
class Setting:
    preset: str
    overrides: dict
    about: str
    scale: float | None = None  # the `large` preset's world multiplied by this, budgets scaled to it
    in_default: bool = True

    @property
    def movielens(self) -> bool:
        return self.preset == "movielens"


def _ml(train_end: str, eval_end: str, **movielens) -> dict:
    return {"split.train_end": train_end, "split.eval_end": eval_end,
            **{f"movielens.{k}": v for k, v in movielens.items()}}


SYN_LARGE_SPLIT = {"split.train_end": "2024-02-24", "split.eval_end": "2024-03-01"}  # large: 60 days from 2024-01-01

SETTINGS: dict[str, Setting] = {
    # the tiny preset's world (few topics, communities and brands, so 30,000 impressions can reveal
    # them) at twice its size, trained with the default preset's budgets, which scale with the data
    # by themselves (encoder.pairs_per_item, ranker.min_steps_per_epoch), not the tiny preset's test budgets
    "syn-tiny": Setting("default", {
        "synthetic.n_days": 10, "synthetic.n_users": 300, "synthetic.n_initial_items": 300,
        "synthetic.new_items_per_day": 30, "synthetic.impressions_per_day": 3000, "synthetic.n_brands": 30,
        "synthetic.n_communities": 4, "synthetic.n_topics": 6, "synthetic.n_categories": 6,
        "split.train_end": "2024-01-08", "split.eval_end": "2024-01-11"},
        "tiny world x2 (300 users, 300 + 30/day items, 6 topics, 4 communities, 30 brands), default budgets, "
        "10 days, evaluate the last 3"),
    "syn-default": Setting("default", {"split.train_end": "2024-01-25", "split.eval_end": "2024-01-31"},
                           "default preset, evaluate the last 6 days"),
    "ml-dev": Setting("movielens", _ml("2012-01-01", "2015-01-01"), "MovieLens dev folder as the preset"),
    "ml-early": Setting("movielens", _ml("2003-01-01", "2005-01-01", since="2000-01-01", until="2005-01-01"),
                        "MovieLens 2000-2004 only (a log that starts late), evaluate 2003-2004"),
    "ml-small": Setting("movielens", _ml("2003-01-01", "2006-01-01", until="2006-01-01", max_items=1500,
                                         max_users=250, content="title_genres"),
                        "MovieLens to 2006, 1,500 sampled films, 250 sampled users, title + genres only"),
    "ml-cut-2008": Setting("movielens", _ml("2008-01-01", "2010-01-01", until="2010-01-01"),
                           "MovieLens to 2010, evaluate 2008-2009", in_default=False),
    "ml-cut-2010": Setting("movielens", _ml("2010-01-01", "2012-01-01", until="2012-01-01"),
                           "MovieLens to 2012, evaluate 2010-2011"),
    "ml-cut-2013": Setting("movielens", _ml("2013-01-01", "2015-01-01"), "MovieLens, evaluate 2013-2014",
                           in_default=False),
    **{f"syn-large-{s:g}": Setting("large", SYN_LARGE_SPLIT, f"large preset x{s:g} (world and budgets), "
                                   "evaluate the last 6 days", scale=s, in_default=False)
       for s in (0.02, 0.05, 0.2)},
}
DEFAULT_SETTINGS = [name for name, s in SETTINGS.items() if s.in_default]


# --- settings -> workspace params ------------------------------------------------------------

def _items(p: Params) -> int:
    return p.synthetic.n_initial_items + p.synthetic.new_items_per_day * p.synthetic.n_days


def _batch_factor(ratio: float) -> int:
    """x2 per 4x of data over the reference, 1..8."""
    return 2 ** min(3, max(0, int(math.log(ratio, 4)))) if ratio > 1 else 1


def scaled_budgets(world: Params, reference: Params) -> dict:
    """Training budgets for ``world`` scaled from ``reference`` (the default preset) by data size."""
    items = _items(world) / _items(reference)
    imps = (world.synthetic.impressions_per_day * world.synthetic.n_days
            / (reference.synthetic.impressions_per_day * reference.synthetic.n_days))
    enc, cb, rk = reference.encoder, reference.codebook, reference.ranker
    enc_batch = enc.batch_size * _batch_factor(items)
    out = {"encoder.batch_size": enc_batch,
           "codebook.batch_size": cb.batch_size * _batch_factor(items),
           "ranker.batch_size": rk.batch_size * _batch_factor(imps)}
    if enc.pairs_per_epoch:
        out["encoder.pairs_per_epoch"] = math.ceil(enc.pairs_per_epoch * items / enc_batch) * enc_batch
    return out


def setting_overrides(setting: Setting, params_file: Path = PARAMS) -> dict:
    """The setting's param overrides (a scaled `large` world with its budgets computed here)."""
    overrides = dict(setting.overrides)
    if setting.scale is not None:
        base = load_params(params_file, {"preset": setting.preset})
        world = {f"synthetic.{k}": v for k, v in scaled_world(base.synthetic, setting.scale).items()}
        scaled = load_params(params_file, {"preset": setting.preset, **world})
        reference = load_params(params_file, {"preset": "default"})
        overrides = {**world, **scaled_budgets(scaled, reference), **overrides}
    return overrides


def movielens_folder(extra: dict, params_file: Path = PARAMS) -> Path:
    raw = extra.get("data.path") or load_params(params_file).data.path
    path = Path(raw)
    return path if path.is_absolute() else (params_file.parent / path).resolve()


# --- one workspace ----------------------------------------------------------------------------

def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prepare(root: Path, preset: str, overrides: dict, fresh: bool) -> dict | None:
    """Write the workspace params; the upstream marker when its finished upstream stages can be reused."""
    params_file, marker = root / "params.yaml", root / MARKER
    before = params_file.read_text() if params_file.is_file() else None
    cv.make_workspace(root, preset, overrides)
    text = params_file.read_text()
    if not fresh and before == text and marker.is_file():
        found = json.loads(marker.read_text())
        if found.get("params_sha256") == _sha(text):
            return found
    marker.unlink(missing_ok=True)
    return None


def finish_upstream(root: Path, summaries: dict) -> dict:
    ingest = summaries.get("ingest", {})
    marker = {"params_sha256": _sha((root / "params.yaml").read_text()),
              "ingest": {k: ingest.get(k) for k in ("impressions", "items", "days", "first_day", "last_day", "clicks")}}
    (root / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return marker


def encoder_numbers(root: Path) -> dict[str, float]:
    """Every numeric ``hit_at_*`` entry of reports/details/encoder.json and every number under its ``retrieval``."""
    path = root / "reports" / "details" / "encoder.json"
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text())
    out: dict[str, float] = {}

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}", value)
        elif number(node):
            out[prefix] = node

    for key, value in metrics.items():
        if key.startswith("hit_at_") and number(value):
            out[key] = value
    walk("retrieval", metrics.get("retrieval"))
    return out


# --- summaries --------------------------------------------------------------------------------

def stats(per_seed: dict[str, float | None]) -> dict | None:
    values = {s: v for s, v in per_seed.items() if v is not None}
    if not values:
        return None
    worst = min(values, key=values.get)
    vals = list(values.values())
    return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "worst": values[worst], "worst_seed": worst, "n": len(vals)}


def summarize_setting(results: dict, seeds: list[str]) -> dict:
    """variant -> bucket (new, overall) -> stats of ctr_auc; oracle; the saviorrec check."""
    table = {}
    for variant, by_seed in results.items():
        table[variant] = {b: stats({s: by_seed.get(s, {}).get(b, {}).get("ctr_auc") for s in seeds})
                          for b in ("new", "overall")}
    first = next(iter(results.values()), {})
    table["oracle"] = {b: stats({s: first.get(s, {}).get(b, {}).get("ctr_oracle_auc") for s in seeds})
                       for b in ("new", "overall")}
    return {"ctr_auc": table, "check": check(results, seeds)}


def check(results: dict, seeds: list[str]) -> dict:
    """saviorrec >= max(content_frozen, id_only) on new-item CTR AUC, per seed."""
    against = [v for v in AGAINST if v in results]
    if CHECKED not in results or not against:
        return {"passed": None, "reason": f"needs {CHECKED} and one of {list(AGAINST)} in --variants"}

    def new(variant: str, seed: str):
        return results[variant].get(seed, {}).get("new", {}).get("ctr_auc")

    margins = {}
    for seed in seeds:
        ours, theirs = new(CHECKED, seed), [new(v, seed) for v in against]
        margins[seed] = None if ours is None or None in theirs else ours - max(theirs)
    done = [m for m in margins.values() if m is not None]
    passed = bool(done) and len(done) == len(seeds) and all(m >= 0 for m in done)
    return {"against": against, "margin_per_seed": margins, "passed": passed,
            "seeds_passed": sum(m >= 0 for m in done), "worst_margin": min(done) if done else None}


def _cell(s: dict | None) -> str:
    if s is None:
        return f"{'undefined':35s}"
    return f"{s['mean']:.4f} +-{s['std']:.4f}  {s['worst']:.4f} ({s['worst_seed']})".ljust(35)


def format_setting(name: str, entry: dict) -> str:
    lines = [f"== {name}: {entry['about']}"]
    if entry.get("skipped"):
        return "\n".join([*lines, f"   skipped: {entry['skipped']}"])
    if entry.get("error"):
        lines.append(f"   FAILED: {entry['error']}")
    for seed, data in entry.get("data", {}).items():
        metrics = next((r[seed] for r in entry["results"].values() if seed in r), None)
        window = (f"; eval window {metrics['overall']['n']:,} imps, new bucket {metrics['new']['n']:,} imps / "
                  f"{metrics['new']['positives']:,} clicks" if metrics else "")
        lines.append(f"   [seed {seed}] data: {data.get('impressions') or 0:,} impressions, {data.get('items') or 0:,} items, "
                     f"{data.get('days')} days{window}")
    summary = entry.get("summary")
    if not summary:
        return "\n".join(lines)
    lines.append(f"   {'CTR AUC':16s}  {'new: mean +- std  worst (seed)':35s}  {'overall: mean +- std  worst (seed)':35s}")
    for variant, row in summary["ctr_auc"].items():
        if variant == "oracle" and row["new"] is None and row["overall"] is None:
            continue
        lines.append(f"   {variant:16s}  {_cell(row['new'])}  {_cell(row['overall'])}")
    chk = summary["check"]
    if chk["passed"] is None:
        lines.append(f"   check: {chk['reason']}")
    else:
        margins = ", ".join(f"{s}: {'undefined' if m is None else f'{100 * m:+.2f}'}" for s, m in chk["margin_per_seed"].items())
        lines.append(f"   {CHECKED} >= max({', '.join(chk['against'])}) on new, every seed: "
                     f"{'PASS' if chk['passed'] else 'FAIL'} ({chk['seeds_passed']}/{len(chk['margin_per_seed'])} seeds; "
                     f"margin in points per seed {margins})")
    enc = entry.get("encoder", {})
    keys = sorted({k for numbers in enc.values() for k in numbers})
    if keys:
        groups: dict[str, list[str]] = {}
        for key in keys:
            head, _, leaf = key.rpartition(".")
            vals = [n[key] for n in enc.values() if key in n]
            value = statistics.mean(vals)
            groups.setdefault(head or "hit@k", []).append(f"{leaf}={value:.4g}" if isinstance(value, float) else f"{leaf}={value}")
        lines.append(f"   encoder (reports/details/encoder.json, mean over {len(enc)} seed(s)):")
        lines.extend(f"     {head}: {' '.join(parts)}" for head, parts in groups.items())
    else:
        lines.append("   encoder: no hit@k numbers in reports/details/encoder.json")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------

def run_setting(entry: dict, name: str, setting: Setting, root: Path, seeds: list[int], variants: list[str],
                extra: dict, common: dict, fresh: bool, save) -> None:
    """Fill ``entry`` (saved by ``save`` after each variant) with the setting's runs and summary."""
    overrides = setting_overrides(setting)
    entry.update({"about": setting.about, "preset": setting.preset, "overrides": overrides,
                  "seeds": [str(s) for s in seeds], "results": {v: {} for v in variants}, "data": {}, "encoder": {},
                  "timings": {}})
    if setting.movielens:
        folder = movielens_folder(extra)
        if not (folder / "ratings.csv").is_file():
            entry["skipped"] = f"MovieLens folder {folder} has no ratings.csv (set data.path, e.g. --set data.path=DIR)"
            return
        overrides = {**overrides, "data.path": str(folder)}  # absolute: the workspace is elsewhere
    timings = entry["timings"]
    try:
        for seed in seeds:
            ws = root / name / f"seed_{seed}"
            params = {**overrides, **common, **extra, "seed": seed}
            if setting.movielens:
                params["data.path"] = overrides["data.path"]  # a relative --set data.path, resolved
            marker = prepare(ws, setting.preset, params, fresh)
            if marker:
                print(f"[{name} seed {seed}] upstream stages reused from {ws}", flush=True)
            else:
                print(f"[{name} seed {seed}] upstream stages in {ws}", flush=True)
                marker = finish_upstream(ws, cv.run_upstream(ws, seed, timings))
            entry["data"][str(seed)] = marker["ingest"]
            entry["encoder"][str(seed)] = encoder_numbers(ws)
            for variant, metrics in cv.run_variants(ws, variants, seed, extra, timings):
                entry["results"][variant][str(seed)] = metrics
                save()
    except Exception as exc:  # report it, go on with the other settings
        traceback.print_exc()
        entry["error"] = f"{type(exc).__name__}: {exc}"
    entry["summary"] = summarize_setting(entry["results"], entry["seeds"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=",".join(DEFAULT_SETTINGS),
                        help=f"comma-separated (default: {','.join(DEFAULT_SETTINGS)}; all: --list)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per setting: params.seed + 0 .. N-1")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated ranker variants")
    parser.add_argument("--root", default=None, help="keep the workspaces here, ROOT/<setting>/seed_<seed> "
                                                     "(default: a temp dir, removed)")
    parser.add_argument("--fresh", action="store_true", help="rerun upstream stages even where --root has them")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="param override for every setting (after the setting's own)")
    parser.add_argument("--out", default="cold_start.json")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    args = parser.parse_args(argv)

    if args.list:
        for name, s in SETTINGS.items():
            print(f"{name:16s} {'default' if s.in_default else 'opt-in ':8s} preset {s.preset:9s} {s.about}")
        return {}
    names = [n.strip() for n in args.settings.split(",") if n.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := sorted(set(names) - set(SETTINGS)):
        parser.error(f"unknown settings {unknown}; choose from {list(SETTINGS)}")
    if unknown := sorted(set(variants) - set(cv.ALL_VARIANTS)):
        parser.error(f"unknown variants {unknown}; choose from {cv.ALL_VARIANTS}")
    extra = parse_set(args.set)

    import torch

    torch.set_num_threads(args.threads)
    seeds = cv.seed_list(args.seeds)
    tmp = tempfile.TemporaryDirectory(prefix="bench_cold_start_") if args.root is None else None
    root = Path(tmp.name if tmp else args.root).resolve()
    common = {"paths.text_cache": str(root / ".cache" / "text_features")}  # MiniLM vectors, shared
    report: dict = {"variants": variants, "seeds": [str(s) for s in seeds], "extra": extra, "settings": {}}
    out = Path(args.out)

    def save() -> None:
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    started = time.perf_counter()
    try:
        for name in names:
            print(f"\n### {name}: {SETTINGS[name].about}", flush=True)
            t0 = time.perf_counter()
            entry = report["settings"][name] = {}
            run_setting(entry, name, SETTINGS[name], root, seeds, variants, extra, common, args.fresh, save)
            entry["wall_s"] = round(time.perf_counter() - t0, 1)
            save()
            print(format_setting(name, entry), flush=True)
    finally:
        if tmp:
            tmp.cleanup()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    save()
    print(f"\n==================== all settings ({len(seeds)} seed(s), {report['wall_s']}s) ====================")
    for name, entry in report["settings"].items():
        print(format_setting(name, entry))
    print(f"\nwrote {out}")
    failed = [n for n, e in report["settings"].items() if e.get("error")]
    if failed:
        print(f"settings that failed: {', '.join(failed)}")
        sys.exit(1)
    return report


if __name__ == "__main__":
    main()
