"""The S3 endpoint stops in the middle of an operation, then comes back (moto server on 127.0.0.1).

``stoppable_s3`` (tests/s3_server.py) cuts one request half-way through its body, closes the
listening socket and every open connection, then serves the same objects again after
``start()``. Each test checks: one clear error naming the endpoint, nothing half-written
visible, production untouched, and the same command succeeding once the endpoint is back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from registry_fakes import fake_model_workspace, ranker_tag
from typer.testing import CliRunner

from saviorrec.storage.artifacts import StorageError
from saviorrec.storage.registry import open_registry

REPO = Path(__file__).resolve().parents[1]
VERSIONS = "/team/models/saviorrec"

pytestmark = pytest.mark.timeout(180)


def s3_workspace(root: Path, tag: str, server):
    # registry.endpoint_url, not only AWS_ENDPOINT_URL: boto3 clients are cached per endpoint argument.
    return fake_model_workspace(root, tag, {"registry.uri": f"s3://{server.bucket}/team",
                                            "registry.endpoint_url": server.endpoint_url,
                                            "registry.max_attempts": 2,
                                            "registry.promote": "always"})  # each publish is meant to promote


def promote_command(ws, capsys) -> tuple[int, str, str]:
    """`python -m pipelines.promote --params P --workdir W`, in this process: (exit code, stdout, stderr)."""
    from pipelines.promote import main

    try:
        main(["--params", str(ws.root / "params.yaml"), "--workdir", str(ws.root)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def registry_command(*args: str):
    from saviorrec.cli import app

    return CliRunner().invoke(app, ["registry", *args])


def object_bytes(server, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` in the test bucket, read straight from the endpoint."""
    client = server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    return {key: client.get_object(Bucket=server.bucket, Key=key)["Body"].read() for key in keys}


def one_error_line(text: str) -> str:
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in text, text
    return errors[0]


def test_promote_stage_endpoint_stops_mid_publish(stoppable_s3, tmp_path, capsys):
    ws = s3_workspace(tmp_path / "A", "A", stoppable_s3)
    assert promote_command(ws, capsys)[0] == 0
    pointer_before = object_bytes(stoppable_s3, "team/models/saviorrec/production.json")
    assert json.loads(next(iter(pointer_before.values())))["version"] == "v1"

    ws = s3_workspace(tmp_path / "B", "B", stoppable_s3)
    trip = stoppable_s3.stop_during("PUT", rf"{VERSIONS}/v2/artifacts/", after=2)
    code, _, err = promote_command(ws, capsys)
    assert trip.reached.is_set() and stoppable_s3.stopped.is_set()
    line = one_error_line(err)
    assert code == 1 and "production unchanged" in line and stoppable_s3.endpoint_url in line, line
    assert "testing" not in err  # no credentials in the message

    listed = registry_command("list", "--params", str(ws.root / "params.yaml"))  # still down
    assert listed.exit_code == 1 and stoppable_s3.endpoint_url in one_error_line(listed.output)
    assert len(listed.output.strip().splitlines()) == 1

    stoppable_s3.start()  # back, with what it held when it stopped
    registry = open_registry(ws.params, root=tmp_path, cache_dir=tmp_path / "cache")
    assert object_bytes(stoppable_s3, "team/models/saviorrec/production.json") == pointer_before
    assert [(row["version"], row["complete"]) for row in registry.list()] == [("v1", True), ("v2", False)]
    assert registry.resolve("latest") == "v1"
    v2 = object_bytes(stoppable_s3, "team/models/saviorrec/v2/")
    assert "team/models/saviorrec/v2/manifest.json" not in v2
    assert trip.tripped_on.split(f"{stoppable_s3.bucket}/", 1)[1] not in v2  # the cut upload left no object
    listed = registry_command("list", "--params", str(ws.root / "params.yaml"))
    assert listed.exit_code == 0 and "v2" in listed.output and "(incomplete upload" in listed.output

    code, out, _ = promote_command(ws, capsys)  # the same command, endpoint back
    assert code == 0 and json.loads(out)["production"] == "v3", out
    assert ranker_tag(registry.production_workspace()) == "B"


def test_gc_on_s3_keeps_uploads_in_progress_and_complete_versions(stoppable_s3, tmp_path):
    registry = open_registry(s3_workspace(tmp_path / "cfg", "cfg", stoppable_s3).params, root=tmp_path,
                             cache_dir=tmp_path / "cache")
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))
    assert registry.publish(fake_model_workspace(tmp_path / "B", "B")) == "v2"
    # v3: files uploaded, then the endpoint died; v4: claimed, then it died before any file.
    for version, after in (("v3", 2), ("v4", 0)):
        stoppable_s3.stop_during("PUT", rf"{VERSIONS}/{version}/artifacts/", after=after)
        with pytest.raises(StorageError, match="Could not connect"):
            registry.publish(fake_model_workspace(tmp_path / version, version))
        stoppable_s3.start()
    assert [row["complete"] for row in registry.list()] == [True, True, False, False]
    kept = {name: object_bytes(stoppable_s3, f"team/models/saviorrec/{name}")
            for name in ("v1/", "v2/", "production.json")}

    # v5 is uploading right now (one of its PUTs held at the endpoint): gc with the default age keeps it.
    hold = stoppable_s3.hold_during("PUT", rf"{VERSIONS}/v5/artifacts/", after=3)
    published: list = []
    in_progress = fake_model_workspace(tmp_path / "E", "E")
    uploader = threading.Thread(target=lambda: published.append(registry.publish(in_progress)))
    uploader.start()
    try:
        assert hold.reached.wait(30)
        rows = registry.gc(dt.timedelta(hours=1), delete=True)
    finally:
        hold.released.set()
        uploader.join(60)
    assert {row["version"]: row["action"] for row in rows} == {"v3": "keep", "v4": "keep", "v5": "keep"}
    assert all(row["age"] < dt.timedelta(minutes=5) for row in rows)  # S3 LastModified read as UTC
    assert published == ["v5"] and registry.verify("v5")

    params = str(tmp_path / "cfg" / "params.yaml")
    dry = registry_command("gc", "--older-than", "0s", "--params", params)
    assert dry.exit_code == 0, dry.output
    assert "would remove v3" in dry.output and "would remove v4" in dry.output, dry.output
    assert [row["version"] for row in registry.list()] == ["v1", "v2", "v3", "v4", "v5"]
    removed = registry_command("gc", "--older-than", "0s", "--yes", "--params", params)
    assert removed.exit_code == 0, removed.output
    assert "removed      v3" in removed.output and "removed      v4" in removed.output
    assert [(row["version"], row["complete"]) for row in registry.list()] == [
        ("v1", True), ("v2", True), ("v5", True)]
    assert {name: object_bytes(stoppable_s3, f"team/models/saviorrec/{name}") for name in kept} == kept
    assert ranker_tag(registry.production_workspace()) == "A"


# ---- DVC remote ----------------------------------------------------------------------------

def dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # Two tries per request (botocore standard mode): the outage is reported in ~1 s, not after 5 backoffs.
    env = {**os.environ, "AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def dvc_ok(cwd: Path, *args: str) -> str:
    result = dvc(cwd, *args)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def dvc_repo(root: Path, bucket: str) -> Path:
    """A repository with the project's .dvc/config; config.local moves its remote to this test's bucket."""
    (root / ".dvc").mkdir(parents=True)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    (root / ".dvc" / "config.local").write_text(f"['remote \"storage\"']\n    url = s3://{bucket}/cache\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def test_dvc_push_endpoint_stops_mid_transfer(stoppable_s3, tmp_path):
    repo = dvc_repo(tmp_path / "repo", stoppable_s3.bucket)
    (repo / "data").mkdir()
    files = {f"part-{i}.bin": os.urandom(64 * 1024) for i in range(8)}
    for name, data in files.items():
        (repo / "data" / name).write_bytes(data)
    dvc_ok(repo, "add", "data")

    trip = stoppable_s3.stop_during("PUT", r"/cache/files/md5/", after=3)
    failed = dvc(repo, "push")
    assert trip.reached.is_set() and failed.returncode != 0
    assert stoppable_s3.endpoint_url in failed.stderr and "Traceback" not in failed.stderr, failed.stderr

    stoppable_s3.start()
    stored = object_bytes(stoppable_s3, "cache/")
    assert 0 < len(stored) < len(files) + 1, sorted(stored)  # some pushed, not all
    for key, data in stored.items():  # content-addressed: each object is whole or absent
        if not key.endswith(".dir"):
            assert hashlib.md5(data).hexdigest() == "".join(key.split("/")[-2:]), key
    assert not any(key.endswith(".dir") for key in stored)  # the directory is not visible as pushed
    assert trip.tripped_on.split(f"{stoppable_s3.bucket}/", 1)[1] not in stored

    dvc_ok(repo, "push")  # the same command, endpoint back
    clone = dvc_repo(tmp_path / "clone", stoppable_s3.bucket)
    shutil.copy(repo / "data.dvc", clone / "data.dvc")
    dvc_ok(clone, "pull")
    assert {p.name: p.read_bytes() for p in (clone / "data").iterdir()} == files
