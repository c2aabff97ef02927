"""The rolling backtest (`saviorrec backtest`): one tiny 3-day backtest, killed after its first
step and continued, shared by the tests below (about 2 minutes on 2 cores)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import MOVIELENS, REPO

pytestmark = pytest.mark.timeout(900)

VARIANTS = ("saviorrec", "id_only")
DAYS = ("2024-01-06", "2024-01-07", "2024-01-08")  # tiny: a 6-day window, so the first full one ends on the 6th
ARGS = ["--days", "3", "--variants", ",".join(VARIANTS), "--encoder-every", "2", "--preset", "tiny"]


def backtest_cmd(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "saviorrec.cli", "backtest", "--params", str(REPO / "params.yaml"),
            "--root", str(root), *extra]


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Start the backtest, SIGKILL it once its first step is recorded, rerun the same command."""
    root = tmp_path_factory.mktemp("backtest")
    first_state = root / "state" / "step-000.json"
    log = (root.parent / "first_attempt.log").open("w")
    proc = subprocess.Popen(backtest_cmd(root, *ARGS), cwd=root.parent, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 400
    while not first_state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert first_state.is_file(), (root.parent / "first_attempt.log").read_text()[-3000:]
    assert not (root / "state" / "step-002.json").exists(), "killed too late: the backtest had already finished"
    before = {"state": first_state.stat().st_mtime_ns, "rows": json.loads(first_state.read_text())["rows"],
              "manifest": (root / "steps" / DAYS[0] / "run.json").stat().st_mtime_ns,
              "world": (root / "state" / "world.json").stat().st_mtime_ns}
    rerun = subprocess.run(backtest_cmd(root, *ARGS), cwd=root.parent, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    report = json.loads((root / "metrics" / "backtest.json").read_text())
    return root, before, rerun, report


def test_backtest_writes_table_plot_and_summary(killed_and_resumed):
    root, _, rerun, report = killed_and_resumed
    table = pd.read_csv(root / "metrics" / "backtest.csv")
    assert sorted(zip(table["key"], table["variant"], strict=True)) == sorted((d, v) for d in DAYS for v in VARIANTS)
    for column in ("auc", "popular_auc", "oracle_auc", "new_oracle_auc"):
        assert table[column].between(0.5, 1.0).all(), (column, table[column].tolist())
    # id_only knows nothing of a new item: its new/young AUCs may sit at chance, on either side of 0.5
    assert table[["new_auc", "young_auc"]].stack().between(0.3, 1.0).all()
    assert (table[table["variant"] == "saviorrec"]["new_auc"] > 0.55).all()  # content carries new items
    assert (table["oracle_auc"] > table["auc"]).all()  # the hidden truth ranks better than any model
    assert table["collision_rate"].between(0, 0.05).all()
    later = table[table["step"] > 0]
    assert later["sid_churn"].between(0, 1).all() and (later["sid_known_both"] > 0).all()
    assert (later["z_drift"] >= 0).all()
    assert table[table["step"] == 0]["sid_churn"].isna().all()  # nothing to compare the first step with
    assert (table["seconds_train_ranker"] > 0).all() and (table["seconds_validate_sids"] > 0).all()
    png = (root / "plots" / "backtest_auc.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    summary = report["summary"]
    assert set(summary["variants"]) == set(VARIANTS) and sum(summary["new_auc_wins"].values()) == len(DAYS)
    assert summary["variants"]["saviorrec"]["new_auc"]["steps"] == len(DAYS)
    assert "train_ranker[saviorrec]" in summary["seconds"] and "train_encoder" in summary["seconds"]
    assert "mean +- std" in rerun.stdout and "steps with the best new-item AUC" in rerun.stdout
    assert "seconds per stage" in rerun.stdout


def test_pooled_auc_is_every_steps_impressions_bucketed_as_the_evaluate_stage_does(killed_and_resumed):
    from saviorrec.backtest.pooled import pooled_metrics

    root, _, rerun, report = killed_and_resumed
    table = pd.read_csv(root / "metrics" / "backtest.csv")
    pooled = report["summary"]["pooled"]
    for variant in VARIANTS:
        rows = table[table["variant"] == variant]
        assert pooled[variant]["overall"]["n"] == rows["n"].sum()
        assert pooled[variant]["new"]["n"] == rows["new_n"].sum()
        assert pooled[variant]["new"]["ctr_auc"] > 0.5 if variant == "saviorrec" else True
    # pooled over one step is that step's own AUC from its evaluate report
    for row in report["rows"][:2]:
        one = pooled_metrics(root, [row])[0][row["variant"]]
        assert one["overall"]["ctr_auc"] == pytest.approx(row["auc"], abs=1e-12)
        assert one["buckets"]["new"]["ctr_auc"] == pytest.approx(row["new_auc"], abs=1e-12)
        assert one["buckets"]["new"]["n"] == row["new_n"]
        assert one["buckets"]["new"]["within_step_auc"] == pytest.approx(row["new_auc"], abs=1e-12)
    assert "pooled" in rerun.stdout


def test_console_names_each_stage_and_the_stage_output_goes_to_the_step_log(killed_and_resumed):
    root, _, rerun, _ = killed_and_resumed
    console = rerun.stdout + rerun.stderr
    assert "  train_ranker[saviorrec]" in rerun.stdout and "  validate_sids" in rerun.stdout
    for chatter in ("GPU available", "LitLogger", "Loading weights", "verdict"):  # stage output, not the console's
        assert chatter not in console, chatter
    log = (root / "logs" / "step-001.log").read_text()
    assert f"stage output: {root / 'logs' / 'step-001.log'}" in rerun.stdout
    assert "GPU available" in log and "Data Docs:" in log  # kept, in the step's log


def test_encoder_refreshes_on_the_cadence_and_is_reused_otherwise(killed_and_resumed):
    root, _, _, report = killed_and_resumed
    refreshed = {row["key"]: row["encoder_refreshed"] for row in report["rows"]}
    assert refreshed == {DAYS[0]: True, DAYS[1]: False, DAYS[2]: True}  # every 2 days
    manifests = {day: json.loads((root / "steps" / day / "run.json").read_text()) for day in DAYS}
    # the DAG's manifest fields, written by the same cadence code
    assert all(m["artifacts_validated"] for m in manifests.values())
    assert [m["encoder_refreshed_on"] for m in manifests.values()] == [DAYS[0], DAYS[0], DAYS[2]]
    assert manifests[DAYS[1]]["reused_from"] == str(root / "steps" / DAYS[0])
    assert manifests[DAYS[2]]["artifact_source"] == str(root / "steps" / DAYS[1])  # warm start from the latest
    # the reused step extended the reused SIDs to the day's catalog: known items kept their SID
    rows = {(r["key"], r["variant"]): r for r in report["rows"]}
    assert rows[(DAYS[1], "saviorrec")]["sid_churn"] == 0.0
    # every step after the first warm-starts each variant from its own previous ranker
    assert [rows[(d, v)]["ranker_warm_start"] for d in DAYS for v in VARIANTS] == [False, False] + [True] * 4


def test_killed_backtest_continues_after_the_last_finished_step(killed_and_resumed):
    root, before, rerun, report = killed_and_resumed
    first_state = root / "state" / "step-000.json"
    assert first_state.stat().st_mtime_ns == before["state"]  # step 1 was not recomputed
    assert (root / "steps" / DAYS[0] / "run.json").stat().st_mtime_ns == before["manifest"]
    assert (root / "state" / "world.json").stat().st_mtime_ns == before["world"]  # nor the world regenerated
    assert f"step 1/3 {DAYS[0]}: finished earlier, kept" in rerun.stdout
    assert f"step 2/3 {DAYS[1]}: encoder" in rerun.stdout and f"step 3/3 {DAYS[2]}: encoder" in rerun.stdout
    assert [r for r in report["rows"] if r["step"] == 0] == before["rows"]
    assert sorted(p.name for p in (root / "state").glob("step-*.json")) == [f"step-00{i}.json" for i in range(3)]


def test_no_step_sees_or_trains_on_its_evaluation_day_or_later(killed_and_resumed):
    from saviorrec.data import io
    from saviorrec.models.ranker_artifacts import read_meta

    root, _, _, report = killed_and_resumed
    for row in report["rows"]:
        day, step = dt.date.fromisoformat(row["key"]), root / "steps" / row["key"]
        events = io.list_days(step / "data" / "events")
        assert events[-1] == day and len(events) == 6, (row["key"], events)  # the DAG's window, no later day
        items = io.read_items(step / "data" / "items.parquet")
        assert (items["first_seen"] < pd.Timestamp(day + dt.timedelta(days=1))).all()
        meta = read_meta(step / "artifacts" / "variants" / row["variant"] / "ranker")
        assert dt.date.fromisoformat(meta["trained_until"]) <= day  # trained on days before `day` only
        assert dt.date.fromisoformat(row["encoder_train_end"]) <= day  # pairs mined before it
        details = json.loads((step / "reports" / "variants" / row["variant"] / "details" / "ranker.json").read_text())
        assert (details["train_end"], details["eval_end"]) == (row["key"], row["eval_end"])  # evaluated on `day` only


def test_another_config_in_the_same_root_is_refused(killed_and_resumed):
    root = killed_and_resumed[0]
    other = subprocess.run(backtest_cmd(root, *ARGS[:-2], "--preset", "tiny", "--set", "ranker.lr=0.5"),
                           cwd=root.parent, capture_output=True, text=True, timeout=120)
    assert other.returncode == 1
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1 and "another config" in lines[0] and "ranker.lr" in lines[0], other.stderr


def test_bad_arguments_get_one_line(tmp_path):
    bad = subprocess.run(backtest_cmd(tmp_path / "bt", "--variants", "saviorrec,nope"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --variants: unknown variant(s) nope; expected a comma-separated list of "
        + ", ".join(__import__("saviorrec.models.variants", fromlist=["x"]).VARIANT_NAMES)]


@pytest.mark.skipif(not MOVIELENS.is_dir(), reason=f"MovieLens folder absent: {MOVIELENS}")
def test_movielens_monthly_backtest(tmp_path):
    root = tmp_path / "ml"
    small = ["movielens.max_items=400", "encoder.epochs=2", "encoder.embedding_dim=32", "encoder.hidden_dim=64",
             "codebook.epochs=3", "codebook.codebook_size=64", "codebook.latent_dim=32", "codebook.hidden_dim=32",
             "ranker.epochs=1", "ranker.id_dim=16", "ranker.attn_dim=16", "ranker.dnn_hidden=[32]"]
    cmd = backtest_cmd(root, "--preset", "movielens", "--step", "month", "--days", "2", "--start", "2012-01-01",
                       "--variants", "id_only", *[arg for key in small for arg in ("--set", key)])
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads((root / "metrics" / "backtest.json").read_text())["rows"]
    assert [(r["key"], r["encoder_refreshed"]) for r in rows] == [("2012-01", True), ("2012-02", False)]
    for row in rows:
        assert 0.0 <= row["auc"] <= 1.0 and row["n"] > 0  # a handful of ratings a month: only sane, not good
        month = dt.date.fromisoformat(row["eval_start"])
        assert dt.date.fromisoformat(row["ranker_trained_until"]) <= month
        assert dt.date.fromisoformat(row["data_last_day"]) < dt.date.fromisoformat(row["eval_end"])
