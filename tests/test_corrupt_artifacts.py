"""A file a crash left damaged is named by the next run, in one line with what to do.

Each file the pipeline reads back (an event day, the items table, z, the SIDs, predictions, the
codebook, the encoder and ranker, an epoch checkpoint) is cut to half its bytes, overwritten
with garbage, or given garbage in its middle (what the format's checksums catch), in a copy of
the tiny workspace; the stage that reads it runs through ``run_stage`` as Airflow and the CLI do.
"""

from __future__ import annotations

import logging
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from saviorrec.data import io
from saviorrec.file_integrity import CorruptFileError
from saviorrec.stages import run_stage

REPO = Path(__file__).resolve().parents[1]


def truncate(path: Path) -> None:
    """What a write cut short leaves: the first half of the bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    """Something else written in its place, as long as the file was."""
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def garbage_inside(path: Path) -> None:
    """Its middle third overwritten, head and footer intact: only checksums can tell."""
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third: 2 * third] = random.Random(1).randbytes(third)
    path.write_bytes(bytes(data))


DAMAGES = {"truncated": truncate, "garbage": garbage, "garbage_inside": garbage_inside}


@pytest.fixture(scope="module")
def upstream(tiny_pipeline):
    """The shared tiny workspace with every stage up to the model gate's inputs run."""
    for stage in ("evaluate", "baseline"):
        tiny_pipeline.run(stage)
    return tiny_pipeline


def damaged_copy(upstream, copy_workspace, file: str, damage: str):
    """A copy of the tiny workspace whose ``file`` (relative to its root) is damaged; (runner, path)."""
    runner = copy_workspace(upstream.root)
    path = runner.root / file
    DAMAGES[damage](path)
    return runner, path


def assert_names(err: CorruptFileError, what: str, path: Path, fix: str) -> None:
    message = str(err)
    assert "\n" not in message, message
    assert message.startswith(f"corrupt {what} {path} ("), message
    assert fix in message, message


def first_day_part(ws) -> str:
    day = io.list_days(ws.path("events"))[0]
    return str(Path(io.day_parts(ws.path("events"), day)[0]).relative_to(ws.root))


# table (a params.paths name, or the first event day) -> (the stage that reads it, the fix it names)
PARQUET_READERS = {
    "events": ("train_encoder", "rerun ingest"),
    "items": ("train_encoder", "rerun ingest"),
    "embeddings": ("build_codebook", "rerun train_encoder"),
    "sids": ("train_ranker", "rerun build_codebook"),
    "predictions": ("validate_model", "rerun the stage that writes it"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("table", PARQUET_READERS)
def test_a_damaged_parquet_file_is_named_by_the_stage_that_reads_it(upstream, copy_workspace, table, damage):
    stage, fix = PARQUET_READERS[table]
    file = first_day_part(upstream.ws) if table == "events" else getattr(upstream.params.paths, table)
    runner, path = damaged_copy(upstream, copy_workspace, file, damage)
    with pytest.raises(CorruptFileError) as err:
        run_stage(stage, runner.ws)
    assert_names(err.value, "Parquet file", path, fix)


@pytest.mark.timeout(300)
def test_damaged_event_day_is_named_by_the_day_by_day_reader(upstream, copy_workspace):
    """train_ranker streams days one at a time (``iter_event_days``), not as one dataset."""
    runner, path = damaged_copy(upstream, copy_workspace, first_day_part(upstream.ws), "truncated")
    with pytest.raises(CorruptFileError) as err:
        run_stage("train_ranker", runner.ws)
    assert_names(err.value, "Parquet file", path, "rerun ingest")
    with pytest.raises(CorruptFileError):
        io.count_events(runner.ws.path("events"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_codebook_stops_the_warm_started_rebuild_and_sid_assignment(upstream, copy_workspace, damage):
    """build_codebook warm-starts from the previous model; `saviorrec sid` (embed_and_assign) assigns with it."""
    from saviorrec.models.semantic_ids import embed_and_assign

    file = f"{upstream.params.paths.codebook}/model.pt"
    runner, path = damaged_copy(upstream, copy_workspace, file, damage)
    fix = "build_codebook --set codebook.full_rebuild=true"
    with pytest.raises(CorruptFileError) as err:
        run_stage("build_codebook", runner.ws)
    assert_names(err.value, "codebook model", path, fix)
    assert path.read_bytes() != (upstream.root / file).read_bytes()  # the failed run left it for the person to decide
    with pytest.raises(CorruptFileError) as err:
        embed_and_assign(runner.ws, io.read_items(runner.ws.path("items")).head(3))
    assert_names(err.value, "codebook model", path, fix)


@pytest.mark.timeout(300)
def test_a_damaged_sid_snapshot_stops_the_codebook_rebuild(upstream, copy_workspace):
    runner, path = damaged_copy(upstream, copy_workspace, f"{upstream.params.paths.codebook}/sids_snapshot.parquet",
                                "garbage")
    with pytest.raises(CorruptFileError) as err:
        run_stage("build_codebook", runner.ws)
    assert_names(err.value, "Parquet file", path, "rerun build_codebook")


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("file", "damage", "what"), [
    ("model.ckpt", "truncated", "ranker checkpoint"),
    ("model.ckpt", "garbage_inside", "ranker checkpoint"),
    ("id_vocab.npy", "truncated", "ranker ID vocabulary"),
    ("config.json", "truncated", "ranker config"),
    ("content_clusters.npy", "garbage", "ranker cluster centroids"),
])
def test_a_damaged_ranker_is_named_by_evaluate(upstream, copy_workspace, file, damage, what):
    runner, path = damaged_copy(upstream, copy_workspace, f"{upstream.params.paths.ranker}/{file}", damage)
    with pytest.raises(CorruptFileError) as err:
        run_stage("evaluate", runner.ws)
    assert_names(err.value, what, path, "train_ranker --set ranker.warm_start=false")


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("file", "damage", "what"), [
    ("model.pt", "garbage_inside", "encoder weights"),
    ("config.json", "truncated", "encoder config"),
])
def test_a_damaged_encoder_stops_its_warm_start(upstream, copy_workspace, file, damage, what):
    runner, path = damaged_copy(upstream, copy_workspace, f"{upstream.params.paths.encoder}/{file}", damage)
    shutil.copytree(upstream.ws.path("text_cache"), runner.ws.path("text_cache"))  # no MiniLM pass again
    with pytest.raises(CorruptFileError) as err:
        run_stage("train_encoder", runner.ws)
    assert_names(err.value, what, path, "train_encoder --set encoder.warm_start=false")


# ---- epoch checkpoints --------------------------------------------------------------------

def plant_checkpoint(upstream, runner, stage_dir: str, damage: str, sub: str = "") -> Path:
    """A real Lightning checkpoint (the ranker's ``model.ckpt``), damaged, as ``stage_dir/checkpoints[/sub]/last.ckpt``."""
    last = runner.root / stage_dir / "checkpoints" / sub / "last.ckpt"
    last.parent.mkdir(parents=True)
    shutil.copyfile(upstream.ws.path("ranker") / "model.ckpt", last)
    DAMAGES[damage](last)
    return last


@pytest.mark.timeout(300)
@pytest.mark.parametrize("damage", ["truncated", "garbage_inside"])
def test_a_retry_sets_a_damaged_epoch_checkpoint_aside_and_trains_from_scratch(upstream, copy_workspace, caplog, damage):
    """The crash that made Airflow retry cut last.ckpt short: the retry warns naming it and still
    finishes, with the model a fresh fit gives (no earlier epoch is kept to fall back on)."""
    runner = copy_workspace(upstream.root)
    last = plant_checkpoint(upstream, runner, upstream.params.paths.ranker, damage)
    with caplog.at_level(logging.WARNING, logger="saviorrec.checkpoints"):
        summary = run_stage("train_ranker", runner.ws, try_number=2)  # a retry passes ckpt_path="last"
    assert summary["resumed_from"] is None
    assert f"corrupt epoch checkpoint {last}" in caplog.text and "starts from scratch" in caplog.text
    assert summary["final_loss"] == upstream.summaries["train_ranker"]["final_loss"]  # the unbroken fit's model


@pytest.mark.timeout(300)
def test_a_retried_codebook_build_sets_a_damaged_space_checkpoint_aside(upstream, copy_workspace, caplog):
    """build_codebook keeps one last.ckpt per space (behavior, generic) and finds each itself, not through Lightning."""
    runner = copy_workspace(upstream.root)
    last = plant_checkpoint(upstream, runner, upstream.params.paths.codebook, "truncated", sub="behavior")
    with caplog.at_level(logging.WARNING, logger="saviorrec.checkpoints"):
        summary = run_stage("build_codebook", runner.ws, try_number=2)
    assert summary["resumed_from"] is None and f"corrupt epoch checkpoint {last}" in caplog.text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("stage", ["train_encoder", "build_codebook", "train_ranker"])
def test_an_explicit_damaged_checkpoint_is_an_error(upstream, copy_workspace, stage):
    """Someone chose that file (--ckpt-path): training from scratch instead would not be what they asked."""
    runner = copy_workspace(upstream.root)
    ckpt = plant_checkpoint(upstream, runner, "elsewhere", "garbage")
    with pytest.raises(CorruptFileError) as err:
        run_stage(stage, runner.ws, ckpt_path=ckpt)
    assert_names(err.value, "checkpoint to resume from", ckpt, "no --ckpt-path to train from scratch")


@pytest.mark.timeout(300)
def test_the_stage_command_prints_one_line_and_no_traceback(upstream, copy_workspace):
    runner, path = damaged_copy(upstream, copy_workspace, upstream.params.paths.embeddings, "truncated")
    proc = subprocess.run([sys.executable, "-m", "pipelines.build_codebook", "--workdir", str(runner.root),
                           "--params", str(runner.root / "params.yaml")],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: corrupt Parquet file {path} (truncated or overwritten: Parquet magic bytes not found "
                      "in footer): rerun train_encoder to rewrite it"], proc.stderr
