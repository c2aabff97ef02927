"""Model registry on an ArtifactStore (local directory by default, S3 with one config change).

Layout under the store root (``registry.uri``)::

    models/NAME/v1/...             one bundle (workspace layout, see saviorrec.storage.bundle)
    models/NAME/v1/manifest.json   written last: a version without it is incomplete
    models/NAME/production.json    {"version", "previous", "promoted_at", "promoted_by", "history", "promotions"}

A manifest also records what ``registry list`` shows without reading the bundle: the setting the
model was trained on (preset, data source, world fingerprint; ``saviorrec.storage.lineage``), its
evaluation window and AUCs, and each gate's verdict. ``history`` lists version names (rollback
walks it); ``promotions`` says who moved the pointer to each one and what a ``--force`` overrode.

A version without a manifest is an upload that died (or is still running); ``Registry.gc``
removes those once nothing has written to them for a while.

Publishing claims a fresh version name with a conditional write, uploads every file,
re-reads each file's checksum from the store and only then writes the manifest. Promoting
verifies the version again and moves the pointer with a compare-and-swap, so a crash or an
unreachable store at any step leaves the previous production model intact and loadable,
and of two concurrent promotions exactly one wins.

    from saviorrec.storage.registry import open_registry
    registry = open_registry(params)
    version = registry.publish(ws); registry.promote(version)
    model_ws = registry.production_workspace()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from saviorrec.config import Params
from saviorrec.storage.artifacts import (
    ArtifactNotFound,
    ArtifactStore,
    ConflictError,
    StorageError,
    open_store,
    sha256_file,
)
from saviorrec.storage.bundle import (
    GATES,
    LINEAGE,
    MANIFEST,
    PARAMS,
    build_manifest,
    collect_bundle,
    evaluation_from_verdict,
    model_summary,
)
from saviorrec.storage.lineage import training_setting
from saviorrec.workspace import Workspace

log = logging.getLogger("saviorrec.registry")

POINTER = "production.json"
CLAIM = "_claim.json"
_VERSION = re.compile(r"^v(\d+)$")


class RegistryError(ValueError):
    """A registry operation cannot proceed; the message names the version and the problem."""


class RegistryConflict(RegistryError):
    """Another writer moved the production pointer (or took the version) first."""


ANY_PRODUCTION = object()  # Registry.promote(expected=...) not given: whatever production is


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _version_number(version: str) -> int:
    match = _VERSION.match(version)
    if not match:
        raise RegistryError(f"not a version name: {version!r} (expected v1, v2, ...)")
    return int(match.group(1))


class Registry:
    def __init__(self, store: ArtifactStore, model_name: str, cache_dir: Path, root: Path | None = None):
        self.store = store
        self.name = model_name
        self.cache_dir = Path(cache_dir)
        self.root = Path(root) if root is not None else None  # relative data folders of old params resolve here
        self.prefix = f"models/{model_name}"

    def __repr__(self) -> str:
        return f"Registry({self.store.describe(self.prefix)})"

    def _key(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts])

    # ---- reading ----------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Every version name (complete or not), oldest first."""
        names = [n for n in self.store.list_children(self.prefix) if _VERSION.match(n)]
        return sorted(names, key=_version_number)

    def manifest(self, version: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.get_bytes(self._key(version, MANIFEST)))
        except ArtifactNotFound:
            return None

    def production(self) -> dict[str, Any] | None:
        data, _ = self.store.read_versioned(self._key(POINTER))
        return json.loads(data) if data else None

    def list(self) -> list[dict[str, Any]]:
        """One row per version: what it was trained on, how it scored, its gates, who promoted it."""
        pointer = self.production() or {}
        rows = []
        for version in self.versions():
            manifest = self.manifest(version)
            row = {
                "version": version,
                "complete": manifest is not None,
                "created_at": (manifest or {}).get("created_at"),
                "files": len((manifest or {}).get("files", {})),
                "production": version == pointer.get("version"),
                "promoted_by": promoted_by(pointer, version),
            }
            if manifest is not None:
                row.update(self.summary(version, manifest))
            rows.append(row)
        return rows

    def summary(self, version: str, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
        """{"setting", "setting_recorded", "evaluation", "gates"} of a complete version.

        Versions published before manifests recorded these: read from the bundle's own files
        (lineage.json, params.yaml, reports/gates/*.json), ``setting_recorded`` False.
        """
        manifest = manifest or self._require_manifest(version)
        if "setting" in manifest:
            return {"setting": manifest["setting"], "setting_recorded": True,
                    "evaluation": manifest.get("evaluation") or {}, "gates": manifest.get("gates") or {}}
        gates, evaluation = {}, {}
        for gate in GATES:
            verdict = self._bundle_json(version, manifest, f"reports/gates/{gate}.json")
            gates[gate] = None if verdict is None else verdict.get("passed") is True
            if gate == "validate_model" and verdict:
                evaluation = evaluation_from_verdict(verdict)
        return {"setting": self.derived_setting(version), "setting_recorded": False,
                "evaluation": evaluation, "gates": gates}

    def derived_setting(self, version: str, root: Path | None = None) -> dict[str, Any]:
        """The setting of ``version`` computed from its own params.yaml (relative data folders
        read against ``root``, default the current directory)."""
        from saviorrec.config import load_params

        scratch = self.cache_dir / ".params" / self.name / version
        scratch.mkdir(parents=True, exist_ok=True)
        self.store.get_file(self._key(version, PARAMS), scratch / PARAMS)
        return training_setting(load_params(scratch / PARAMS), root or self.root or Path.cwd())

    def setting(self, version: str, root: Path | None = None) -> tuple[dict[str, Any], bool]:
        """(setting, recorded at publish time) of a complete version."""
        manifest = self._require_manifest(version)
        if "setting" in manifest:
            return manifest["setting"], True
        return self.derived_setting(version, root), False

    def _bundle_json(self, version: str, manifest: dict[str, Any], key: str) -> dict[str, Any] | None:
        if key not in manifest.get("files", {}):
            return None
        try:
            return json.loads(self.store.get_bytes(self._key(version, key)))
        except (ArtifactNotFound, json.JSONDecodeError):
            return None

    def show(self, version: str) -> dict[str, Any]:
        manifest = self._require_manifest(version)
        files = manifest["files"]
        metrics = {}
        for key in files:
            if key.startswith("metrics/") and key.endswith(".json"):
                metrics[Path(key).stem] = json.loads(self.store.get_bytes(self._key(version, key)))
        pointer = self.production() or {}
        return {
            "version": version,
            "uri": self.store.describe(self._key(version)),
            "production": version == pointer.get("version"),
            "promoted_by": promoted_by(pointer, version),
            "created_at": manifest.get("created_at"),
            "published_by": manifest.get("published_by"),
            "notes": manifest.get("notes"),
            "files": len(files),
            "bytes": sum(f["size"] for f in files.values()),
            **self.summary(version, manifest),
            "lineage": json.loads(self.store.get_bytes(self._key(version, LINEAGE))),
            "metrics": metrics,
        }

    def _require_manifest(self, version: str) -> dict[str, Any]:
        _version_number(version)
        manifest = self.manifest(version)
        if manifest is None:
            known = ", ".join(self.versions()) or "none"
            state = "incomplete (its upload never finished)" if version in self.versions() else "unknown"
            raise RegistryError(f"model {self.name} version {version} is {state}; versions: {known}")
        return manifest

    def verify(self, version: str) -> dict[str, Any]:
        """Re-read the checksum of every file of ``version`` from the store; RegistryError on any mismatch."""
        manifest = self._require_manifest(version)
        bad = []
        for key, expected in manifest["files"].items():
            try:
                sha, size = self.store.checksum(self._key(version, key))
            except ArtifactNotFound:
                bad.append(f"{key} (missing)")
                continue
            if sha != expected["sha256"] or size != expected["size"]:
                bad.append(f"{key} (checksum mismatch)")
        if bad:
            raise RegistryError(f"model {self.name} version {version} is corrupt: {', '.join(bad[:5])}")
        return manifest

    # ---- writing ----------------------------------------------------------------------

    def _claim_version(self) -> str:
        """The next free version name, taken with a conditional write (concurrent publishers differ)."""
        existing = [_version_number(v) for v in self.versions()]
        number = max(existing, default=0) + 1
        for _ in range(100):
            version = f"v{number}"
            claim = json.dumps({"claimed_at": _now(), "by": uuid.uuid4().hex}).encode()
            try:
                self.store.put_if(self._key(version, CLAIM), claim, None)
                return version
            except ConflictError:
                number += 1
        raise RegistryConflict("could not claim a version name after 100 tries")

    def publish(self, ws: Workspace, notes: str | None = None, by: str | None = None) -> str:
        """Upload the model of workspace ``ws`` as a new version; returns its name (not promoted)."""
        bundle = collect_bundle(ws)
        summary = model_summary(ws)
        version = self._claim_version()
        log.info("publishing %s %s to %s", self.name, version, self.store.describe(self._key(version)))
        try:
            entries: dict[str, tuple[str, int]] = {}
            for key, path in bundle.files.items():
                entries[key] = (sha256_file(path), path.stat().st_size)
                self.store.put_file(path, self._key(version, key))
            for key, data in bundle.generated.items():
                entries[key] = (hashlib.sha256(data).hexdigest(), len(data))
                self.store.put_bytes(self._key(version, key), data)
            for key, expected in entries.items():  # read back what the store holds
                if self.store.checksum(self._key(version, key)) != expected:
                    raise RegistryError(f"upload of {key} to {self.name} {version} did not verify (checksum)")
            extra = {**summary, "published_by": by, **({"notes": notes} if notes else {})}
            self.store.put_if(self._key(version, MANIFEST), build_manifest(version, self.name, entries, extra), None)
        except BaseException:
            # Best effort: drop the partial upload (it has no manifest, so nothing can use it anyway).
            try:
                self.store.delete_prefix(self._key(version))
            except Exception:  # noqa: BLE001 - the store may be the thing that failed
                log.warning("could not remove incomplete %s %s; it stays unusable (no manifest) until "
                            "`saviorrec registry gc` removes it", self.name, version)
            raise
        return version

    def promote(self, version: str, by: str | None = None, overrode: list[str] | None = None,
                expected: str | None | object = ANY_PRODUCTION) -> dict[str, Any]:
        """Move the production pointer to ``version`` after verifying every file of it.

        ``by`` (who or what promotes) and ``overrode`` (the refusals a ``--force`` overrode) are
        recorded in the pointer's ``promotions``. ``expected``: the production version (None: none)
        the caller decided on; RegistryConflict when the pointer no longer says so. This call
        checks neither gates nor settings: ``saviorrec.storage.promotion`` does.
        """
        self.verify(version)
        data, token = self.store.read_versioned(self._key(POINTER))
        current = json.loads(data) if data else None
        if expected is not ANY_PRODUCTION and (current or {}).get("version") != expected:
            raise RegistryConflict(f"production of {self.name} is {(current or {}).get('version')} now, "
                                   f"not {expected} as when the promotion was decided")
        if current and current["version"] == version:
            return current
        history = [*(current or {}).get("history", []), version]
        now = _now()
        record = {"version": version, "at": now, "by": by or "python API", **({"overrode": overrode} if overrode else {})}
        pointer = {
            "version": version,
            "previous": (current or {}).get("version"),
            "promoted_at": now,
            "promoted_by": record["by"],
            "history": history[-50:],
            "promotions": [*(current or {}).get("promotions", []), record][-50:],
        }
        self._move_pointer(pointer, token)
        log.info("production %s: %s -> %s", self.name, pointer["previous"], version)
        return pointer

    def rollback(self, by: str | None = None) -> dict[str, Any]:
        """Point production back at the version promoted before the current one."""
        data, token = self.store.read_versioned(self._key(POINTER))
        if not data:
            raise RegistryError(f"model {self.name} has no production version to roll back from")
        current = json.loads(data)
        history = current.get("history") or [current["version"]]
        if len(history) < 2:
            raise RegistryError(f"model {self.name}: nothing to roll back to ({current['version']} is the first)")
        target = history[-2]
        self.verify(target)
        now = _now()
        record = {"version": target, "at": now, "by": by or "python API", "rolled_back_from": current["version"]}
        pointer = {"version": target, "previous": current["version"], "promoted_at": now, "promoted_by": record["by"],
                   "history": history[:-1], "rolled_back_from": current["version"],
                   "promotions": [*current.get("promotions", []), record][-50:]}
        self._move_pointer(pointer, token)
        log.info("production %s rolled back: %s -> %s", self.name, current["version"], target)
        return pointer

    def _move_pointer(self, pointer: dict[str, Any], token: str | None) -> None:
        body = (json.dumps(pointer, indent=2, sort_keys=True) + "\n").encode()
        try:
            self.store.put_if(self._key(POINTER), body, token)
            # Read back: a store whose conditional writes are weaker than S3's must not fool us.
            if self.store.read_versioned(self._key(POINTER))[0] != body:
                raise ConflictError("pointer overwritten right after the write")
        except ConflictError:
            now = (self.production() or {}).get("version")
            raise RegistryConflict(
                f"the production pointer of {self.name} moved concurrently (now {now}); "
                f"{pointer['version']} was not promoted, retry if still wanted"
            ) from None

    # ---- garbage collection ------------------------------------------------------------

    def gc(self, older_than: dt.timedelta, delete: bool = False) -> list[dict[str, Any]]:
        """Every incomplete version (no manifest: an upload that died), each marked ``remove`` or ``keep``.

        Only an incomplete version whose last write is older than ``older_than`` is removed:
        a younger one may be an upload still running (it writes file after file). Complete
        versions are never touched, nor any version the production pointer names (current,
        previous, history). With ``delete`` the ``remove`` rows are deleted, each after one
        more manifest check; otherwise nothing changes (a dry run).
        """
        pointer = self.production() or {}
        pinned = {pointer.get("version"), pointer.get("previous"), *pointer.get("history", [])} - {None}
        now = dt.datetime.now(dt.UTC)
        rows = []
        for version in self.versions():
            if self.manifest(version) is not None:
                continue
            prefix = self._key(version)
            last_write = self.store.last_modified(prefix)
            if last_write is None:  # removed by someone else meanwhile
                continue
            age = max(now - last_write, dt.timedelta(0))
            row = {"version": version, "files": len(self.store.list_keys(prefix)), "age": age,
                   "action": "keep", "removed": False}
            if version in pinned:
                row["reason"] = "named by the production pointer"
            elif age < older_than:
                row["reason"] = "written to recently: its upload may still be running"
            else:
                row["action"], row["reason"] = "remove", "incomplete (no manifest)"
            rows.append(row)
        if delete:
            for row in rows:
                if row["action"] != "remove":
                    continue
                if self.manifest(row["version"]) is not None:  # its upload finished after all
                    row["action"], row["reason"] = "keep", "completed while gc ran"
                    continue
                self.store.delete_prefix(self._key(row["version"]))
                row["removed"] = True
                log.info("gc removed incomplete %s %s", self.name, row["version"])
        return rows

    # ---- using a version ----------------------------------------------------------------

    def version_dir(self, version: str) -> Path:
        """A verified local copy of ``version`` under the cache (users never write into the registry)."""
        manifest = self.verify(version)
        target = self.cache_dir / self.name / version
        marker = target / ".verified"
        if marker.is_file() and marker.read_text() == json.dumps(manifest["files"], sort_keys=True):
            return target
        staging = target.with_name(f".{version}.{uuid.uuid4().hex}")
        try:
            for key, expected in manifest["files"].items():
                local_file = staging / key
                self.store.get_file(self._key(version, key), local_file)
                if sha256_file(local_file) != expected["sha256"]:
                    raise RegistryError(f"download of {key} ({self.name} {version}) does not match its manifest")
            (staging / MANIFEST).write_bytes(self.store.get_bytes(self._key(version, MANIFEST)))
            (staging / ".verified").write_text(json.dumps(manifest["files"], sort_keys=True))
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                staging.replace(target)
            except OSError:  # another process materialized it at the same moment
                if not (marker.is_file() and marker.read_text() == json.dumps(manifest["files"], sort_keys=True)):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def workspace(self, version: str) -> Workspace:
        """``Workspace`` over a verified local copy of ``version`` (its own resolved params)."""
        return Workspace.open(self.version_dir(version))

    def production_workspace(self) -> Workspace | None:
        """The production model as a Workspace, or None when nothing was promoted yet."""
        pointer = self.production()
        return None if pointer is None else self.workspace(pointer["version"])

    def resolve(self, ref: str) -> str:
        """``production`` / ``latest`` / ``vN`` -> a version name."""
        if ref == "production":
            pointer = self.production()
            if pointer is None:
                raise RegistryError(f"model {self.name} has no production version yet (promote one first)")
            return pointer["version"]
        if ref == "latest":
            complete = [row["version"] for row in self.list() if row["complete"]]
            if not complete:
                raise RegistryError(f"model {self.name} has no complete version")
            return complete[-1]
        _version_number(ref)
        return ref


def promoted_by(pointer: dict[str, Any], version: str) -> str | None:
    """Who or what last moved production to ``version`` (None: never promoted)."""
    for record in reversed(pointer.get("promotions") or []):
        if record.get("version") == version:
            return record.get("by")
    return "not recorded" if version in (pointer.get("history") or []) else None


def open_registry(params: Params, root: Path | str | None = None, cache_dir: Path | str | None = None) -> Registry:
    """The registry named by ``params.registry``.

    A relative ``registry.uri`` is resolved against ``root`` (default: the current directory);
    S3 downloads are cached under ``cache_dir`` (default ``ROOT/.cache/registry``).
    Credentials come from boto3's standard chain; the endpoint from ``registry.endpoint_url``
    or ``AWS_ENDPOINT_URL``.
    """
    cfg = params.registry
    base = Path(root) if root is not None else Path.cwd()
    store = open_store(cfg.uri, endpoint_url=cfg.endpoint_url, max_attempts=cfg.max_attempts, root=base)
    return Registry(store, cfg.model_name, Path(cache_dir) if cache_dir else base / ".cache" / "registry", root=base)


__all__ = ["Registry", "RegistryConflict", "RegistryError", "StorageError", "open_registry"]
