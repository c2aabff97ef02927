"""Readable metrics and plots: few metric columns and no settings among them (measured with the real
`dvc metrics show`), a long-tail bucket that is never empty by construction, a reliability diagram
with enough bins, AUC by bucket beside the baseline with n, and a per-step training curve."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from saviorrec.evaluation import CALIBRATION_MIN_ROWS, auc_figure, calibration_table
from saviorrec.metrics.ranking import assign_buckets
from saviorrec.metrics.stage_reports import details_file
from saviorrec.stages import run_stage

REPO = Path(__file__).resolve().parents[1]
MAX_METRIC_COLUMNS = 25  # (file, metric) pairs: the metric columns of `dvc exp show`
METRICS = ("encoder", "codebook", "ranker", "baseline")
# run facts that are not measurements: they belong in reports/details, never in a metrics file
RUN_FACTS = {"seconds", "build_seconds", "resumed_from", "warm_started", "has_oracle", "train_end", "eval_end",
             "variant", "selection", "epochs_run", "selected_epoch", "hit_k", "n", "positives"}


@pytest.fixture(scope="module")
def measured(tiny_pipeline):
    """The tiny run up to the baseline and the candidate's evaluation (the shared session workspace)."""
    for stage in ("build_codebook", "evaluate", "baseline"):
        tiny_pipeline.run(stage)
    return tiny_pipeline


@pytest.fixture(scope="module")
def evaluated_after_baseline(measured, tmp_path_factory):
    """A copy in which evaluate ran after the baseline, as `dvc repro` orders them."""
    root = tmp_path_factory.mktemp("after_baseline") / "ws"
    shutil.copytree(measured.root, root, ignore=shutil.ignore_patterns(".cache"))
    from saviorrec.workspace import Workspace

    ws = Workspace.open(root)
    run_stage("evaluate", ws)
    return ws


def _param_names(params: dict) -> set[str]:
    names = set()
    for key, value in params.items():
        names.add(key)
        if isinstance(value, dict):
            names |= _param_names(value)
    return names


def _leaves(payload: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.timeout(300)
def test_dvc_metrics_show_prints_few_columns_of_measurements_only(measured, tmp_path):
    """`dvc metrics show --json` in a git repo holding this dvc.yaml and the tiny run's metrics files."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, repo / name)
    shutil.copytree(REPO / "params", repo / "params")
    shutil.copytree(REPO / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copytree(measured.ws.path("metrics"), repo / "metrics")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "run"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    shown = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], cwd=repo, env=env,
                           check=True, capture_output=True, text=True, timeout=120).stdout
    files = next(iter(json.loads(shown).values()))["data"]
    assert sorted(files) == sorted(f"metrics/{m}.json" for m in METRICS)
    columns = {(path, key) for path, body in files.items() for key in _leaves(body["data"])}
    assert 10 <= len(columns) <= MAX_METRIC_COLUMNS, sorted(columns)

    settings = _param_names(yaml.safe_load((measured.root / "params.yaml").read_text()))
    for name in METRICS:
        metrics = json.loads(measured.ws.metrics_file(name).read_text())
        for key, value in _leaves(metrics).items():
            leaf = key.rsplit(".", 1)[-1]
            assert value is None or (isinstance(value, int | float) and not isinstance(value, bool)), (name, key, value)
            assert leaf not in settings | RUN_FACTS, f"metrics/{name}.json echoes the setting or run fact {key!r}"
        # everything else is kept, in the details report
        assert details_file(measured.ws.path("reports"), name).is_file()
    details = json.loads(details_file(measured.ws.path("reports"), "ranker").read_text())
    assert details["variant"] == "saviorrec" and details["buckets"]["new"]["n"] > 0


def test_long_tail_is_the_least_shown_established_items_whatever_the_log_size():
    """Every established item shown 50+ times (a fixed 20-impression cut left the bucket empty)."""
    train_end = pd.Timestamp("2024-01-30")
    items = pd.DataFrame({"item_id": np.arange(100),
                          "first_seen": [pd.Timestamp("2024-01-01")] * 90 + [pd.Timestamp("2024-01-29")] * 10})
    train_imps = pd.Series(np.arange(100) + 50, index=np.arange(100))
    df = pd.DataFrame({"item_id": np.arange(100)})
    buckets = assign_buckets(df, items, train_imps, train_end, young_days=7, long_tail_share=0.2)
    counts = buckets.value_counts()
    assert counts["young"] == 10 and counts["long_tail"] == 18 and counts["popular"] == 72, counts.to_dict()
    tail = train_imps[buckets == "long_tail"]
    assert tail.max() < train_imps[buckets == "popular"].min()  # the least shown, not any 18


def test_long_tail_is_not_empty_on_the_tiny_run(measured):
    details = json.loads(details_file(measured.ws.path("reports"), "ranker").read_text())
    assert details["buckets"]["long_tail"]["n"] > 0 and details["buckets"]["long_tail"]["ctr_auc"] is not None


def test_calibration_csv_is_a_reliability_diagram_with_counts(measured):
    table = pd.read_csv(measured.ws.path("plots") / "calibration.csv")
    details = json.loads(details_file(measured.ws.path("reports"), "ranker").read_text())
    assert 10 <= len(table) <= 20, table
    assert list(table.columns) == ["bin", "n", "clicks", "mean_p_ctr", "observed_ctr"]
    assert table["n"].sum() == details["overall"]["n"] and table["n"].min() >= CALIBRATION_MIN_ROWS
    assert table["mean_p_ctr"].is_monotonic_increasing
    assert np.allclose(table["observed_ctr"], table["clicks"] / table["n"])
    # a small window gets fewer, still populated bins
    small = calibration_table(pd.DataFrame({"p_ctr": np.linspace(0, 1, 120), "click": [0, 1] * 60}))
    assert len(small) == 120 // CALIBRATION_MIN_ROWS and small["n"].min() >= CALIBRATION_MIN_ROWS


def test_auc_by_bucket_shows_the_baseline_beside_the_candidate_with_n(evaluated_after_baseline):
    ws = evaluated_after_baseline
    table = pd.read_csv(ws.path("plots") / "auc_by_bucket.csv")
    variants = list(table["variant"].unique())
    assert variants == ["saviorrec", "content_frozen (baseline)"], variants
    for bucket, rows in table.groupby("bucket"):
        assert len(rows) == 2 and rows["n"].nunique() == 1, bucket  # same window, same impressions
        assert all(f"{bucket} (n={n}" in label for n, label in zip(rows["n"], rows["label"], strict=True)), rows["label"]
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluate"]["plots"]
    bars = next(next(iter(p.values())) for p in dvc if next(iter(p)).endswith("auc_by_bucket.csv"))
    assert bars["y"] == "label" and bars["x"] == "ctr_auc"  # one bar per bucket and variant
    assert (ws.path("plots") / "auc_by_bucket.png").stat().st_size > 0

    fig = auc_figure(table)
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"saviorrec", "content_frozen (baseline)"}
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert any(t.startswith("long_tail\nn=") for t in ticks), ticks


def test_an_empty_bucket_says_so():
    table = pd.DataFrame({"variant": ["v", "v"], "bucket": ["overall", "long_tail"], "n": [100, 0],
                          "ctr_auc": [0.7, math.nan], "ctr_oracle_auc": [math.nan, math.nan]})
    ticks = [t.get_text() for t in auc_figure(table).axes[0].get_xticklabels()]
    assert ticks == ["overall\nn=100", "long_tail\nn=0\n(empty)"]


def test_training_curve_is_per_step(measured):
    curve = pd.read_csv(measured.ws.path("plots") / "ranker_training.csv")
    epochs = measured.params.ranker.epochs
    assert list(curve.columns) == ["step", "epoch", "loss"]
    assert len(curve) > epochs, curve  # more than one point per epoch
    assert curve["step"].is_monotonic_increasing and curve["step"].is_unique
    assert sorted(curve["epoch"].unique()) == list(range(epochs)) and curve["loss"].gt(0).all()
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train_ranker"]["plots"]
    line = next(iter(dvc[0].values()))
    assert (line["x"], line["y"]) == ("step", "loss")


def test_training_curve_callback_writes_a_row_every_n_steps_and_per_epoch():
    import lightning as L
    import torch

    from saviorrec.models.training_curve import TrainingCurve, training_curve

    class Line(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return ((self.w - batch[0]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(25, 1)), batch_size=1)
    trainer = L.Trainer(max_epochs=2, callbacks=[TrainingCurve(every_n_steps=10)], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", devices=1)
    trainer.fit(Line(), data)
    steps = training_curve(trainer)
    assert [(r["step"], r["epoch"]) for r in steps] == [(10, 0), (20, 0), (25, 0), (35, 1), (45, 1), (50, 1)]
    assert steps[0]["loss"] > steps[-1]["loss"]  # it learns: the curve goes down
    assert [r["epoch"] for r in training_curve(trainer, "epoch")] == [0, 1]


def _tensors_in(value) -> int:
    if isinstance(value, __import__("torch").Tensor):
        return 1
    if isinstance(value, (list, tuple)):
        return sum(_tensors_in(v) for v in value)
    if isinstance(value, dict):
        return sum(_tensors_in(v) for v in value.values())
    return 0


def test_training_curve_holds_no_tensor_per_step():
    """The curve keeps running sums, not every step's loss: a tensor kept per step outlives the step's
    large buffers and, on the CPU, pins the heap between them, so an encoder epoch of `large` x0.2
    grew by 3 GiB over its 734 batches. Its means are still each window's and each epoch's mean loss."""
    import lightning as L
    import torch

    from saviorrec.models.training_curve import TrainingCurve, training_curve

    curve = TrainingCurve(every_n_steps=50)
    held, losses = [], []

    class Line(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            loss = ((self.w - batch[0]) ** 2).mean()
            losses.append(float(loss))
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx):
            held.append(_tensors_in(vars(curve)))  # after the curve saw this batch (callbacks run first)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(40, 1)), batch_size=1)
    trainer = L.Trainer(max_epochs=1, callbacks=[curve], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(Line(), data)
    assert len(held) == 40 and max(held) <= 2, held
    assert training_curve(trainer, "epoch")[0]["loss"] == pytest.approx(sum(losses) / 40, rel=1e-5)
