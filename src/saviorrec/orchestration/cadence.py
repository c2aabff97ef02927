"""Encoder / codebook cadence: refresh every `airflow.encoder_every_days`, reuse in between.

The ranker trains every day; the encoder and codebook are slower to train and their SIDs
should stay stable, so a run between refreshes copies the last *validated* ones (those whose
`validate_sids` gate passed) from the latest earlier run folder, or from the production
bundle in the registry when no earlier run is at hand. A refresh run is seeded with the same
encoder/codebook so it warm-starts, as `persist: true` does for `dvc repro`.

The DAG's `encoder_cadence`, `reuse_encoder` and `mark_validated` tasks and the rolling backtest
(saviorrec.backtest) both call :func:`plan_cadence`, :func:`reuse_encoder` and
:func:`mark_validated`, so the two can never decide differently.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from saviorrec.config import Params
from saviorrec.orchestration.workspace import earlier_runs, logical_datetime, read_manifest, update_manifest
from saviorrec.storage.registry import open_registry
from saviorrec.workspace import Workspace

log = logging.getLogger("saviorrec.orchestration")

WARM_START = ("encoder", "codebook")
# Everything train_encoder and build_codebook write (params.paths names) ...
REUSED_PATHS = ("encoder", "codebook", "text_features", "embeddings", "pairs", "sids", "sids_generic")
REUSED_METRICS = ("encoder", "codebook")


@dataclass(frozen=True)
class ArtifactSource:
    """Where validated encoder/codebook artifacts can be copied from."""

    ws: Workspace
    kind: str  # "run" | "production"
    refreshed_on: dt.date | None  # the logical date that trained them, when known


@dataclass(frozen=True)
class Decision:
    refresh: bool
    reason: str


def days_between(earlier: dt.date, later: dt.date) -> int:
    return (later - earlier).days


def months_between(earlier: dt.date, later: dt.date) -> int:
    """Calendar months from ``earlier`` to ``later`` (monthly backtest steps count months)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def decide_refresh(day: dt.date, every_days: int, skip_requested: bool, source: ArtifactSource | None,
                   *, age_of: Callable[[dt.date, dt.date], int] = days_between, unit: str = "day") -> Decision:
    """Refresh when nothing can be reused or the reusable encoder is ``every_days`` (units) old.

    ``age_of``/``unit`` count the age in other steps than days (months for a monthly backtest).
    """
    if source is None:
        return Decision(True, "no validated encoder/codebook to reuse: training them")
    if skip_requested:
        return Decision(False, f"skip_encoder_refresh: reusing the {source.kind} artifacts from {source.ws.root}")
    if source.refreshed_on is None:
        return Decision(True, f"age of the {source.kind} encoder unknown: refreshing")
    age = age_of(source.refreshed_on, day)
    if age >= every_days:
        return Decision(True, f"encoder trained {age} {unit}(s) ago (every {every_days}): refreshing")
    return Decision(False, f"encoder trained {age} {unit}(s) ago (every {every_days}): reusing {source.ws.root}")


def latest_validated_run(runs_root: Path, when: dt.datetime | dt.date, exclude: Path | None = None) -> ArtifactSource | None:
    """The latest run before `when` whose encoder/codebook passed validate_sids."""
    for folder, manifest in earlier_runs(runs_root, when, exclude):
        if manifest.get("artifacts_validated"):
            refreshed = manifest.get("encoder_refreshed_on")
            return ArtifactSource(ws=Workspace.open(folder), kind="run",
                                  refreshed_on=dt.date.fromisoformat(refreshed) if refreshed else None)
    return None


def production_source(params: Params) -> ArtifactSource | None:
    """The production bundle from the registry, if one was promoted."""
    ws = open_registry(params).production_workspace()
    if ws is None:
        return None
    refreshed = read_manifest(Path(ws.root)).get("encoder_refreshed_on")
    return ArtifactSource(ws=ws, kind="production", refreshed_on=dt.date.fromisoformat(refreshed) if refreshed else None)


def find_source(ws: Workspace, runs_root: Path, when: dt.datetime | dt.date,
                use_production: bool = True) -> ArtifactSource | None:
    """An earlier validated run, else (``use_production``) the registry's production bundle."""
    found = latest_validated_run(runs_root, when, exclude=ws.root)
    if found is None and use_production:
        found = production_source(ws.params)
    return found


def source_record(source: ArtifactSource | None) -> dict:
    """The manifest fields that name the source picked by the cadence decision."""
    return {
        "artifact_source": str(source.ws.root) if source else None,
        "artifact_source_kind": source.kind if source else None,
        "artifact_refreshed_on": source.refreshed_on.isoformat() if source and source.refreshed_on else None,
    }


def source_from_record(manifest: dict) -> ArtifactSource | None:
    """The source the cadence task recorded, so reuse copies exactly what was decided on."""

    root = manifest.get("artifact_source")
    if not root or not (Path(root) / "params.yaml").is_file():
        return None
    refreshed = manifest.get("artifact_refreshed_on")
    return ArtifactSource(ws=Workspace.open(root), kind=manifest["artifact_source_kind"],
                          refreshed_on=dt.date.fromisoformat(refreshed) if refreshed else None)


def copy_artifact(src: Path, dst: Path) -> bool:
    """Replace ``dst`` with a copy of ``src`` (a file or a folder); False when ``src`` is missing."""
    if not src.exists():
        return False
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
    return True


def seed_warm_start(source: ArtifactSource, ws: Workspace) -> list[str]:
    """Copy the previous encoder/codebook in, so a refresh warm-starts from them."""
    return [name for name in WARM_START if copy_artifact(source.ws.path(name), ws.path(name))]


def reuse_artifacts(source: ArtifactSource, ws: Workspace) -> list[str]:
    """Copy the validated encoder/codebook outputs in place of training them; returns what was copied."""
    copied = [name for name in REUSED_PATHS if copy_artifact(source.ws.path(name), ws.path(name))]
    copied += [f"metrics/{m}.json" for m in REUSED_METRICS if copy_artifact(source.ws.metrics_file(m), ws.metrics_file(m))]
    missing = [name for name in ("encoder", "codebook", "embeddings", "sids") if name not in copied]
    if missing:
        raise FileNotFoundError(f"cannot reuse artifacts from {source.ws.root}: missing {', '.join(missing)}")
    return copied


def extend_to_catalog(ws: Workspace) -> dict[str, int]:
    """Embed and assign SIDs to today's catalog with the reused encoder/codebook (no retraining).

    Items the reused tables know keep their vector and SID; items new since then get content
    embeddings and SIDs that avoid every existing one, so the ranker sees every item.
    """
    from saviorrec.data import io
    from saviorrec.data.vectors import VECTOR_ROW_GROUP
    from saviorrec.models.semantic_ids import embed_and_assign

    items = io.read_items(ws.path("items"))
    counts = {}
    for space, (vectors_name, sids_name) in {"behavior": ("embeddings", "sids"),
                                              "generic": ("text_features", "sids_generic")}.items():
        if not ws.path(sids_name).exists():
            continue
        known = len(io.read_parquet(ws.path(sids_name)))
        vectors, sids = embed_and_assign(ws, items, space=space)
        io.write_parquet(vectors, ws.path(vectors_name), row_group_size=VECTOR_ROW_GROUP)
        io.write_parquet(sids, ws.path(sids_name))
        counts[f"{space}_items"] = len(sids)
        counts[f"{space}_known_before"] = known
    return counts



class ReuseSourceGone(RuntimeError):
    """The run folder the cadence picked for reuse was removed before reuse_encoder ran."""


def plan_cadence(ws: Workspace, runs_root: Path, *, every: int, skip_requested: bool, use_production: bool = True,
                 age_of: Callable[[dt.date, dt.date], int] = days_between, unit: str = "day") -> Decision:
    """The `encoder_cadence` task: decide refresh or reuse for the run in ``ws``, record it in
    the run's manifest (with the source picked), and seed a refresh with the source's models."""
    manifest = read_manifest(ws.root)
    day = dt.date.fromisoformat(manifest["data_day"])
    source = find_source(ws, Path(runs_root), logical_datetime(manifest), use_production=use_production)
    decision = decide_refresh(day, every, skip_requested, source, age_of=age_of, unit=unit)
    log.info("%s", decision.reason)
    update_manifest(ws.root, encoder_refresh=decision.refresh, cadence_reason=decision.reason, **source_record(source))
    if decision.refresh and source is not None:
        seeded = seed_warm_start(source, ws)
        log.info("warm start from %s: %s", source.ws.root, seeded)
    return decision


def reuse_encoder(ws: Workspace) -> tuple[list[str], dict[str, int]]:
    """The `reuse_encoder` task: copy what the cadence picked, then extend it to today's catalog."""
    source = source_from_record(read_manifest(ws.root))
    if source is None:
        raise ReuseSourceGone("the artifacts picked for reuse are gone; rerun with a refresh")
    copied = reuse_artifacts(source, ws)
    extended = extend_to_catalog(ws)
    update_manifest(ws.root, reused_from=str(source.ws.root), reused=copied, extended=extended)
    return copied, extended


def mark_validated(root: str | Path) -> dict:
    """The `mark_validated` task: this run's encoder/codebook passed validate_sids, so later runs
    may reuse them; records the day that trained them (today on a refresh, else the source's)."""
    manifest = read_manifest(Path(root))
    trained_on = manifest["data_day"] if manifest.get("encoder_refresh") else manifest.get("artifact_refreshed_on")
    return update_manifest(Path(root), artifacts_validated=True, encoder_refreshed_on=trained_on)
