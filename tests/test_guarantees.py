"""The promises production rests on, each seen where it is kept.

- A ranker that really trained badly (the real neural ranker, fit on scrambled click labels)
  fails validate_model at the default thresholds, and promote leaves every byte of the
  registry's production model and pointer as it was.
- The S3 endpoint itself refuses a stale pointer move: the conditional write (If-Match /
  If-None-Match) is answered 412 and the other writer's object stays, both for the store's
  compare-and-swap and for two registries promoting from the same stale view.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from registry_fakes import fake_model_workspace
from test_s3_registry import s3_registry

from saviorrec.config import write_workspace_params
from saviorrec.stages import run_stage
from saviorrec.storage.artifacts import ConflictError, S3Store
from saviorrec.storage.registry import RegistryConflict, open_registry
from saviorrec.storage.s3 import s3_client
from saviorrec.workspace import StageError, Workspace

# ---- a badly trained ranker is refused ------------------------------------------------------

# Three passes over scrambled labels: the ID embeddings and the DNN memorize the noise (one pass
# barely moves the wide prior, so a one-epoch fit on noise scores like the heuristic it starts from).
BAD_EPOCHS = 3


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def scramble_training_labels(ws: Workspace, seed: int = 0) -> None:
    """Permute (click, conversion) across the rows of every training day, as a label-join bug
    would: same CTR, same conversions-after-clicks, no link left between an impression and its click."""
    train_end, _ = ws.split()
    rng = np.random.default_rng(seed)
    for day in ws.data_days():
        if day >= train_end:
            continue
        for part in sorted((ws.path("events") / f"ds={day}").glob("*.parquet")):
            table = pq.read_table(part)
            order = rng.permutation(table.num_rows)
            for name in ("click", "conversion"):
                index = table.schema.get_field_index(name)
                table = table.set_column(index, table.schema.field(index), table.column(name).take(order))
            pq.write_table(table, part, write_page_checksum=True)


def test_a_ranker_trained_on_scrambled_labels_is_refused_and_production_is_untouched(tiny_pipeline, tmp_path):
    """The real neural ranker fit on scrambled training labels, judged on the real log at the
    default thresholds: validate_model fails (AUC below production's and new-item AUC below the
    baseline's) and promote refuses without changing a byte of the registry."""
    for stage in ("evaluate", "baseline", "validate_logs", "validate_sids"):
        tiny_pipeline.run(stage)
    root = tmp_path / "ws"
    shutil.copytree(tiny_pipeline.root, root, ignore=shutil.ignore_patterns(".cache", "registry"))
    registry_root = tmp_path / "registry"
    write_workspace_params(root, {"registry.uri": str(registry_root)}, base=root / "params.yaml")
    ws = Workspace.open(root)

    # Production: this workspace's properly trained model (the tiny pipeline's real stages).
    registry = open_registry(ws.params, root=ws.root)
    registry.promote(registry.publish(ws, notes="properly trained"))
    before = tree_digest(registry_root)
    assert "models/saviorrec/production.json" in before and any(k.startswith("models/saviorrec/v1/artifacts/ranker/")
                                                                  for k in before)

    # The candidate trains on scrambled labels; the log it is judged on is the real one again.
    events_before = tree_digest(ws.path("events"))
    scramble_training_labels(ws)
    scrambled = tree_digest(ws.path("events"))
    eval_day = f"ds={ws.split()[0]}/"  # untouched: only training days are scrambled
    eval_files = {k: v for k, v in events_before.items() if k.startswith(eval_day)}
    assert eval_files and {k: v for k, v in scrambled.items() if k.startswith(eval_day)} == eval_files
    assert scrambled != events_before
    run_stage("train_ranker", Workspace.open(root, {"ranker.epochs": BAD_EPOCHS}))
    shutil.rmtree(ws.path("events"))
    shutil.copytree(tiny_pipeline.ws.path("events"), ws.path("events"))
    assert tree_digest(ws.path("events")) == events_before
    run_stage("evaluate", ws)
    # The baseline copied with the workspace was trained and scored on this same real log and window.
    assert ws.path("baseline_predictions").is_file()

    with pytest.raises(StageError) as gate_error:
        run_stage("validate_model", ws)
    message = str(gate_error.value)
    assert "CTR AUC below production's by more than 0.005" in message, message
    assert "below the content_frozen baseline's" in message and "by more than 0.01" in message, message
    verdict = json.loads(ws.gate_file("validate_model").read_text())
    failed = {f["check"] for f in verdict["critical_failures"]}
    assert {"auc_regression", "new_auc_vs_baseline"} <= failed, failed
    facts = verdict["facts"]
    assert facts["production"] is not None, "validate_model did not compare with the registry's production model"
    assert facts["candidate"]["auc"] < facts["production"]["auc"] - 0.05, facts

    with pytest.raises(StageError) as promote_error:
        run_stage("promote", ws)
    refusal = str(promote_error.value)
    assert "refusing to promote" in refusal and "validate_model: failed" in refusal, refusal
    assert "validate_logs" not in refusal and "validate_sids" not in refusal, refusal
    assert tree_digest(registry_root) == before  # every file of the bundle, the pointer, no new version


# ---- the S3 endpoint refuses a stale pointer move ------------------------------------------

POINTER = "models/saviorrec/production.json"


def own_client(store: S3Store) -> S3Store:
    """Give ``store`` a boto3 client of its own, as a writer in another process has (the library
    shares one cached client per endpoint within a process)."""
    store.client = s3_client.__wrapped__(store.endpoint_url, store.max_attempts)
    return store


def put_statuses(store: S3Store) -> list[int]:
    """The HTTP status the endpoint answered to each PutObject this store (with its own client) sends from now on."""
    statuses: list[int] = []
    store.client.meta.events.register(
        "after-call.s3.PutObject", lambda http_response, **_: statuses.append(http_response.status_code))
    return statuses


def test_s3_conditional_write_is_refused_by_the_endpoint(s3_server, s3_bucket):
    uri = f"s3://{s3_bucket}/team"
    writer, other = own_client(S3Store(uri, max_attempts=2)), own_client(S3Store(uri, max_attempts=2))
    raw = s3_server.client()  # reads what the endpoint holds, bypassing the store's code

    writer.put_if(POINTER, b'{"version": "v1"}', None)
    _, stale = writer.read_versioned(POINTER)
    _, current = other.read_versioned(POINTER)
    other.put_if(POINTER, b'{"version": "v2"}', current)  # the other writer moves it first

    statuses = put_statuses(writer)
    with pytest.raises(ConflictError, match="changed by a concurrent writer"):
        writer.put_if(POINTER, b'{"version": "v3"}', stale)  # If-Match with an outdated ETag
    with pytest.raises(ConflictError, match="changed by a concurrent writer"):
        writer.put_if(POINTER, b'{"version": "v3"}', None)  # If-None-Match: * on an existing key
    assert statuses == [412, 412], statuses  # the endpoint said Precondition Failed, twice
    body = raw.get_object(Bucket=s3_bucket, Key=f"team/{POINTER}")["Body"].read()
    assert body == b'{"version": "v2"}'


def test_s3_promotion_from_a_stale_view_is_refused_by_the_endpoint(s3_server, s3_bucket, tmp_path, monkeypatch):
    """Two registries (two clients) read the same pointer; the first promotes, then the second.

    Observed at the endpoint, not through the registry's own read-back: the second's PutObject is
    answered 412 and, with bucket versioning on, the pointer's version history holds no write of it.
    """
    raw = s3_server.client()
    raw.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    first, second = s3_registry(s3_bucket, tmp_path / "first"), s3_registry(s3_bucket, tmp_path / "second")
    own_client(second.store)
    first.promote(first.publish(fake_model_workspace(tmp_path / "A", "A")))
    v_b = first.publish(fake_model_workspace(tmp_path / "B", "B"))
    v_c = second.publish(fake_model_workspace(tmp_path / "C", "C"))

    read_pointer = second.store.read_versioned
    moved = []

    def stale_read(key):
        result = read_pointer(key)
        if key.endswith("production.json") and not moved:
            moved.append(first.promote(v_b))  # between the second's read and its write
        return result

    monkeypatch.setattr(second.store, "read_versioned", stale_read)
    statuses = put_statuses(second.store)
    with pytest.raises(RegistryConflict, match=f"{v_c} was not promoted"):
        second.promote(v_c)
    assert moved and statuses == [412], statuses  # one pointer write, refused by the endpoint

    key = f"team/{POINTER}"
    history = raw.list_object_versions(Bucket=s3_bucket, Prefix=key)["Versions"]
    written = [json.loads(raw.get_object(Bucket=s3_bucket, Key=key, VersionId=v["VersionId"])["Body"].read())["version"]
               for v in history if v["Key"] == key]
    assert sorted(written) == ["v1", v_b], written  # the loser's pointer never reached the store
    assert first.production()["version"] == v_b
