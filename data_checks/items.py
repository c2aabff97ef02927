"""Item-catalog suite: unique ids, non-empty titles, no item listed in the future, images that resolve."""

from __future__ import annotations

from pathlib import Path

import great_expectations as gx  # noqa: F401  (GX must be configured by runner before expectations)
import great_expectations.expectations as gxe
import pandas as pd

from data_checks.config import ItemChecks
from saviorrec.data import io
from saviorrec.data.contract import ITEM_REQUIRED
from saviorrec.storage.s3 import is_s3_uri
from saviorrec.workspace import Workspace


def load(ws: Workspace) -> pd.DataFrame:
    """The catalog as written, plus ``image_ref_resolves`` (None where there is no reference)."""
    items = io.read_parquet(ws.path("items"))
    data_dir = ws.path("data")
    if "image_ref" in items and not is_s3_uri(str(data_dir)):
        refs = items["image_ref"]
        items["image_ref_resolves"] = [None if (pd.isna(r) or not str(r)) else (Path(data_dir) / str(r)).is_file()
                                       for r in refs]
    if "first_seen" in items:
        items["first_seen"] = pd.to_datetime(items["first_seen"], errors="coerce")
    return items


def suite_expectations(items: pd.DataFrame, checks: ItemChecks, as_of: str) -> list:
    last_day = pd.Timestamp(as_of)
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(ITEM_REQUIRED), exact_match=False,
            meta={"check": "catalog_schema", "message": "the catalog lacks a required column"}),
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "catalog_not_empty", "message": "empty catalog"}),
        gxe.ExpectColumnValuesToNotBeNull(column="item_id", meta={"check": "not_null", "message": "null item_id"}),
        gxe.ExpectColumnValuesToBeUnique(column="item_id", meta={"check": "unique_item_id", "message": "duplicate item_id"}),
        gxe.ExpectColumnValuesToNotBeNull(column="title", meta={"check": "title_present", "message": "item without a title"}),
        gxe.ExpectColumnValuesToNotMatchRegex(
            column="title", regex=r"^\s*$", meta={"check": "title_present", "message": "empty title"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="first_seen", max_value=last_day, severity=checks.first_seen_not_future.severity,
            notes=f"the last day of data is {as_of}",
            meta={"check": "first_seen_not_future", "message": f"first_seen after the last day of data ({as_of})"}),
    ]
    if "image_ref_resolves" in items:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(
            column="image_ref_resolves", value_set=[True], severity=checks.image_refs_resolve.severity,
            notes="image_ref is relative to paths.data; items without one are not judged",
            meta={"check": "image_refs_resolve", "message": "image_ref points to a missing file"}))
    return expectations
