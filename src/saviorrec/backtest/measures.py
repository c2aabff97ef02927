"""What a finished step is measured by: ranker AUCs, SID stability and z drift between steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from saviorrec.data import io
from saviorrec.models.semantic_ids import code_columns, levels_of
from saviorrec.workspace import Workspace

BUCKETS = ("new", "young", "popular")


def ranker_metrics(ws: Workspace) -> dict:
    """CTR AUC overall and per bucket, with the oracle AUC beside each where the data knows it."""
    report = json.loads((ws.path("reports") / "details" / "ranker.json").read_text())
    overall = report["overall"]
    row = {"auc": overall.get("ctr_auc"), "oracle_auc": overall.get("ctr_oracle_auc"), "n": overall.get("n")}
    for bucket in BUCKETS:
        values = report.get("buckets", {}).get(bucket, {})
        row[f"{bucket}_auc"] = values.get("ctr_auc")
        row[f"{bucket}_oracle_auc"] = values.get("ctr_oracle_auc")
        row[f"{bucket}_n"] = values.get("n")
    return row


def _read(path: Path) -> pd.DataFrame | None:
    return io.read_parquet(path) if path.exists() else None


def collision_rate(sids: pd.DataFrame) -> float:
    """Share of items whose codes (before the dedup digit) another item also has."""
    codes = sids[code_columns(len(levels_of(sids)))]
    return float(codes.duplicated(keep=False).mean()) if len(codes) else 0.0


def sid_churn(previous: pd.DataFrame | None, current: pd.DataFrame) -> tuple[float | None, int]:
    """(share of the items known to both steps whose SID changed, how many such items)."""
    if previous is None:
        return None, 0
    both = previous[["item_id", "sid"]].merge(current[["item_id", "sid"]], on="item_id", suffixes=("_before", "_now"))
    if both.empty:
        return None, 0
    return float((both["sid_before"] != both["sid_now"]).mean()), len(both)


def z_drift(previous: pd.DataFrame | None, current: pd.DataFrame) -> float | None:
    """Mean L2 distance of z between two steps, over the items both know."""
    if previous is None:
        return None
    both = previous[["item_id", "vector"]].merge(current[["item_id", "vector"]], on="item_id", suffixes=("_before", "_now"))
    if both.empty:
        return None
    before, now = np.stack(both["vector_before"].to_numpy()), np.stack(both["vector_now"].to_numpy())
    return float(np.linalg.norm(now - before, axis=1).mean())


def encoder_measures(ws: Workspace, previous: Workspace | None) -> dict:
    """SID churn and collision rate, z drift: the stability of what the ranker is given."""
    sids, z = io.read_parquet(ws.path("sids")), io.read_parquet(ws.path("embeddings"))
    churn, known = sid_churn(_read(previous.path("sids")) if previous else None, sids)
    drift = z_drift(_read(previous.path("embeddings")) if previous else None, z)
    return {"sid_churn": churn, "sid_known_both": known, "collision_rate": collision_rate(sids), "z_drift": drift,
            "catalog_items": len(sids)}
