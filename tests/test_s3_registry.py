"""Registry and DVC remote against a real S3 endpoint over HTTP (moto server on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from registry_fakes import FailAfterUploads, fake_model_workspace, ranker_tag
from test_registry import promote_two_at_once

from saviorrec.storage.artifacts import S3Store, StorageError
from saviorrec.storage.registry import Registry, open_registry
from saviorrec.storage.s3 import s3_client

REPO = Path(__file__).resolve().parents[1]


def s3_registry(bucket: str, tmp_path: Path, store=None) -> Registry:
    """The registry exactly as params open it: only ``registry.uri`` differs from the default."""
    ws = fake_model_workspace(tmp_path / "cfg", "cfg", {"registry.uri": f"s3://{bucket}/team", "registry.max_attempts": 2})
    registry = open_registry(ws.params, root=tmp_path, cache_dir=tmp_path / "cache")
    if store is not None:
        registry.store = store
    return registry


class FailingS3Store(FailAfterUploads, S3Store):
    def __init__(self, uri, fail_after: int):
        super().__init__(uri, max_attempts=2)
        self.remaining = fail_after


def test_publish_promote_rollback_on_s3(s3_bucket, tmp_path):
    registry = s3_registry(s3_bucket, tmp_path)
    assert isinstance(registry.store, S3Store)
    for tag in ("A", "B"):
        registry.promote(registry.publish(fake_model_workspace(tmp_path / tag, tag)))
    keys = s3_client(os.environ["AWS_ENDPOINT_URL"], 2).list_objects_v2(Bucket=s3_bucket, Prefix="team/")["Contents"]
    names = {obj["Key"] for obj in keys}
    assert "team/models/saviorrec/production.json" in names
    assert "team/models/saviorrec/v2/artifacts/ranker/model.ckpt" in names
    model_ws = registry.production_workspace()  # downloaded + verified into the cache
    assert ranker_tag(model_ws) == "B" and model_ws.root.is_relative_to(tmp_path / "cache")
    assert registry.show("v2")["metrics"]["ranker"]["tag"] == "B"

    assert registry.rollback()["version"] == "v1"
    assert ranker_tag(registry.production_workspace()) == "A"


def test_failure_mid_upload_keeps_previous_production(s3_bucket, tmp_path):
    registry = s3_registry(s3_bucket, tmp_path)
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))
    broken = s3_registry(s3_bucket, tmp_path, store=FailingS3Store(f"s3://{s3_bucket}/team", fail_after=4))
    with pytest.raises(StorageError, match="injected failure"):
        broken.publish(fake_model_workspace(tmp_path / "B", "B"))
    assert registry.production()["version"] == "v1"
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)  # load from S3 again, not from the cache
    assert ranker_tag(registry.production_workspace()) == "A"
    assert [row["version"] for row in registry.list()] == ["v1"]


def test_concurrent_promotions_one_wins_on_s3(s3_bucket, tmp_path):
    registry = s3_registry(s3_bucket, tmp_path)
    winner = promote_two_at_once(registry, tmp_path)
    assert registry.production()["version"] == winner
    assert ranker_tag(registry.production_workspace()) == {"v2": "B", "v3": "C"}[winner]


def test_endpoint_down_is_a_clear_error_after_retries(s3_bucket, tmp_path, monkeypatch):
    from s3_server import free_port

    registry = s3_registry(s3_bucket, tmp_path)
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))

    dead = f"http://127.0.0.1:{free_port()}"
    down = Registry(S3Store(f"s3://{s3_bucket}/team", endpoint_url=dead, max_attempts=3), "saviorrec", tmp_path / "c2")
    attempts = []
    down.store.client.meta.events.register("before-send.s3", lambda **kw: attempts.append(1))
    with pytest.raises(StorageError) as err:
        down.publish(fake_model_workspace(tmp_path / "B", "B"))
    message = str(err.value)
    assert "after 3 attempts" in message and dead in message and "testing" not in message
    assert len(attempts) == 3  # botocore retried before giving up
    # Nothing was half-written: the live endpoint still has only v1, in production.
    assert [row["version"] for row in registry.list()] == ["v1"]
    assert registry.production()["version"] == "v1"


def dvc(cwd: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_dvc_push_pull_round_trip(s3_server, s3_bucket, tmp_path):
    """The project's DVC remote exactly as committed; endpoint and credentials from the environment."""
    client = s3_client(os.environ["AWS_ENDPOINT_URL"], 2)
    remote_url = configparser_remote_url(REPO / ".dvc" / "config")
    bucket, prefix = remote_url[len("s3://"):].split("/", 1)
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    (repo / "data").mkdir()
    (repo / "data" / "events.parquet").write_bytes(os.urandom(2048))
    (repo / "data" / "items.csv").write_text("item_id,title\n1,a\n")
    dvc(repo, "add", "data")
    dvc(repo, "push")
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    assert listed["KeyCount"] >= 3  # two files + the directory listing

    original = (repo / "data" / "events.parquet").read_bytes()
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc(repo, "pull")
    assert (repo / "data" / "events.parquet").read_bytes() == original
    assert (repo / "data" / "items.csv").read_text() == "item_id,title\n1,a\n"
    assert "testing" not in (repo / ".dvc" / "config").read_text()  # no credentials in config


def configparser_remote_url(config: Path) -> str:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(config)
    default = parser["core"]["remote"]
    return parser[f"'remote \"{default}\"'"]["url"]
