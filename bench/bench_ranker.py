"""Ranker training throughput: Lightning vs a plain PyTorch loop on the same model and data; scoring latency.

    python bench/bench_ranker.py --workdir WS [--variant saviorrec] [--epochs 2]

``WS`` is a workspace whose upstream stages ran (events, items, embeddings, sids, ...), e.g.
one kept by ``bench/compare_variants.py --workdir``. Without ``--workdir`` a tiny workspace
is built first (ingest -> train_encoder -> build_codebook). The training batches are
materialised once and fed to both loops, so the ratio measures the training loop alone;
runs alternate (plain, Lightning, plain, Lightning) and the best of each is kept.
Prints samples/s of each, the ratio (target >= 0.9), and the scoring latency per 1,000
candidates (features + forward). Uses the GPU when present, unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, IterableDataset  # noqa: E402

from bench.compare_variants import UPSTREAM, make_workspace, run_in  # noqa: E402
from saviorrec.config import load_params  # noqa: E402
from saviorrec.data.io import read_events, read_items  # noqa: E402
from saviorrec.data.ranker_datamodule import DayStream  # noqa: E402
from saviorrec.data.samples import IdVocab, SampleBuilder  # noqa: E402
from saviorrec.models.ranker_module import RankerModule, optimizer_list, ranker_losses  # noqa: E402
from saviorrec.models.ranker_training import build_config, counter_meta, ranker_features  # noqa: E402
from saviorrec.models.scoring import Scorer, replay  # noqa: E402
from saviorrec.models.variants import VARIANTS  # noqa: E402
from saviorrec.workspace import Workspace  # noqa: E402


class Batches(IterableDataset):
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_loop(module: RankerModule, batches, epochs: int, device: torch.device) -> float:
    """Seconds for epochs 2..N (the first epoch is warm-up in both loops)."""
    module.to(device).train()
    optimizers = optimizer_list(module)  # two with sparse ID gradients
    start = None
    for epoch in range(epochs):
        if epoch == 1:
            _sync()
            start = time.perf_counter()
        for batch in batches:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            loss = ranker_losses(module.model, batch, module.hparams.ctcvr_weight)["loss"]
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in optimizers:
                opt.step()
    _sync()
    return time.perf_counter() - start


class EpochTimer(L.Callback):
    def __init__(self):
        self.start = None
        self.end = None

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            _sync()
            self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        _sync()
        self.end = time.perf_counter()


def lightning_loop(module: RankerModule, batches, epochs: int, accelerator: str) -> float:
    """Seconds for epochs 2..N, as for the plain loop."""
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, train_dataloaders=DataLoader(Batches(batches), batch_size=None))
    return timer.end - timer.start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--variant", default="saviorrec")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is warm-up, not timed")
    parser.add_argument("--max-batches", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is warm-up)")
    torch.set_num_threads(args.threads)

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_ranker_")
        root = make_workspace(Path(tmp.name) / "ws", "tiny", {})
        for stage in UPSTREAM:
            run_in(root, stage)
    else:
        root = Path(args.workdir).resolve()
    params = load_params(root / "params.yaml", overrides={"ranker.variant": args.variant})
    ws = Workspace(root, params)
    rp, spec = params.ranker, VARIANTS[args.variant]
    train_end, eval_end = ws.split()
    items = read_items(ws.path("items"))
    cat_vocab = SampleBuilder(items, rp.seq_len).cat_vocab
    vocab = IdVocab(items["item_id"])
    features, _ = ranker_features(params, ws, spec, items, cat_vocab, train_end)
    counters = counter_meta(rp, spec)  # the counters and dense columns train_ranker would record
    config = build_config(params, args.variant, vocab, cat_vocab, features).to_dict()
    stream = DayStream(ws.path("events"), items, features, vocab, rp.seq_len, rp.batch_size, rp.heuristic_prior_strength,
                       end=train_end, seed=params.seed,
                       clusters=features.counter_clusters(sid=counters["sid_counters"]))
    batches = []
    for batch in stream:
        batches.append(batch)
        if len(batches) >= args.max_batches:
            break
    n = sum(len(b["click"]) for b in batches)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    best = {"plain": float("inf"), "lightning": float("inf")}
    for _ in range(2):
        L.seed_everything(params.seed, verbose=False)
        best["plain"] = min(best["plain"], plain_loop(RankerModule(config, lr=rp.lr), batches, args.epochs, device))
        L.seed_everything(params.seed, verbose=False)
        best["lightning"] = min(best["lightning"], lightning_loop(RankerModule(config, lr=rp.lr), batches, args.epochs, accelerator))
    sps = {k: n * (args.epochs - 1) / v for k, v in best.items()}

    # scoring latency: one trained-shape model, 1,000 candidates of the evaluation window with their history
    module = RankerModule(config, lr=rp.lr).to(device).eval()
    events = read_events(ws.path("events"), start=train_end, end=eval_end)
    history = read_events(ws.path("events"), end=train_end)
    meta = {"variant": args.variant, "prior_strength": rp.heuristic_prior_strength, **counters}
    scorer = Scorer(module, meta, vocab, features)
    samples = next(replay(events.head(1000), history, items, rp.seq_len, clusters=scorer.clusters))
    scorer.predict(samples)  # warm-up
    reps = []
    for _ in range(20):
        start = time.perf_counter()
        scorer.predict(samples)
        reps.append(time.perf_counter() - start)
    latency_ms = 1000 * float(np.median(reps)) * 1000 / len(samples)
    result = {"device": str(device), "variant": args.variant, "samples": n, "epochs": args.epochs,
              "plain_samples_per_s": round(sps["plain"], 1), "lightning_samples_per_s": round(sps["lightning"], 1),
              "lightning_over_plain": round(sps["lightning"] / sps["plain"], 3),
              "scoring_ms_per_1000_candidates": round(latency_ms, 2)}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if tmp:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
