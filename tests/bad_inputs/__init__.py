"""A corpus of bad inputs for the data-quality gates, each built from a clean tiny workspace.

``build_base`` turns a tiny ingested workspace into one every gate passes: the heuristic
ranker (a real, non-neural model) trained and evaluated, the same heuristic as the baseline
stage's ranker (so the baseline comparison passes with a delta of 0), hand-made embeddings and semantic
IDs (the encoder and codebook stages are not needed to test the gates), and that model
published and promoted in a local registry, so a production model exists to compare with.
Each ``Defect`` then breaks a copy of it the way data arrives broken: Parquet written directly
with pyarrow, bypassing the contract checks of ``saviorrec.data.io``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from saviorrec.stages import run_stage

GATE_LOGS, GATE_SIDS, GATE_MODEL = "validate_logs", "validate_sids", "validate_model"


# ---- the clean workspace -------------------------------------------------------------------

def open_ws(root: Path):
    from saviorrec.workspace import Workspace

    return Workspace.open(root)


def set_params(root: Path, **dotted) -> None:
    from saviorrec.config import write_workspace_params

    write_workspace_params(root, dotted, base=root / "params.yaml")


def write_semantic_tables(ws) -> None:
    """Finite embeddings and collision-free 3-level SIDs for every catalog item (deterministic)."""
    items = pd.read_parquet(ws.path("items"), columns=["item_id"])
    ids = items["item_id"].to_numpy(np.int64)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    emb = pd.DataFrame({"item_id": ids, "vector": list(vectors)})
    pq.write_table(pa.Table.from_pandas(emb, preserve_index=False), ws.path("embeddings"))
    size = ws.params.codebook.codebook_size
    order = np.arange(len(ids))
    sids = pd.DataFrame({"item_id": ids, "c1": (order % size).astype(np.int32),
                         "c2": ((order // size) % size).astype(np.int32),
                         "c3": ((order * 5 // 3) % size).astype(np.int32), "dedup": np.zeros(len(ids), np.int32)})
    sids["sid"] = sids[["c1", "c2", "c3", "dedup"]].astype(str).agg("-".join, axis=1)
    pq.write_table(pa.Table.from_pandas(sids, preserve_index=False), ws.path("sids"))


def build_base(ingested: Path, dst: Path, registry: Path) -> Path:
    """A workspace every gate passes, whose model is the registry's production version."""
    from saviorrec.storage.registry import open_registry

    shutil.copytree(ingested, dst, ignore=shutil.ignore_patterns(".cache", "reports", "registry", "artifacts", "metrics"))
    set_params(dst, **{"ranker.variant": "heuristic", "baseline.variant": "heuristic", "registry.uri": str(registry)})
    ws = open_ws(dst)
    ws.path("sids").parent.mkdir(parents=True, exist_ok=True)
    write_semantic_tables(ws)
    for name in ("encoder", "codebook"):  # the heuristic ranker reads neither; a bundle must carry both
        ws.path(name).mkdir(parents=True, exist_ok=True)
        (ws.path(name) / "config.json").write_text(json.dumps({"note": "not trained: heuristic-ranker test bundle"}))
    run_stage("train_ranker", ws)
    run_stage("evaluate", ws)
    run_stage("baseline", ws)
    registry_api = open_registry(ws.params, root=ws.root)
    registry_api.promote(registry_api.publish(ws, notes="bad-input corpus baseline"))
    return dst


def production_pointer(registry: Path) -> str | None:
    """The raw production pointer file(s) of the local registry, to compare before/after."""
    files = sorted(p for p in registry.rglob("*") if p.is_file() and "production" in p.name)
    return "\n".join(f"{p}:{p.read_text()}" for p in files) or None


# ---- writing broken data the way a foreign producer would -----------------------------------

def _day_dir(ws, day: str) -> Path:
    return ws.path("events") / f"ds={day}"


def last_day(ws) -> str:
    return str(ws.data_days()[-1])


def read_day(ws, day: str) -> pd.DataFrame:
    return pd.concat([pq.read_table(p).to_pandas() for p in sorted(_day_dir(ws, day).glob("*.parquet"))],
                     ignore_index=True)


def write_day(ws, day: str, frame: pd.DataFrame) -> None:
    folder = _day_dir(ws, day)
    for part in folder.glob("*.parquet"):
        part.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "part-00000.parquet")


def edit_day(ws, edit: Callable[[pd.DataFrame], pd.DataFrame], day: str | None = None) -> None:
    day = day or last_day(ws)
    write_day(ws, day, edit(read_day(ws, day)))


def edit_table(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = pq.read_table(path).to_pandas()
    pq.write_table(pa.Table.from_pandas(edit(frame), preserve_index=False), path)


def _nulls(df: pd.DataFrame) -> pd.DataFrame:
    df["user_id"] = df["user_id"].astype("Int64")
    df.loc[df.index[:5], "user_id"] = pd.NA
    return df


def _duplicates(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[1:4], "event_id"] = df["event_id"].iloc[0]
    return df


def _future(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[:3], "ts"] = pd.Timestamp("2099-01-01 12:00", tz="UTC")
    return df


def _conversion_without_click(df: pd.DataFrame) -> pd.DataFrame:
    rows = df.index[df["click"] == 0][:4]
    df["conversion"] = df["conversion"].astype("Int8")
    df.loc[rows, "conversion"] = 1
    return df


def _unknown_items(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[:6], "item_id"] = 99_999_999
    return df


def _volume_spike(df: pd.DataFrame) -> pd.DataFrame:
    copies = [df.assign(event_id=df["event_id"] + k * 10_000_000) for k in range(12)]
    return pd.concat(copies, ignore_index=True)


def _ctr_collapse(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(click=np.int8(0), conversion=df["conversion"] * 0)


def _bot(df: pd.DataFrame) -> pd.DataFrame:
    bot = df.iloc[[0] * 2100].copy()
    bot["event_id"] = np.arange(2100) + 50_000_000
    bot["user_id"] = 4_242
    return pd.concat([df, bot], ignore_index=True)


def _schema_drift(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"click": "clicked"})


def _sid_collisions(df: pd.DataFrame) -> pd.DataFrame:
    half = df.index[: int(len(df) * 0.8)]
    df.loc[half, ["c1", "c2", "c3"]] = 0
    df.loc[half, "dedup"] = np.arange(len(half), dtype=np.int32)  # final IDs stay unique
    df["sid"] = df[["c1", "c2", "c3", "dedup"]].astype(str).agg("-".join, axis=1)
    return df


def _nan_embeddings(df: pd.DataFrame) -> pd.DataFrame:
    vectors = [np.asarray(v, dtype=np.float32).copy() for v in df["vector"]]
    for v in vectors[:3]:
        v[0] = np.nan
    return df.assign(vector=vectors)


def _regressed(df: pd.DataFrame) -> pd.DataFrame:
    """Scores shuffled across events: same calibration, ranking lost (AUC ~ 0.5)."""
    order = np.random.default_rng(0).permutation(len(df))
    return df.assign(p_ctr=df["p_ctr"].to_numpy()[order], p_ctcvr=df["p_ctcvr"].to_numpy()[order])


def _nan_predictions(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[:5], "p_ctr"] = np.nan
    return df


def _miscalibrated(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(p_ctr=(df["p_ctr"] * 3).clip(upper=1.0))


def new_item_events(ws) -> pd.DataFrame:
    """The evaluation day's impressions of items first seen that day (the `new` bucket), with their clicks."""
    day = last_day(ws)
    items = pq.read_table(ws.path("items")).to_pandas()
    new_ids = items.loc[pd.to_datetime(items["first_seen"]) >= pd.Timestamp(day), "item_id"]
    events = read_day(ws, day)
    return events.loc[events["item_id"].isin(new_ids), ["event_id", "click"]]


def better_baseline_on_new_items(ws) -> None:
    """The baseline's scores on new items become near perfect (clicks first); the candidate's are
    untouched: the candidate is now worse than the baseline on new items, and only there."""
    new = new_item_events(ws)
    assert len(new) and 0 < new["click"].sum() < len(new), "the evaluation day needs new items with and without clicks"
    noise = np.random.default_rng(0).uniform(0.0, 0.01, len(new))
    perfect = pd.Series(0.05 + 0.9 * new["click"].to_numpy() + noise, index=new["event_id"].to_numpy())

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        p_ctr = df["event_id"].map(perfect).fillna(df["p_ctr"])
        return df.assign(p_ctr=p_ctr, p_ctcvr=np.minimum(df["p_ctcvr"], p_ctr))

    edit_table(ws.path("baseline_predictions"), edit)


@dataclass(frozen=True)
class Defect:
    name: str
    gate: str
    check: str          # the `check` expected among the gate's critical failures
    message: str        # a fragment the StageError message must contain
    apply: Callable     # apply(ws) breaks the copied workspace


DEFECTS = [
    Defect("schema_drift", GATE_LOGS, "schema", "missing column(s) click (found clicked)",
           lambda ws: edit_day(ws, _schema_drift)),
    Defect("null_user_ids", GATE_LOGS, "not_null", "null user_id", lambda ws: edit_day(ws, _nulls)),
    Defect("duplicate_event_ids", GATE_LOGS, "unique_event_id", "duplicate event_id", lambda ws: edit_day(ws, _duplicates)),
    Defect("future_timestamps", GATE_LOGS, "ts_not_future", "timestamp in the future", lambda ws: edit_day(ws, _future)),
    Defect("conversion_without_click", GATE_LOGS, "conversion_implies_click", "conversion without click",
           lambda ws: edit_day(ws, _conversion_without_click)),
    Defect("unknown_items", GATE_LOGS, "item_in_catalog", "item_id missing from the catalog",
           lambda ws: edit_day(ws, _unknown_items)),
    Defect("empty_day", GATE_LOGS, "empty_day", "has no impressions", lambda ws: edit_day(ws, lambda df: df.iloc[0:0])),
    Defect("volume_spike", GATE_LOGS, "volume_band", "day volume outside", lambda ws: edit_day(ws, _volume_spike)),
    Defect("ctr_collapse", GATE_LOGS, "ctr_band", "day CTR outside", lambda ws: edit_day(ws, _ctr_collapse)),
    Defect("bot_user", GATE_LOGS, "bot_threshold", "impressions in a day (bot)", lambda ws: edit_day(ws, _bot)),
    Defect("duplicate_catalog_items", GATE_LOGS, "unique_item_id", "duplicate item_id",
           lambda ws: edit_table(ws.path("items"), lambda df: pd.concat([df, df.iloc[:2]], ignore_index=True))),
    Defect("item_listed_in_future", GATE_LOGS, "first_seen_not_future", "first_seen after the last day",
           lambda ws: edit_table(ws.path("items"), lambda df: df.assign(
               first_seen=df["first_seen"].where(df.index >= 3, pd.Timestamp("2099-01-01"))))),
    Defect("sid_collisions", GATE_SIDS, "raw_collision_rate", "raw SID collision rate above",
           lambda ws: edit_table(ws.path("sids"), _sid_collisions)),
    Defect("items_without_sid", GATE_SIDS, "sid_coverage", "catalog item without a SID",
           lambda ws: edit_table(ws.path("sids"), lambda df: df.iloc[10:])),
    Defect("nan_embeddings", GATE_SIDS, "embedding_finite", "embedding with NaN", lambda ws: edit_table(ws.path("embeddings"), _nan_embeddings)),
    Defect("regressed_model", GATE_MODEL, "auc_regression", "CTR AUC below production's",
           lambda ws: edit_table(ws.path("predictions"), _regressed)),
    Defect("nan_predictions", GATE_MODEL, "prediction_not_nan", "p_ctr is NaN",
           lambda ws: edit_table(ws.path("predictions"), _nan_predictions)),
    Defect("miscalibrated_model", GATE_MODEL, "calibration", "mean pCTR off the observed CTR",
           lambda ws: edit_table(ws.path("predictions"), _miscalibrated)),
    Defect("below_baseline_on_new_items", GATE_MODEL, "new_auc_vs_baseline", "below the heuristic baseline's",
           better_baseline_on_new_items),
]


# ---- one clean, gated baseline per test session ---------------------------------------------

def session_base(tiny_pipeline, tmp_path_factory) -> tuple[Path, Path]:
    """(base workspace after a clean run of every gate, its registry), built once per session.

    Test modules each call this from their own fixture; the marker file makes the second
    call reuse the first one's folder instead of building it again.
    """
    folder = tmp_path_factory.getbasetemp() / "gates_baseline"
    base, registry, done = folder / "base", folder / "registry", folder / "ready"
    if not done.exists():
        tiny_pipeline.run("ingest")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build_base(tiny_pipeline.root, base, registry)
        ws = open_ws(base)
        for gate in (GATE_LOGS, GATE_SIDS, GATE_MODEL):
            run_stage(gate, ws)
        done.write_text("ok")
    return base, registry


def copy_of(base: Path, dst: Path):
    shutil.copytree(base, dst, ignore=shutil.ignore_patterns(".cache"))
    return open_ws(dst)
