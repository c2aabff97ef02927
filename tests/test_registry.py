"""Model registry on the local-directory backend: publish, promote, rollback, faults, races."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from registry_fakes import FailAfterUploads, fake_model_workspace, ranker_tag

from saviorrec.stages import run_stage
from saviorrec.storage.artifacts import LocalStore, StorageError
from saviorrec.storage.bundle import BundleError
from saviorrec.storage.registry import Registry, RegistryConflict, RegistryError, open_registry
from saviorrec.workspace import Workspace


@pytest.fixture
def registry(tmp_path):
    return Registry(LocalStore(tmp_path / "registry"), "saviorrec", tmp_path / "cache")


class FailingStore(FailAfterUploads, LocalStore):
    def __init__(self, root, fail_after: int):
        super().__init__(root)
        self.remaining = fail_after


def test_publish_promote_and_load(tmp_path, registry):
    ws = fake_model_workspace(tmp_path / "ws", "A")
    version = registry.publish(ws)
    assert version == "v1"
    assert registry.production() is None  # publishing alone does not promote
    assert registry.production_workspace() is None

    pointer = registry.promote(version)
    assert pointer["version"] == "v1" and pointer["previous"] is None
    model_ws = registry.production_workspace()
    assert ranker_tag(model_ws) == "A"
    # The bundle mirrors the workspace layout and carries its own resolved params.
    assert model_ws.params.paths == ws.params.paths
    assert model_ws.params.ranker == ws.params.ranker
    manifest = json.loads((model_ws.root / "manifest.json").read_text())
    assert "artifacts/encoder/model.pt" in manifest["files"] and "params.yaml" in manifest["files"]
    lineage = json.loads((model_ws.root / "lineage.json").read_text())
    assert lineage["preset"] == "tiny" and "commit" in lineage["git"]
    shown = registry.show("v1")
    assert shown["production"] and shown["metrics"]["ranker"]["tag"] == "A"
    assert [row["version"] for row in registry.list()] == ["v1"]


def test_resolved_params_reload_keeps_overrides(tmp_path, registry):
    """An override on top of the preset survives the trip through the bundle's params.yaml."""
    from saviorrec.workspace import Workspace

    ws = fake_model_workspace(tmp_path / "ws", "A")
    ws = Workspace.open(ws.root, {"ranker.epochs": 7})
    registry.promote(registry.publish(ws))
    assert registry.production_workspace().params.ranker.epochs == 7


def test_rollback(tmp_path, registry):
    for tag in ("A", "B", "C"):
        registry.promote(registry.publish(fake_model_workspace(tmp_path / tag, tag)))
    assert ranker_tag(registry.production_workspace()) == "C"
    assert registry.rollback()["version"] == "v2"
    assert ranker_tag(registry.production_workspace()) == "B"
    assert registry.rollback()["version"] == "v1"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    assert ranker_tag(registry.production_workspace()) == "A"


def test_failure_mid_upload_keeps_production(tmp_path, registry):
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))
    broken = Registry(FailingStore(registry.store.root, fail_after=3), "saviorrec", tmp_path / "cache")
    with pytest.raises(StorageError, match="injected failure"):
        broken.publish(fake_model_workspace(tmp_path / "B", "B"))
    assert registry.production()["version"] == "v1"
    assert ranker_tag(registry.production_workspace()) == "A"
    assert all(row["complete"] for row in registry.list())  # the partial upload was removed


def test_incomplete_or_corrupt_version_is_never_promoted(tmp_path, registry):
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))
    v2 = registry.publish(fake_model_workspace(tmp_path / "B", "B"))
    # Simulate a crash before the manifest: the version exists but is incomplete.
    (registry.store.root / "models/saviorrec" / v2 / "manifest.json").unlink()
    with pytest.raises(RegistryError, match="incomplete"):
        registry.promote(v2)
    v3 = registry.publish(fake_model_workspace(tmp_path / "C", "C"))
    (registry.store.root / "models/saviorrec" / v3 / "artifacts/ranker/model.ckpt").write_text("bit rot")
    with pytest.raises(RegistryError, match="corrupt: artifacts/ranker/model.ckpt"):
        registry.promote(v3)
    assert ranker_tag(registry.production_workspace()) == "A"


def promote_two_at_once(registry, tmp_path) -> str:
    """Production A, then B and C promoted concurrently: exactly one wins, the other gets a conflict."""
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))
    candidates = [registry.publish(fake_model_workspace(tmp_path / t, t)) for t in ("B", "C")]
    outcomes = race_promotions(registry, candidates)
    winners = [v for v, result in outcomes.items() if result == "ok"]
    assert len(winners) == 1, outcomes
    assert all(isinstance(r, RegistryConflict) for r in outcomes.values() if r != "ok")
    return winners[0]


def test_concurrent_promotions_one_wins(tmp_path, registry):
    winner = promote_two_at_once(registry, tmp_path)
    pointer = registry.production()
    assert pointer["version"] == winner and pointer["previous"] == "v1"
    assert ranker_tag(registry.production_workspace()) == {"v2": "B", "v3": "C"}[winner]


def race_promotions(registry, versions) -> dict:
    """Promote each version from its own thread, all reading the same pointer before writing."""
    barrier = threading.Barrier(len(versions))
    original = registry.store.read_versioned
    outcomes: dict = {}

    waited = threading.local()

    def read_then_wait(key):
        result = original(key)
        if key.endswith("production.json") and not getattr(waited, "done", False):
            waited.done = True
            barrier.wait(timeout=10)  # every thread has read the old pointer: a true race
        return result

    registry.store.read_versioned = read_then_wait

    def promote(version):
        try:
            registry.promote(version)
            outcomes[version] = "ok"
        except RegistryError as err:
            outcomes[version] = err

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    registry.store.read_versioned = original
    return outcomes


def test_concurrent_publishes_get_distinct_versions(tmp_path, registry):
    workspaces = [fake_model_workspace(tmp_path / t, t) for t in "ABCD"]
    results: list[str] = []
    threads = [threading.Thread(target=lambda w=w: results.append(registry.publish(w))) for w in workspaces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["v1", "v2", "v3", "v4"]
    for version in results:
        registry.verify(version)


def test_missing_artifact_is_named(tmp_path, registry):
    ws = fake_model_workspace(tmp_path / "ws", "A")
    (ws.path("sids")).unlink()
    with pytest.raises(BundleError, match="missing sids"):
        registry.publish(ws)
    assert registry.versions() == []


def test_open_registry_resolves_relative_uri(tmp_path):
    ws = fake_model_workspace(tmp_path / "ws", "A")
    registry = open_registry(ws.params, root=ws.root)
    assert registry.store.root == ws.root / "registry"


def test_promote_stage_refuses_without_passing_gates(tmp_path):
    from saviorrec.workspace import StageError

    ws = fake_model_workspace(tmp_path / "ws", "A")
    ws.gate_file("validate_sids").write_text(json.dumps({
        "gate": "validate_sids", "passed": False,
        "critical_failures": [{"expectation": "max_raw_collision_rate", "observed": 0.2, "message": "x"}]}))
    ws.gate_file("validate_model").unlink()
    with pytest.raises(StageError) as err:
        run_stage("promote", ws)
    assert "validate_sids: failed (max_raw_collision_rate)" in str(err.value)
    assert "validate_model: no verdict" in str(err.value)
    assert not (ws.root / "registry").exists()


def test_promote_stage_follows_the_promote_policy(tmp_path, caplog):
    """first (default): only the first model becomes production; always / never; old booleans keep their meaning."""
    from saviorrec.storage.promotion import receipt_path

    caplog.set_level(logging.INFO, logger="saviorrec.promote")

    ws = fake_model_workspace(tmp_path / "ws", "A")
    assert ws.params.registry.promote == "first"
    first = run_stage("promote", ws)
    assert first["production"] == "v1" and first["previous"] is None and first["promoted"]
    second = run_stage("promote", ws)
    assert second["version"] == "v2" and second["production"] == "v1" and not second["promoted"]
    receipt = json.loads(receipt_path(ws).read_text())
    assert receipt["version"] == "v2" and receipt["to_promote"] == "saviorrec registry promote v2"
    assert "production stays v1" in caplog.text

    def run(policy) -> dict:
        return run_stage("promote", Workspace.open(ws.root, {"registry.promote": policy}))

    assert run("always")["production"] == "v3"
    assert run("never")["production"] == "v3"      # v4 published only
    assert run(True)["production"] == "v5"         # true meant "promote": always
    assert run(False)["production"] == "v5"        # false meant "publish only": never
    assert run("first")["production"] == "v5"
    pointer = open_registry(ws.params, root=ws.root).production()
    assert pointer["history"] == ["v1", "v3", "v5"]
    assert [r["version"] for r in pointer["promotions"]] == ["v1", "v3", "v5"]
    assert all(r["by"].startswith("promote stage (") for r in pointer["promotions"])


def test_registry_cli(tmp_path):
    from typer.testing import CliRunner

    from saviorrec.cli import app

    for tag in ("A", "B"):
        ws = fake_model_workspace(tmp_path / tag, tag, {"registry.uri": str(tmp_path / "shared-registry")})
        Registry(LocalStore(tmp_path / "shared-registry"), "saviorrec", tmp_path / "cache").publish(ws)
    params = ["--params", str(ws.root / "params.yaml")]
    runner = CliRunner()

    listed = runner.invoke(app, ["registry", "list", *params])
    assert listed.exit_code == 0 and "v1" in listed.output and "*" not in listed.output
    assert runner.invoke(app, ["registry", "promote", "v1", *params]).exit_code == 0
    promoted = runner.invoke(app, ["registry", "promote", "latest", *params])
    assert promoted.exit_code == 0 and "production saviorrec: v1 -> v2 (promoted by cli (" in promoted.output
    shown = json.loads(runner.invoke(app, ["registry", "show", "production", "--json", *params]).output)
    assert shown["version"] == "v2" and shown["metrics"]["ranker"]["tag"] == "B"
    rolled = runner.invoke(app, ["registry", "rollback", *params])
    assert rolled.exit_code == 0 and json.loads(rolled.output)["version"] == "v1"
    assert "* v1" in runner.invoke(app, ["registry", "list", *params]).output

    missing = runner.invoke(app, ["registry", "promote", "v9", *params])
    assert missing.exit_code == 1 and "v9 is unknown" in missing.output

    summary = runner.invoke(app, ["registry", "summary", *params])
    assert summary.exit_code == 0 and "production model : saviorrec v1" in summary.output
    assert "metrics/ranker.json" in summary.output and "reports/gates/validate_model.json" in summary.output


def test_held_pointer_lock_is_a_conflict(tmp_path, monkeypatch):
    """A compare-and-swap waits for the pointer's file lock, then gives up as a conflict."""
    from filelock import FileLock

    from saviorrec.storage.artifacts import ConflictError

    store = LocalStore(tmp_path / "registry")
    monkeypatch.setattr(LocalStore, "LOCK_TIMEOUT_S", 0.2)
    store.put_if("models/x/production.json", b"v1", None)
    _, token = store.read_versioned("models/x/production.json")
    with FileLock(tmp_path / "registry/models/x/production.json.lock"):
        with pytest.raises(ConflictError, match="held by another writer"):
            store.put_if("models/x/production.json", b"v2", token)
    store.put_if("models/x/production.json", b"v2", token)
    assert store.get_bytes("models/x/production.json") == b"v2"
    assert store.list_children("models/x") == ["production.json"]


# ---- gc: incomplete versions left by uploads that died ----------------------------------------

def backdate(path, hours: float) -> None:
    """Make ``path`` and everything under it look last written ``hours`` ago."""
    import os
    import time

    when = time.time() - hours * 3600
    for item in [*path.rglob("*"), path]:
        os.utime(item, (when, when))


def tree_bytes(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_registry_gc_cli_removes_only_old_incomplete_versions(tmp_path):
    from typer.testing import CliRunner

    from saviorrec.cli import app

    shared = tmp_path / "shared-registry"
    registry = Registry(LocalStore(shared), "saviorrec", tmp_path / "cache")
    models = shared / "models" / "saviorrec"
    registry.promote(registry.publish(fake_model_workspace(tmp_path / "A", "A")))  # v1, production
    registry.publish(fake_model_workspace(tmp_path / "B", "B"))  # v2, complete
    registry.publish(fake_model_workspace(tmp_path / "C", "C"))  # v3: killed before its manifest
    (models / "v3" / "manifest.json").unlink()
    registry._claim_version()  # v4: killed right after claiming its name
    registry._claim_version()  # v5: a long upload, claimed 2 h ago, still writing files now
    for version in ("v1", "v2", "v3", "v4", "v5"):
        backdate(models / version, hours=2)
    registry.store.put_bytes("models/saviorrec/v5/artifacts/sids.parquet", b"latest file")
    kept = {name: tree_bytes(models / name) for name in ("v1", "v2", "v5")}
    pointer = (models / "production.json").read_bytes()

    ws = fake_model_workspace(tmp_path / "cfg", "cfg", {"registry.uri": str(shared)})
    params = ["--params", str(ws.root / "params.yaml")]
    runner = CliRunner()
    dry = runner.invoke(app, ["registry", "gc", *params])
    assert dry.exit_code == 0, dry.output
    assert "would remove v3" in dry.output and "would remove v4" in dry.output
    assert "keep         v5     written to recently" in dry.output
    assert "re-run with --yes to remove 2" in dry.output
    complete_listed = [line for line in dry.output.splitlines()[1:] if " v1 " in line or " v2 " in line]
    assert not complete_listed  # complete versions are no gc candidates
    assert registry.versions() == ["v1", "v2", "v3", "v4", "v5"]  # a dry run changes nothing

    removed = runner.invoke(app, ["registry", "gc", "--yes", *params])
    assert removed.exit_code == 0, removed.output
    assert "removed      v3" in removed.output and "removed      v4" in removed.output
    assert registry.versions() == ["v1", "v2", "v5"]
    assert {name: tree_bytes(models / name) for name in kept} == kept
    assert (models / "production.json").read_bytes() == pointer
    assert ranker_tag(registry.production_workspace()) == "A"

    again = runner.invoke(app, ["registry", "gc", "--yes", *params])
    assert again.exit_code == 0 and "removed" not in again.output and "keep         v5" in again.output

    bad = runner.invoke(app, ["registry", "gc", "--older-than", "an hour", *params])
    assert bad.exit_code == 1 and bad.output.strip().count("\n") == 0
    assert "--older-than 'an hour': expected a number and a unit" in bad.output


def test_gc_never_removes_a_version_the_production_pointer_names(tmp_path, registry):
    """Even with its manifest lost, production (and what rollback goes back to) stays."""
    import datetime as dt

    for tag in ("A", "B"):
        registry.promote(registry.publish(fake_model_workspace(tmp_path / tag, tag)))
    models = registry.store.root / "models" / "saviorrec"
    for version in ("v1", "v2"):
        (models / version / "manifest.json").unlink()
        backdate(models / version, hours=2)
    before = tree_bytes(models)
    rows = registry.gc(dt.timedelta(hours=1), delete=True)
    assert [(row["version"], row["action"]) for row in rows] == [("v1", "keep"), ("v2", "keep")]
    assert all(row["reason"] == "named by the production pointer" for row in rows)
    assert tree_bytes(models) == before


def test_a_promotion_decided_on_a_production_that_moved_since_is_refused(tmp_path, registry):
    v1 = registry.publish(fake_model_workspace(tmp_path / "A", "A"))
    v2 = registry.publish(fake_model_workspace(tmp_path / "B", "B"))
    with pytest.raises(RegistryConflict, match="production of saviorrec is None now, not v9"):
        registry.promote(v1, expected="v9")
    registry.promote(v1, expected=None)
    with pytest.raises(RegistryConflict, match="is v1 now, not None"):
        registry.promote(v2, expected=None)  # decided while there was no production: a lost race
    assert registry.production()["version"] == "v1"


def test_two_first_runs_racing_leave_the_first_winner_in_production(tmp_path, monkeypatch):
    """`first` decides on the pointer it read; another run promoting meanwhile is not overwritten."""
    ws = fake_model_workspace(tmp_path / "ws", "A")
    other = fake_model_workspace(tmp_path / "other", "B")
    registry = open_registry(ws.params, root=ws.root)
    real_production = Registry.production
    sneaked = []

    def production_then_another_run(self):
        seen = real_production(self)
        if not sneaked:  # right after our read, another fresh run publishes and promotes
            sneaked.append(self.promote(self.publish(other)))
        return seen

    monkeypatch.setattr(Registry, "production", production_then_another_run)
    receipt = run_stage("promote", ws)
    monkeypatch.setattr(Registry, "production", real_production)
    assert sneaked[0]["version"] == "v2" and receipt["version"] == "v1" and not receipt["promoted"]
    assert registry.production()["version"] == "v2" and ranker_tag(registry.production_workspace()) == "B"
