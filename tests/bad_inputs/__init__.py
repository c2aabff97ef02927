"""A corpus of bad inputs for the data-quality gates, each built from a clean tiny workspace.

``build_base`` turns a tiny ingested workspace into one every gate passes: the heuristic
ranker (a real, non-neural model) trained and evaluated, the same heuristic as the baseline
stage's ranker (so the baseline comparison passes with a delta of 0), hand-made embeddings and semantic
IDs (the encoder and codebook stages are not needed to test the gates), and that model
published and promoted in a local registry, so a production model exists to compare with.
Each ``Defect`` then breaks a copy of it the way data arrives broken: Parquet written directly
with pyarrow, bypassing the contract checks of ``saviorrec.data.io``. A defect targets one
critical expectation and trips it alone, or with the checks it names in ``also`` where the two
cannot be told apart. The numeric checks also have cases at their default thresholds
(``bad_inputs.boundaries``); the corpus test requires a case for every critical expectation.
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
                         # (q + 3r) for order = q*size + r: unique with c1 = r, and every level-2 code used
                         "c2": ((order // size + 3 * order) % size).astype(np.int32),
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


def _null_at(column: str, rows: int = 3) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Nulls in the first ``rows`` rows of ``column`` (integers become nullable, as a producer would write them)."""

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        if pd.api.types.is_integer_dtype(df[column].dtype):
            df[column] = df[column].astype(str(df[column].dtype).capitalize())  # int64 -> Int64, int8 -> Int8
        df.loc[df.index[:rows], column] = None
        return df

    return edit


def _duplicates(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[1:4], "event_id"] = df["event_id"].iloc[0]
    return df


def _non_binary_click(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[df["click"] == 0][:1], "click"] = 2   # a count where a flag belongs
    return df


def _negative_conversion(df: pd.DataFrame) -> pd.DataFrame:
    # -1 (not 2): a conversion of 2 would also exceed its click and trip conversion_implies_click
    df.loc[df.index[df["click"] == 0][:1], "conversion"] = -1
    return df


def _ts_previous_day(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[:3], "ts"] -= pd.Timedelta(days=1)
    return df


def _future_partition(ws) -> None:
    """A producer with a wrong clock: a whole day dated 2099, its timestamps inside that day.

    Dated in the past, a future timestamp would also be outside its day partition (ts_inside_day);
    here only its being in the future is wrong. The copy keeps the usual volume and CTR.
    """
    day = last_day(ws)
    events = read_day(ws, day)
    shift = pd.Timestamp("2099-01-01", tz="UTC") - pd.Timestamp(day, tz="UTC")
    write_day(ws, "2099-01-01", events.assign(ts=events["ts"] + shift,
                                              event_id=events["event_id"] + 90_000_000))


def _conversion_without_click(df: pd.DataFrame) -> pd.DataFrame:
    rows = df.index[df["click"] == 0][:4]
    df["conversion"] = df["conversion"].astype("Int8")
    df.loc[rows, "conversion"] = 1
    return df


def _unknown_items(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[:6], "item_id"] = 99_999_999
    return df


def _volume_spike(df: pd.DataFrame) -> pd.DataFrame:
    """12x the day: each copy by its own users (one user with 12x the impressions would be a bot)."""
    copies = [df.assign(event_id=df["event_id"] + k * 10_000_000, user_id=df["user_id"] + k * 10_000_000)
              for k in range(12)]
    return pd.concat(copies, ignore_index=True)


def _ctr_collapse(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(click=np.int8(0), conversion=df["conversion"] * 0)


def _bot(df: pd.DataFrame) -> pd.DataFrame:
    """One user with 2,100 impressions, copies of the day's rows (clicks kept, so the CTR stays usual)."""
    bot = df.iloc[np.arange(2100) % len(df)].copy()
    bot["event_id"] = np.arange(2100) + 50_000_000
    bot["user_id"] = 4_242_424
    return pd.concat([df, bot], ignore_index=True)


def _schema_drift(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"click": "clicked"})


def _catalog_row_without_id(df: pd.DataFrame) -> pd.DataFrame:
    """An extra catalog row without an item_id (an id nulled on a listed item would also
    orphan that item's events: item_in_catalog)."""
    extra = df.iloc[:1].copy()
    out = pd.concat([df, extra], ignore_index=True)
    out["item_id"] = out["item_id"].astype("Int64")
    out.loc[out.index[-1], "item_id"] = pd.NA
    return out


def _sid_collisions(df: pd.DataFrame) -> pd.DataFrame:
    """Levels 2 and 3 collapse on 80% of the items: items sharing a level-1 code collide.
    Level 1 keeps its codes (its utilization is another check), the dedup level keeps final IDs unique."""
    many = df.index[: int(len(df) * 0.8)]
    df.loc[many, ["c2", "c3"]] = 0
    df.loc[many, "dedup"] = np.arange(len(many), dtype=np.int32)
    df["sid"] = df[["c1", "c2", "c3", "dedup"]].astype(str).agg("-".join, axis=1)
    return df


def _duplicate_sid(df: pd.DataFrame) -> pd.DataFrame:
    """Item 1 gets item 0's whole SID, dedup level included (2 of 240 items collide: under the rate limit)."""
    df.loc[df.index[1], ["c1", "c2", "c3", "dedup", "sid"]] = df.loc[df.index[0], ["c1", "c2", "c3", "dedup", "sid"]]
    return df


def _nan_embeddings(df: pd.DataFrame) -> pd.DataFrame:
    vectors = [np.asarray(v, dtype=np.float32).copy() for v in df["vector"]]
    for v in vectors[:3]:
        v[0] = np.nan
    return df.assign(vector=vectors)


def _shuffled_old_items(ws) -> None:
    """Scores shuffled across the events of items that are not new: same calibration, ranking lost
    there (AUC ~ 0.5); new items keep theirs, so only the overall AUC regresses."""
    new = set(new_item_events(ws)["event_id"])

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        old = np.flatnonzero(~df["event_id"].isin(new).to_numpy())
        order = np.random.default_rng(0).permutation(old)
        for col in ("p_ctr", "p_ctcvr"):
            values = df[col].to_numpy().copy()
            values[old] = values[order]
            df[col] = values
        return df

    edit_table(ws.path("predictions"), edit)


def _nan_at(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[df.index[:5], column] = np.nan
        return df

    return edit


def _score_of_a_clicked_event(column: str, value: float) -> Callable:
    """apply(ws): one score outside [0, 1], on a clicked event (ranked first, it cannot lower the AUC)."""

    def apply(ws) -> None:
        day = read_day(ws, last_day(ws))
        clicked = day.loc[day["click"] == 1, "event_id"].iloc[0]

        def edit(df: pd.DataFrame) -> pd.DataFrame:
            df.loc[df["event_id"] == clicked, column] = value
            return df

        edit_table(ws.path("predictions"), edit)

    return apply


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
    """One broken input, the critical check it targets and what the refusal must say."""

    name: str
    gate: str
    check: str          # the `check` that must fail
    message: str        # a fragment the StageError message must contain
    apply: Callable     # apply(ws) breaks the copied workspace
    expectation: str = ""           # fragment of the expectation's label, where the check has several
    also: tuple[str, ...] = ()      # checks that cannot help failing with it (why: at the defect)


def _candidate_from_another_world(ws) -> None:
    """The candidate's synthetic world differs from production's (one more user) in a run asked to
    promote: an operator's params change, not broken data; the corpus test reopens the workspace
    after ``apply``."""
    set_params(ws.root, **{"synthetic.n_users": ws.params.synthetic.n_users + 1,
                           "registry.promote": "always"})  # a run that could move production


def _on_last_day(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    return lambda ws: edit_day(ws, edit)


def _on(table: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    return lambda ws: edit_table(ws.path(table), edit)


def _first_day_empty(ws) -> None:
    """The first day, not the last: an empty last day is also 0x the trailing volume (volume_band);
    the first day has no trailing median to compare with."""
    edit_day(ws, lambda df: df.iloc[0:0], day=str(ws.data_days()[0]))


def _first_row(column: str, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[df.index[0], column] = value
        return df

    return edit


_NOT_NULL_EVENTS = "events: expect_column_values_to_not_be_null"

DEFECTS = [
    # validate_logs: the day partitions
    Defect("schema_drift", GATE_LOGS, "schema", "missing column(s) click (found clicked)", _on_last_day(_schema_drift)),
    Defect("empty_day", GATE_LOGS, "empty_day", "has no impressions", _first_day_empty),
    *(Defect(name, GATE_LOGS, "not_null", f"null {column}", _on_last_day(_null_at(column)),
             expectation=f"{_NOT_NULL_EVENTS}({column})")
      for column, name in (("event_id", "null_event_ids"), ("ts", "null_timestamps"), ("user_id", "null_user_ids"),
                           ("item_id", "null_item_ids"), ("click", "null_clicks"))),
    Defect("duplicate_event_ids", GATE_LOGS, "unique_event_id", "duplicate event_id", _on_last_day(_duplicates)),
    Defect("non_binary_click", GATE_LOGS, "click_binary", "click not in {0, 1}", _on_last_day(_non_binary_click)),
    Defect("non_binary_conversion", GATE_LOGS, "conversion_binary", "conversion not in {0, 1}",
           _on_last_day(_negative_conversion)),
    Defect("conversion_without_click", GATE_LOGS, "conversion_implies_click", "conversion without click",
           _on_last_day(_conversion_without_click)),
    Defect("ts_outside_its_day", GATE_LOGS, "ts_inside_day", "timestamp outside its day partition",
           _on_last_day(_ts_previous_day)),
    Defect("future_timestamps", GATE_LOGS, "ts_not_future", "timestamp in the future", _future_partition),
    Defect("unknown_items", GATE_LOGS, "item_in_catalog", "item_id missing from the catalog", _on_last_day(_unknown_items)),
    Defect("volume_spike", GATE_LOGS, "volume_band", "day volume outside", _on_last_day(_volume_spike)),
    Defect("ctr_collapse", GATE_LOGS, "ctr_band", "day CTR outside", _on_last_day(_ctr_collapse)),
    Defect("bot_user", GATE_LOGS, "bot_threshold", "impressions in a day (bot)", _on_last_day(_bot)),
    # validate_logs: the catalog
    Defect("catalog_without_category", GATE_LOGS, "catalog_schema", "the catalog lacks a required column",
           _on("items", lambda df: df.drop(columns=["category"]))),
    # Every event's item is missing from an empty catalog: item_in_catalog fails with it, always.
    Defect("empty_catalog", GATE_LOGS, "catalog_not_empty", "empty catalog", _on("items", lambda df: df.iloc[0:0]),
           also=("item_in_catalog",)),
    Defect("catalog_row_without_item_id", GATE_LOGS, "not_null", "null item_id", _on("items", _catalog_row_without_id),
           expectation="catalog: expect_column_values_to_not_be_null(item_id)"),
    Defect("duplicate_catalog_items", GATE_LOGS, "unique_item_id", "duplicate item_id",
           _on("items", lambda df: pd.concat([df, df.iloc[:2]], ignore_index=True))),
    Defect("item_without_title", GATE_LOGS, "title_present", "item without a title", _on("items", _first_row("title", None)),
           expectation="expect_column_values_to_not_be_null(title)"),
    Defect("blank_title", GATE_LOGS, "title_present", "empty title", _on("items", _first_row("title", "   ")),
           expectation="expect_column_values_to_not_match_regex(title)"),
    Defect("item_listed_in_future", GATE_LOGS, "first_seen_not_future", "first_seen after the last day",
           _on("items", lambda df: df.assign(first_seen=df["first_seen"].where(df.index >= 3, pd.Timestamp("2099-01-01"))))),
    # validate_sids
    Defect("items_without_sid", GATE_SIDS, "sid_coverage", "catalog item without a SID", _on("sids", lambda df: df.iloc[10:])),
    Defect("duplicate_sid", GATE_SIDS, "sid_unique", "final semantic IDs are not unique", _on("sids", _duplicate_sid)),
    Defect("items_without_embedding", GATE_SIDS, "embedding_coverage", "catalog item without an embedding",
           _on("embeddings", lambda df: df.iloc[2:])),
    Defect("nan_embeddings", GATE_SIDS, "embedding_finite", "embedding with NaN", _on("embeddings", _nan_embeddings)),
    Defect("sid_collisions", GATE_SIDS, "raw_collision_rate", "raw SID collision rate above", _on("sids", _sid_collisions)),
    # validate_model
    # The gate reads "has a prediction" as "p_ctr is not NaN" on the events left-joined with the
    # predictions: a missing row is a NaN score, and a NaN p_ctr is a missing prediction.
    Defect("unscored_events", GATE_MODEL, "prediction_coverage", "evaluation event without a prediction",
           _on("predictions", lambda df: df.iloc[3:]), also=("prediction_not_nan",)),
    Defect("nan_predictions", GATE_MODEL, "prediction_not_nan", "p_ctr is NaN", _on("predictions", _nan_at("p_ctr")),
           expectation="(p_ctr)", also=("prediction_coverage",)),
    Defect("nan_ctcvr_predictions", GATE_MODEL, "prediction_not_nan", "p_ctcvr is NaN",
           _on("predictions", _nan_at("p_ctcvr")), expectation="(p_ctcvr)"),
    Defect("p_ctr_above_one", GATE_MODEL, "prediction_range", "p_ctr outside [0, 1]",
           _score_of_a_clicked_event("p_ctr", 1.5), expectation="(p_ctr)"),
    Defect("negative_p_ctcvr", GATE_MODEL, "prediction_range", "p_ctcvr outside [0, 1]",
           _score_of_a_clicked_event("p_ctcvr", -0.1), expectation="(p_ctcvr)"),
    Defect("regressed_model", GATE_MODEL, "auc_regression", "CTR AUC below production's", _shuffled_old_items),
    Defect("miscalibrated_model", GATE_MODEL, "calibration", "mean pCTR off the observed CTR", _on("predictions", _miscalibrated)),
    Defect("below_baseline_on_new_items", GATE_MODEL, "new_auc_vs_baseline", "below the heuristic baseline's",
           better_baseline_on_new_items),
    Defect("production_from_another_setting", GATE_MODEL, "same_setting",
           "trained on another setting than production v1 (synthetic.n_users", _candidate_from_another_world),
]

# Critical checks no data can fail inside the gate, and what refuses that input instead.
REFUSED_BEFORE_VALIDATION = {
    (GATE_LOGS, "days_present"): "no event partitions",  # the log reader raises before any expectation runs
}


def remove_every_day(ws) -> None:
    shutil.rmtree(ws.path("events"))
    ws.path("events").mkdir()


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
