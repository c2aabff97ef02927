"""The `saviorrec` command as a person uses it: bad input is one line and exit code 2, never a
traceback; a ds= folder is accepted; the output format follows the suffix; stage usage names the
stage; missing pictures are refused naming the folder looked in; the checkout in use (not the
installed one) receives the runs and the registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from bad_inputs import session_base
from bad_inputs.cli_cases import CLI_CASES, CliFiles, build_cli_files, expand

from saviorrec.stages import STAGES

SAVIORREC = Path(sys.executable).parent / "saviorrec"   # the console script a person runs
REPO = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str], cwd: Path, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(SAVIORREC), *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ.copy())


def run_all(commands: dict[str, list[str]], cwd: Path) -> dict[str, subprocess.CompletedProcess]:
    """Each command in its own process, three at a time (most of their time is Python's start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run_cli, argv, cwd) for name, argv in commands.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def cli_files(tiny_pipeline, tmp_path_factory) -> CliFiles:
    base, _registry = session_base(tiny_pipeline, tmp_path_factory)  # a production model in its registry
    return build_cli_files(base, tmp_path_factory.mktemp("cli_corpus"), base / "params.yaml")


@pytest.fixture(scope="module")
def cli_results(cli_files) -> dict[str, subprocess.CompletedProcess]:
    return run_all({case.name: case.argv(cli_files) for case in CLI_CASES}, cli_files.folder)


# ---- a user's mistakes: one line, exit code 2 ----------------------------------------------

@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CLI_CASES, ids=lambda case: case.name)
def test_bad_input_is_one_line_naming_the_file(case, cli_files, cli_results):
    proc = cli_results[case.name]
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == 2, output
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith(f"error: {case.names(cli_files)}: "), line   # the file to fix, first
    problem, _, expected = line.partition("; expected ")
    assert expand(case.problem, cli_files) in problem and case.expected in expected, line
    assert not case.out_file(cli_files).exists(), "a refused command must not write its output"


def test_the_corpus_holds_every_mistake_of_the_issue():
    """The issue's list: garbage and CSV files, a folder without partitions, an events file as the
    catalog, a missing click column, an unknown output suffix, pictures not where refs point."""
    names = {case.name for case in CLI_CASES}
    assert {"score_garbage_file", "score_csv_file", "score_folder_without_partitions", "sid_events_file_as_catalog",
            "score_without_click_column", "score_out_txt", "sid_pictures_not_beside_catalog"} <= names


# ---- what the help promises ---------------------------------------------------------------

@pytest.mark.timeout(600)
def test_a_day_folder_is_accepted_and_the_output_follows_the_suffix(cli_files):
    out = cli_files.out
    common = ["--params", str(cli_files.params)]
    results = run_all({
        "json": ["score", "--events", str(cli_files.day_folder), "--out", str(out / "day.json"), *common],
        "csv": ["score", "--events", str(cli_files.events_file), "--out", str(out / "day.csv"), *common],
    }, cli_files.folder)
    for proc in results.values():
        assert proc.returncode == 0, proc.stdout + proc.stderr
    day = pd.read_parquet(cli_files.events_file)
    rows = json.loads((out / "day.json").read_text())
    assert sorted(row["event_id"] for row in rows) == sorted(day["event_id"])
    assert set(rows[0]) == {"event_id", "p_ctr", "p_ctcvr"}
    table = pd.read_csv(out / "day.csv")
    assert list(table.columns) == ["event_id", "p_ctr", "p_ctcvr"] and len(table) == len(day)
    # the same impressions, the same scores, whichever way they were given and written
    merged = table.merge(pd.DataFrame(rows), on="event_id", suffixes=("_csv", "_json"))
    assert len(merged) == len(day)
    assert (merged["p_ctr_csv"] - merged["p_ctr_json"]).abs().max() < 1e-9


@pytest.mark.timeout(300)
def test_stage_usage_names_the_stage(tmp_path):
    """`saviorrec <stage>` usage says `saviorrec <stage>`, not `saviorrec [-h]`: every stage in
    process (typer's runner), and one through the real command, which must print the same."""
    from typer.testing import CliRunner

    from saviorrec.cli import app

    runner = CliRunner()
    usages = {}
    for stage in STAGES:
        command = stage.replace("_", "-")
        result = runner.invoke(app, [command, "--no-such-flag"])
        assert result.exit_code == 2, result.output
        usages[command] = result.output
        assert f"usage: saviorrec {command} [-h]" in result.output, result.output
        assert f"saviorrec {command}: error: unrecognized arguments: --no-such-flag" in result.output
    proc = run_cli(["train-ranker", "--no-such-flag"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == usages["train-ranker"].strip()


# ---- pictures ------------------------------------------------------------------------------

def test_pictures_resolve_under_the_data_dir(cli_files):
    """The refused catalog of the corpus is accepted once --data-dir names where its pictures are."""
    from saviorrec.cli_inputs import read_items_input, resolve_image_refs

    items = read_items_input(cli_files.new_items)
    resolved = resolve_image_refs(items, cli_files.new_items, cli_files.pictures)
    assert all(Path(ref).is_absolute() and Path(ref).is_file() for ref in resolved["image_ref"])
    no_pictures = items.assign(image_ref=None)  # an item without a picture says so with a null ref
    assert resolve_image_refs(no_pictures, cli_files.new_items, None)["image_ref"].isna().all()


def test_the_encoder_names_the_pictures_it_did_not_find(tmp_path, caplog):
    """A stage that embeds items without some pictures (the 'no image' fallback the validate_logs
    gate warns about) logs the files it looked for, not a folder the refs are not relative to."""
    from saviorrec.models.image import load_images

    (tmp_path / "data" / "images").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "data" / "images" / "1.png")
    elsewhere = tmp_path / "elsewhere" / "images" / "2.png"
    items = pd.DataFrame({"item_id": [1, 2, 3], "image_ref": ["images/1.png", str(elsewhere), None]})
    with caplog.at_level("WARNING", logger="saviorrec.models.image"):
        _pixels, has = load_images(items, tmp_path / "data", 8)
    assert has.tolist() == [True, False, False]
    assert f"1 of 3 item picture(s) not found (e.g. {elsewhere}; looked in {elsewhere.parent})" in caplog.text


# ---- the checkout in use -------------------------------------------------------------------

def _checkout(dst: Path) -> Path:
    """A copy of what a checkout holds that decides paths: params.yaml, its overlays, dvc.yaml."""
    dst.mkdir(parents=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(REPO / name, dst / name)
    shutil.copytree(REPO / "params", dst / "params")
    (dst / "notebooks").mkdir()  # somewhere inside the checkout
    return dst


PREPARE_A_RUN = """
import datetime as dt, json
from saviorrec.config import REPO_PARAMS, load_params
from saviorrec.orchestration.form import RunForm
from saviorrec.orchestration.workspace import prepare_run_workspace
run = prepare_run_workspace(dt.datetime(2031, 7, 4, tzinfo=dt.UTC), RunForm(preset="tiny"))
params = load_params(run.params_file)
print(json.dumps({"repo_params": str(REPO_PARAMS), "run": str(run.root), "registry": params.registry.uri}))
"""


@pytest.mark.timeout(300)
def test_the_checkout_in_use_receives_runs_and_registry(tmp_path):
    """Two checkouts share this venv (installed from REPO): a run prepared from inside checkout B,
    or for SAVIORREC_REPO=B from anywhere, is written into B and names B's registry."""
    a, b = _checkout(tmp_path / "a"), _checkout(tmp_path / "b")
    env = {k: v for k, v in os.environ.items()
           if k not in ("SAVIORREC_REPO", "SAVIORREC_PARAMS", "SAVIORREC_RUNS_ROOT", "SAVIORREC_DATA_ROOT")}

    def prepare(cwd: Path, **extra: str) -> dict:
        proc = subprocess.run([sys.executable, "-c", PREPARE_A_RUN], cwd=cwd, env={**env, **extra},
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    stray = REPO / "runs" / "2031-07-04"   # where a run lands when the installed checkout wins
    assert not stray.exists(), f"{stray} is left from an earlier run: remove it"
    try:
        from_b = prepare(b / "notebooks")                       # the nearest checkout above the cwd
        explicit = prepare(tmp_path, SAVIORREC_REPO=str(a))    # SAVIORREC_REPO wins over the cwd
        landed_in_repo = stray.exists()
    finally:
        shutil.rmtree(stray, ignore_errors=True)
        if (REPO / "runs").is_dir() and not any((REPO / "runs").iterdir()):
            (REPO / "runs").rmdir()
    assert not landed_in_repo, "the installed checkout must not receive another's run"
    assert from_b == {"repo_params": str(b / "params.yaml"), "run": str(b / "runs" / "2031-07-04"),
                      "registry": str(b / "registry")}
    assert explicit == {"repo_params": str(a / "params.yaml"), "run": str(a / "runs" / "2031-07-04"),
                        "registry": str(a / "registry")}
    assert (b / "runs" / "2031-07-04" / "params.yaml").is_file() and (a / "runs" / "2031-07-04").is_dir()


def test_registry_commands_find_the_checkout_from_a_sub_folder(tmp_path):
    """Without --params, `saviorrec registry ...` reads the params.yaml of the checkout it runs in."""
    b = _checkout(tmp_path / "b")
    env = {k: v for k, v in os.environ.items() if k != "SAVIORREC_REPO"}
    proc = subprocess.run([sys.executable, "-m", "saviorrec.cli", "registry", "list"], cwd=b / "notebooks",
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0].endswith(str(b / "registry" / "models" / "saviorrec")), proc.stdout
