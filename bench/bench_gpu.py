"""Training throughput on a GPU against 2 CPU cores: the ranker and the encoder on `large` x0.2.

One short prepared script for a GPU machine (the `device` tool of a session, or any CUDA host):

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    .venv/bin/python bench/bench_gpu.py --root runs/gpu_bench                 # scale 0.2: build, then GPU vs CPU
    .venv/bin/python bench/bench_gpu.py --root runs/gpu_bench --full-build    # + the full `large` cold build, timed
    .venv/bin/python bench/bench_gpu.py --scale 0.001 --cpu-only              # checks the script here (no GPU)

``runs/`` is git-ignored, so a machine kept warm between two calls keeps the built workspace: a
first call that runs out of time still leaves the finished stages for the second one.

1. Builds ``ROOT/scale_<s>`` as bench/bench_scale.py does (the `large` world x ``s``, budgets scaled
   to it) and runs ``ingest``, ``train_encoder`` and ``build_codebook`` as ``python -m pipelines.<stage>``
   children (on the GPU when there is one: ``accelerator: auto``), timed, with 1 encoder and 1
   codebook epoch (``--full-budget``: the preset's). A folder already built is reused.
2. Ranker: ``--gpu-steps`` / ``--cpu-steps`` batches of the saviorrec ranker's training stream (``DayStream``,
   ``ranker.batch_size``) are built once, then trained with the stage's own Trainer
   (``ranker_training.make_trainer``: the ``ranker.devices/strategy/precision`` path) on cuda with
   ``bf16-mixed`` and on the CPU with 2 threads in ``32-true``. Building the batches is CPU work in
   both cases and is reported apart (``stream_samples_per_s``).
3. Encoder: the same for the contrastive encoder (``ContrastiveEncoder`` + ``PairDataModule`` of
   fit_encoder) on the workspace's mined pairs and item inputs, as many steps.
4. Prints samples/s of each run and the GPU / CPU ratios (target: >= 20x for the ranker) as JSON,
   also written to ``--out``.

The first ``--warmup`` steps of every run are not timed (CUDA start-up, allocator, first kernels).
Without a CUDA GPU it says so and exits 0 having done nothing, unless ``--cpu-only`` (the CPU half
alone, on whatever size is given: a check of the script, not a measurement of the GPU).
``--full-build`` then times every stage of the full `large` cold build up to validate_model
(bench/bench_scale.py at scale 1.0, its own folder and metrics file; hours on CPUs only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_scale as scale_bench  # noqa: E402  (puts the repository root on sys.path)

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as fit_encoder: deterministic cuBLAS
import lightning as L  # noqa: E402
import torch  # noqa: E402

REPO = scale_bench.REPO
BUILD = ["ingest", "train_encoder", "build_codebook"]  # what the ranker and encoder runs read
# The build only prepares the runs' inputs (item vectors, SIDs, pairs): one epoch of each model is
# enough, the throughput of a training step does not depend on how well they trained.
QUICK_BUILD = ["encoder.epochs=1", "codebook.epochs=1"]
CPU_THREADS = 2


def build(scale: float, root: Path, sets: list[str]) -> tuple[Path, dict]:
    """``root/scale_<s>`` with the stages the runs read; seconds of each stage run now (none: reused)."""
    from saviorrec.config import write_workspace_params

    ws = root / f"scale_{scale:g}"
    logs = ws / "bench_logs"
    if not (ws / "params.yaml").is_file():
        overrides = {**scale_bench.scale_overrides(scale), "paths.text_cache": str(ws / ".cache" / "text_features")}
        write_workspace_params(ws, {"preset": "large", **overrides}, base=REPO / "params.yaml")
    logs.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for stage in BUILD:
        done = logs / f"{stage}.done"  # a stage that finished in an earlier call is not run again
        if done.is_file():
            continue
        print(f"building {ws.name}: {stage} ...", flush=True)
        run = scale_bench.run_child(stage, ws, logs / f"{stage}.log", sets, None)
        if run["exit"] != 0:
            raise SystemExit(f"{stage} failed (exit {run['exit']}); see {run['log']}")
        seconds[stage] = run["seconds"]
        done.write_text(json.dumps(run) + "\n")
    return ws, seconds


class StepTimer(L.Callback):
    """Seconds and samples from the start of step ``warmup`` to the end of the fit (GPU synchronised)."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = self.end = None
        self.samples = 0

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        # batches, not global_step: that counts every optimizer's steps (two a batch with sparse IDs)
        if trainer.fit_loop.epoch_loop.total_batch_idx == self.warmup and self.start is None:
            self._sync()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.start is not None:
            self.samples += len(batch["click"]) if isinstance(batch, dict) else len(batch[0])

    def on_train_end(self, trainer, module):
        self._sync()
        self.end = time.perf_counter()


def timed_fit(trainer: L.Trainer, module: L.LightningModule, data, warmup: int) -> dict:
    """Fit ``module`` on ``data`` (a DataModule or a DataLoader); samples/s after ``warmup`` steps."""
    timer = StepTimer(warmup)
    trainer.callbacks.append(timer)
    if isinstance(data, L.LightningDataModule):
        trainer.fit(module, datamodule=data)
    else:
        trainer.fit(module, train_dataloaders=data)
    if timer.start is None or not timer.samples:
        raise SystemExit(f"fewer than {warmup + 1} steps ran: raise the step count or lower --warmup")
    seconds = timer.end - timer.start
    return {"steps": trainer.fit_loop.epoch_loop.total_batch_idx + 1 - warmup, "samples": timer.samples, "seconds": round(seconds, 3),
            "samples_per_s": round(timer.samples / seconds, 1)}


def ranker_runs(ws: Path, steps: int, warmup: int, devices: list[str]) -> dict:
    from torch.utils.data import DataLoader, IterableDataset

    from saviorrec.config import load_params
    from saviorrec.data.io import read_items
    from saviorrec.data.ranker_datamodule import DayStream
    from saviorrec.data.samples import IdVocab, SampleBuilder
    from saviorrec.models.ranker_module import RankerModule
    from saviorrec.models.ranker_training import build_config, counter_meta, make_trainer, ranker_features
    from saviorrec.models.variants import VARIANTS
    from saviorrec.workspace import Workspace

    class Batches(IterableDataset):
        def __init__(self, batches):
            self.batches = batches

        def __iter__(self):
            return iter(self.batches)

    params = load_params(ws / "params.yaml", overrides={"ranker.variant": "saviorrec"})
    work = Workspace(ws, params)
    rp, spec = params.ranker, VARIANTS["saviorrec"]
    train_end, _ = work.split()
    items = read_items(work.path("items"))
    cat_vocab = SampleBuilder(items, rp.seq_len).cat_vocab
    vocab = IdVocab(items["item_id"])
    features, _ = ranker_features(params, work, spec, items, cat_vocab, train_end)
    config = build_config(params, "saviorrec", vocab, cat_vocab, features).to_dict()
    stream = DayStream(work.path("events"), items, features, vocab, rp.seq_len, rp.batch_size, rp.heuristic_prior_strength,
                       end=train_end, seed=params.seed,
                       clusters=features.counter_clusters(sid=counter_meta(rp, spec)["sid_counters"]))
    started, batches = time.perf_counter(), []
    for batch in stream:
        batches.append(batch)
        if len(batches) >= steps:
            break
    built = sum(len(b["click"]) for b in batches)
    result = {"batch_size": rp.batch_size, "batches": len(batches),
              "stream_samples_per_s": round(built / (time.perf_counter() - started), 1)}
    for device in devices:
        precision = "bf16-mixed" if device == "cuda" else "32-true"
        run_params = rp.model_copy(update={"accelerator": "gpu" if device == "cuda" else "cpu", "precision": precision,
                                           "devices": 1, "strategy": "auto"})
        trainer = make_trainer(run_params, max_epochs=1)  # the stage's own Trainer (no checkpoint folder)
        L.seed_everything(params.seed, verbose=False)
        module = RankerModule(config, lr=rp.lr, weight_decay=rp.weight_decay, ctcvr_weight=rp.ctcvr_weight)
        loader = DataLoader(Batches(batches), batch_size=None)
        result[device] = {"precision": precision, **timed_fit(trainer, module, loader, warmup)}
        print(f"ranker on {device}: {result[device]}", flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    return result


def encoder_runs(ws: Path, steps: int, warmup: int, devices: list[str]) -> dict:
    import numpy as np
    import pandas as pd

    from saviorrec.config import load_params
    from saviorrec.data import io
    from saviorrec.data.pairs import listed_before, read_pairs
    from saviorrec.models.encoder import ItemEncoder, encoder_config
    from saviorrec.models.encoder_module import ContrastiveEncoder, PairDataModule
    from saviorrec.models.encoder_training import _backbone_width
    from saviorrec.models.text import text_features
    from saviorrec.workspace import Workspace

    params = load_params(ws / "params.yaml")
    work = Workspace(ws, params)
    cfg = params.encoder
    train_end, _ = work.split()
    items = io.read_items(work.path("items")).sort_values("item_id", kind="stable").reset_index(drop=True)
    text = text_features(items, cfg, work.path("text_cache"))  # the cache train_encoder filled
    is_listed = listed_before(items, train_end)
    L.seed_everything(params.seed, verbose=False)
    template = ItemEncoder(encoder_config(cfg, items.loc[is_listed], None, _backbone_width(cfg)))
    if template.content_residual:
        template.set_text_basis(text[is_listed])
    features = template.featurize(items, work.path("data"), text_vectors=text)
    train, _ = read_pairs(work.path("pairs"))
    row_of = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())
    rows = np.stack([row_of.reindex(train["trigger"]).to_numpy(), row_of.reindex(train["target"]).to_numpy()], 1).astype(np.int64)
    result = {"batch_size": cfg.batch_size, "items": len(items), "pairs": len(rows)}
    for device in devices:
        precision = "bf16-mixed" if device == "cuda" else "32-true"
        L.seed_everything(params.seed, verbose=False)
        encoder = ItemEncoder(template.config)
        encoder.load_state_dict(template.state_dict())
        module = ContrastiveEncoder(encoder, features, cfg.temperature, cfg.lr, cfg.weight_decay, seed=params.seed)
        data = PairDataModule(rows, train["weight"].to_numpy(), cfg.batch_size, params.seed,
                              per_epoch=(steps + 1) * cfg.batch_size)
        result[device] = {"precision": precision}
        for deterministic in (True, False):  # fit_encoder's setting first; a GPU may lack a deterministic kernel
            # fit_encoder's Trainer settings, on one device, for a fixed number of steps
            trainer = L.Trainer(max_steps=steps, accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                                precision=precision, deterministic=deterministic, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
            try:
                result[device].update(deterministic=deterministic, **timed_fit(trainer, module, data, warmup))
                break
            except RuntimeError as err:  # reported, then measured without determinism
                result[device]["deterministic_error"] = str(err).splitlines()[0][:300]
                if not deterministic:
                    raise
        print(f"encoder on {device}: {result[device]}", flush=True)
    return result


def ratio(runs: dict) -> float | None:
    if "cuda" in runs and "cpu" in runs:
        return round(runs["cuda"]["samples_per_s"] / runs["cpu"]["samples_per_s"], 1)
    return None


def full_build(root: Path) -> dict:
    """The full `large` cold build, stage by stage (bench_scale.py at 1.0 in its own child)."""
    out = root / "scale_full.json"
    started = time.perf_counter()
    cmd = [sys.executable, str(BENCH / "bench_scale.py"), "--scales", "1.0", "--root", str(root / "full"), "--out", str(out)]
    status = subprocess.run(cmd, cwd=REPO).returncode
    return {"exit": status, "seconds": round(time.perf_counter() - started, 1), "metrics": str(out)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.2, help="scale of the `large` world (default 0.2)")
    parser.add_argument("--root", default=None, help="folder of the workspaces (default: a temporary one)")
    parser.add_argument("--gpu-steps", type=int, default=200, help="training steps of each GPU run")
    parser.add_argument("--cpu-steps", type=int, default=40, help="training steps of each CPU run")
    parser.add_argument("--full-budget", action="store_true",
                        help="build with the preset's epochs (default: 1 encoder and 1 codebook epoch)")
    parser.add_argument("--warmup", type=int, default=10, help="steps of each run not timed")
    parser.add_argument("--cpu-only", action="store_true", help="no GPU: run the CPU half alone (a check of the script)")
    parser.add_argument("--full-build", action="store_true", help="also time the full `large` cold build")
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args(argv)

    gpu = torch.cuda.is_available()
    if not gpu and not args.cpu_only:
        print("no CUDA GPU on this machine: nothing to compare. Run this on a GPU host "
              "(--cpu-only checks the script's CPU half).")
        return {}

    devices = ["cuda", "cpu"] if gpu and not args.cpu_only else ["cpu"]
    tmp = tempfile.TemporaryDirectory(prefix="bench_gpu_") if args.root is None else None
    root = Path(args.root or tmp.name).resolve()
    started = time.perf_counter()
    ws, build_seconds = build(args.scale, root, [] if args.full_budget else QUICK_BUILD)
    cpu_threads = torch.get_num_threads()
    result = {"scale": args.scale, "gpu": torch.cuda.get_device_name(0) if gpu else None,
              "build_seconds": build_seconds, "cpu_threads": CPU_THREADS}

    # the CPU runs get 2 threads (the pipeline's 2-core budget); the GPU runs keep the host's
    def runs(fn):
        out = {}
        for device in devices:
            torch.set_num_threads(CPU_THREADS if device == "cpu" else cpu_threads)
            out.update(fn(ws, args.cpu_steps if device == "cpu" else args.gpu_steps, args.warmup, [device]))
        return out

    result["ranker"] = runs(ranker_runs)
    result["encoder"] = runs(encoder_runs)
    result["ranker_gpu_over_cpu"] = ratio(result["ranker"])
    result["encoder_gpu_over_cpu"] = ratio(result["encoder"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.full_build:
        result["full_large_cold_build"] = full_build(root)
    print(json.dumps(result, indent=2))
    if result["ranker_gpu_over_cpu"] is not None:
        target = "meets" if result["ranker_gpu_over_cpu"] >= 20 else "misses"
        print(f"ranker GPU/CPU {result['ranker_gpu_over_cpu']}x ({target} the 20x target), "
              f"encoder {result['encoder_gpu_over_cpu']}x")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if tmp:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
