"""Memory over the steps of one training epoch: the project's training callbacks against none.

    .venv/bin/python bench/bench_epoch_memory.py                  # 400 steps of batch 2048
    .venv/bin/python bench/bench_epoch_memory.py --steps 200 --batch 1024

An epoch's memory must not grow with its batches: the encoder's epoch at `large` x1.0 is thousands
of batches and the ranker's one epoch is the whole log. Each run is a fresh process fitting the
encoder's contrastive step (an MLP on MiniLM-wide rows, the project's ``info_nce``, AdamW) for
``--steps`` batches with Lightning, and reads its RSS every 50 steps:

- ``none``: no callbacks (the reference);
- ``project``: ``checkpoints.training_callbacks`` (progress with ETA, the loss curve), what every
  training stage runs;
- ``keep_each_loss``: a callback that keeps every step's detached loss tensor until the epoch ends,
  as the loss curve did before. On the CPU each kept tensor is a small allocation that outlives the
  step's large ones and pins the heap between them (glibc), so RSS grows by megabytes a step.

It prints each run's RSS after the first 50 steps and at the end, the growth per 100 steps, and
the growth of ``project`` and ``keep_each_loss`` over ``none`` (target for ``project``: about 0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
import lightning as L, psutil, torch
sys.path.insert(0, sys.argv[1] + "/src")
from saviorrec.models.checkpoints import training_callbacks
from saviorrec.models.info_nce import info_nce

mode, steps, batch = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
ITEMS, WIDTH = 200_000, 384

class Pairs(torch.utils.data.IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(steps):
            yield torch.randint(0, ITEMS, (2 * batch,), generator=g)

class Contrastive(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.tower = torch.nn.Sequential(torch.nn.Linear(WIDTH, 128), torch.nn.GELU(), torch.nn.Linear(128, 64))
        self.register_buffer("text", torch.randn(ITEMS, WIDTH), persistent=False)
    def training_step(self, rows, _):
        z = torch.nn.functional.normalize(self.tower(self.text[rows]), dim=1)
        return info_nce(z[:batch], z[batch:], 0.05, item_ids=(rows[:batch], rows[batch:]))
    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)

class KeepEachLoss(L.Callback):
    def __init__(self):
        self.losses = []
    def on_train_batch_end(self, trainer, module, outputs, *_):
        self.losses.append(outputs["loss"].detach())

rss = {}
class Rss(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (batch_idx + 1) % 50 == 0:
            rss[batch_idx + 1] = psutil.Process().memory_info().rss / 2**20

callbacks = {"none": [], "project": training_callbacks(None), "keep_each_loss": [KeepEachLoss()]}[mode]
trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, callbacks=[*callbacks, Rss()])
trainer.fit(Contrastive(), torch.utils.data.DataLoader(Pairs(), batch_size=None))
print("RSS", json.dumps(rss))
"""

MODES = ("none", "project", "keep_each_loss")


def run(mode: str, steps: int, batch: int) -> dict[int, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(REPO), mode, str(steps), str(batch)],
                          capture_output=True, text=True, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RSS "))
    return {int(k): v for k, v in json.loads(line[4:]).items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=2048)
    args = parser.parse_args(argv)
    if args.steps < 100:
        parser.error("--steps must be at least 100 (RSS is read every 50 steps)")
    growth = {}
    for mode in MODES:
        rss = run(mode, args.steps, args.batch)
        first, last = min(rss), max(rss)
        growth[mode] = (rss[last] - rss[first]) / (last - first) * 100
        print(f"{mode:16s} RSS {rss[first]:7.0f} MiB after {first} steps, {rss[last]:7.0f} MiB after {last}: "
              f"{growth[mode]:+7.1f} MiB per 100 steps")
    for mode in MODES[1:]:
        print(f"{mode:16s} grows {growth[mode] - growth['none']:+7.1f} MiB per 100 steps more than none")
    return growth


if __name__ == "__main__":
    main()
