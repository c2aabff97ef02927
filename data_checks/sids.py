"""Semantic-ID suite: coverage, collisions, unique final IDs, codebook utilization, churn, finite embeddings."""

from __future__ import annotations

import json
import re

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from data_checks.config import SidChecks
from data_checks.runner import Suite
from saviorrec.data import io
from saviorrec.data.vectors import nonfinite_rows
from saviorrec.workspace import Workspace

_LEVEL = re.compile(r"^c(\d+)$")


def level_columns(sids: pd.DataFrame) -> list[str]:
    return sorted((c for c in sids.columns if _LEVEL.match(c)), key=lambda c: int(c[1:]))


def raw_collision_rate(sids: pd.DataFrame) -> float:
    """Share of items whose code tuple (before de-duplication) is shared with another item."""
    levels = level_columns(sids)
    return float(sids.duplicated(subset=levels, keep=False).mean()) if len(sids) and levels else float("nan")


def churn(current: pd.DataFrame, previous: pd.DataFrame) -> tuple[float, int]:
    """(share of items known to both whose SID changed, number of such items)."""
    both = current[["item_id", "sid"]].merge(previous[["item_id", "sid"]], on="item_id", suffixes=("", "_prev"))
    if both.empty:
        return float("nan"), 0
    return float((both["sid"] != both["sid_prev"]).mean()), len(both)


def _finite(vector) -> bool:
    """A present, non-empty vector without NaN/inf."""
    return vector is not None and len(vector) > 0 and not nonfinite_rows(np.asarray(vector, dtype=float)).any()


def load(ws: Workspace, catalog: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per catalog item with its SID and embedding health, the SID table itself)."""
    sids = io.read_parquet(ws.path("sids"))
    if "sid" not in sids:  # older tables: the string form is c1-..-cL-dedup
        parts = [*level_columns(sids), *(["dedup"] if "dedup" in sids else [])]
        sids["sid"] = sids[parts].astype(str).agg("-".join, axis=1)
    frame = catalog[["item_id"]].drop_duplicates().merge(sids, on="item_id", how="left")
    frame["has_sid"] = frame["sid"].notna()
    if ws.path("embeddings").exists():
        emb = io.read_parquet(ws.path("embeddings"), columns=["item_id", "vector"])
        emb["embedding_finite"] = [_finite(v) for v in emb["vector"]]
        frame = frame.merge(emb[["item_id", "embedding_finite"]], on="item_id", how="left")
        frame["has_embedding"] = frame["embedding_finite"].notna()
    return frame, sids


def summaries(ws: Workspace, sids: pd.DataFrame, production_sids: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    size = ws.params.codebook.codebook_size
    levels = level_columns(sids)
    per_level = pd.DataFrame([
        {"level": i + 1, "used_codes": int(sids[c].nunique()), "codebook_size": size,
         "utilization": sids[c].nunique() / size} for i, c in enumerate(levels)
    ])
    summary = {
        "items_with_sid": len(sids),
        "raw_collision_rate": raw_collision_rate(sids),
        "unique_fraction": float(sids["sid"].nunique() / len(sids)) if len(sids) else float("nan"),
        "level1_utilization": float(per_level["utilization"].iloc[0]) if len(per_level) else float("nan"),
    }
    reported = {}
    metrics_path = ws.metrics_file("codebook")
    if metrics_path.is_file():
        reported = json.loads(metrics_path.read_text())
        summary["reported_raw_collision_rate"] = reported.get("raw_collision_rate")
    if production_sids is not None:
        summary["churn_vs_production"], summary["items_in_both"] = churn(sids, production_sids)
    return pd.DataFrame([summary]), per_level, {"codebook_metrics_found": bool(reported)}


def suites(items: pd.DataFrame, summary: pd.DataFrame, per_level: pd.DataFrame, checks: SidChecks) -> list[Suite]:
    col, util1, util, chn = (checks.max_raw_collision_rate, checks.min_level1_utilization,
                             checks.min_level_utilization, checks.max_churn)
    item_expectations = [
        gxe.ExpectColumnValuesToBeInSet(
            column="has_sid", value_set=[True], meta={"check": "sid_coverage", "message": "catalog item without a SID"}),
        gxe.ExpectColumnValuesToBeUnique(
            column="sid", meta={"check": "sid_unique", "message": "final semantic IDs are not unique"}),
    ]
    if "embedding_finite" in items:
        item_expectations += [
            gxe.ExpectColumnValuesToBeInSet(
                column="has_embedding", value_set=[True],
                meta={"check": "embedding_coverage", "message": "catalog item without an embedding"}),
            gxe.ExpectColumnValuesToBeInSet(
                column="embedding_finite", value_set=[True],
                meta={"check": "embedding_finite", "message": "embedding with NaN or infinite values"}),
        ]
    summary_expectations = [
        gxe.ExpectColumnMaxToBeBetween(
            column="raw_collision_rate", max_value=col.value, severity=col.severity,
            notes="share of items whose code tuple (c1..cL, before the dedup level) is shared with another item",
            meta={"check": "raw_collision_rate", "message": f"raw SID collision rate above {col.value:g}"}),
        gxe.ExpectColumnMinToBeBetween(
            column="level1_utilization", min_value=util1.value, severity=util1.severity,
            meta={"check": "level1_utilization", "message": f"level-1 codebook utilization below {util1.value:g}"}),
    ]
    if "churn_vs_production" in summary and summary["churn_vs_production"].notna().all():
        summary_expectations.append(gxe.ExpectColumnMaxToBeBetween(
            column="churn_vs_production", max_value=chn.value, severity=chn.severity,
            notes="share of items known to both models whose SID changed",
            meta={"check": "churn", "message": f"SID churn against the production model above {chn.value:g}"}))
    level_expectations = [
        gxe.ExpectColumnValuesToBeBetween(
            column="utilization", min_value=util.value, severity=util.severity,
            meta={"check": "level_utilization", "message": f"a codebook level uses less than {util.value:g} of its codes"}),
    ]
    # one-row summary: Min/Max expectations show the value itself in Data Docs and messages
    return [Suite("items", items, item_expectations, ["item_id"]), Suite("summary", summary, summary_expectations),
            Suite("levels", per_level, level_expectations, ["level"])]
