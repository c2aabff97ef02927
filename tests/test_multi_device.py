"""Training on several devices (``ranker.devices`` / ``strategy`` / ``precision``): the ranks share the
data without overlap, DDP on two CPU processes (gloo) matches one process, rank 0 alone writes."""

# ruff: noqa: F811  (session fixtures imported from ranker_helpers are used as arguments)
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ranker_helpers import copy_tree, open_workspace, ranker_upstream, trained_saviorrec  # noqa: F401

from saviorrec.data.io import read_items
from saviorrec.data.ranker_datamodule import DayStream
from saviorrec.data.samples import IdVocab, SampleBuilder
from saviorrec.models.ranker_training import ranker_features, train_ranker
from saviorrec.models.variants import VARIANTS
from saviorrec.stages import run_stage

REPO = Path(__file__).resolve().parents[1]


def day_stream(root: Path, batch_size: int) -> DayStream:
    """The id_only ranker's training stream of workspace ``root`` (no shard set: one process)."""
    params, ws = open_workspace(root, {"ranker.variant": "id_only"})
    train_end, _ = ws.split()
    items = read_items(ws.path("items"))
    cat_vocab = SampleBuilder(items, params.ranker.seq_len).cat_vocab
    features, _ = ranker_features(params, ws, VARIANTS["id_only"], items, cat_vocab, train_end)
    vocab = IdVocab(items.loc[items["first_seen"] < pd.Timestamp(train_end), "item_id"].to_numpy(np.int64))
    return DayStream(ws.path("events"), items, features, vocab, params.ranker.seq_len, batch_size,
                     params.ranker.heuristic_prior_strength, end=train_end, seed=params.seed)


def row_keys(batches: list[dict[str, torch.Tensor]]) -> Counter:
    """Each training row as the bytes of all its tensors (a multiset: two equal impressions count twice)."""
    keys: Counter = Counter()
    for batch in batches:
        n = len(batch["click"])
        table = np.hstack([batch[k].reshape(n, -1).double().numpy() for k in sorted(batch)])
        keys.update(row.tobytes() for row in table)
    return keys


@pytest.mark.timeout(300)
def test_each_rank_streams_a_disjoint_equal_share(ranker_upstream):
    one = list(day_stream(ranker_upstream, 64))
    again = day_stream(ranker_upstream, 64)
    again.shard(0, 1)  # what the DataModule sets in a one-process fit: the batches of today, unchanged
    for a, b in zip(one, list(again), strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    shares = []
    for rank in (0, 1):
        stream = day_stream(ranker_upstream, 64)
        stream.shard(rank, 2)
        shares.append(list(stream))
    # same number of steps on each rank (DDP needs it), half the global batch each
    assert len(shares[0]) == len(shares[1])
    assert [len(b["click"]) for b in shares[0]] == [len(b["click"]) for b in shares[1]]
    assert max(len(b["click"]) for b in shares[0]) == 32
    whole, first, second = row_keys(one), row_keys(shares[0]), row_keys(shares[1])
    seen = first + second
    extra = seen - whole
    assert not extra, f"{extra.total()} training rows reached both ranks (or rows one process never sees)"
    # only a chunk's odd last row is left out (one chunk of days here: at most one row)
    assert 0 <= whole.total() - seen.total() < 2
    assert first.total() == second.total() > 0


@pytest.mark.timeout(300)
def test_a_multi_process_fit_inside_another_program_is_refused(ranker_upstream, tmp_path):
    """Lightning's DDP launcher re-runs the command line once per extra device: from pytest (or an
    Airflow worker) that would start pytest again, so the fit is refused with one clear line."""
    root = copy_tree(ranker_upstream, tmp_path / "ws")
    params, ws = open_workspace(root, {"ranker.devices": 2, "ranker.strategy": "ddp", "ranker.accelerator": "cpu"})
    with pytest.raises(ValueError) as err:
        train_ranker(params, ws)
    assert "ranker.devices=2 with ranker.strategy=ddp" in str(err.value)
    assert "python -m pipelines.<stage>" in str(err.value)
    assert not ws.path("ranker").exists()


def stage_summary(stdout: str) -> dict:
    """The JSON summary ``python -m pipelines.<stage>`` prints, which must be printed once (by rank 0)."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "{"]
    assert len(starts) == 1, f"{len(starts)} stage summaries printed: a rank other than 0 went on after the fit"
    end = lines.index("}", starts[0])
    return json.loads("\n".join(lines[starts[0]:end + 1]))


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.timeout(900)
def test_ddp_on_two_cpu_processes_matches_one_process(trained_saviorrec, ranker_upstream, tmp_path):
    one = copy_tree(trained_saviorrec, tmp_path / "one")
    two = copy_tree(ranker_upstream, tmp_path / "two")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.train_ranker", "--workdir", str(two), "--params", str(two / "params.yaml"),
         "--set", "ranker.accelerator=cpu", "--set", "ranker.devices=2", "--set", "ranker.strategy=ddp"],
        cwd=REPO, capture_output=True, text=True, timeout=780)
    assert proc.returncode == 0, proc.stderr[-4000:]
    fit_seconds = time.monotonic() - started
    summary = stage_summary(proc.stdout)
    _, ws_one = open_workspace(one)
    _, ws_two = open_workspace(two)
    one_curve = pd.read_csv(ws_one.path("plots") / "ranker_training.csv")
    two_curve = pd.read_csv(ws_two.path("plots") / "ranker_training.csv")

    # each rank trained on its own half: the shares add up to the impressions one process trains on
    shares = summary["rank_samples"]
    total = sum(len(batch["click"]) for batch in day_stream(ranker_upstream, 256))
    assert len(shares) == 2 and shares[0] == shares[1] > 0, shares
    assert 0 <= total - sum(shares) < 2 * len(summary["train_days"]), (shares, total)
    assert summary["samples"] == sum(shares)

    # rank 0 alone wrote the stage's outputs, laid out as a one-process run's
    assert files_under(ws_two.path("ranker")) == files_under(ws_one.path("ranker"))
    assert sorted(p.name for p in ws_two.path("ranker").parent.iterdir()) == \
        sorted(p.name for p in ws_one.path("ranker").parent.iterdir())
    assert list(two_curve.columns) == list(one_curve.columns)
    # rank 1 left after the fit (one summary above): it failed at nothing either (no race on the folder)
    assert "Traceback" not in proc.stderr and not any(line.startswith("error:") for line in proc.stderr.splitlines())

    auc_one = run_stage("evaluate", ws_one)["ctr_auc"]
    auc_two = run_stage("evaluate", ws_two)["ctr_auc"]
    print(f"ctr AUC: one process {auc_one:.4f}, DDP 2 x CPU {auc_two:.4f}; ranks {shares} of {total}; "
          f"DDP stage {fit_seconds:.0f}s")
    assert abs(auc_one - auc_two) <= 0.01
