"""Behavior-log suite: one batch of day-level statistics plus one of rows (all days concatenated).

Validating thousands of small days (MovieLens) as one batch each would take minutes; the
day-level checks (volume, CTR band, bots, empty days, schema) run on a frame with one row
per day and the row-level checks on the rows of the days in scope, each failing row named
by its ``ds``.
"""

from __future__ import annotations

import datetime as dt

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from data_checks.config import LogChecks
from data_checks.frames import day_stats, read_raw_day, schema_problems
from data_checks.runner import Suite
from saviorrec.data import io
from saviorrec.data.contract import EVENT_COLUMNS
from saviorrec.workspace import Workspace


def load(ws: Workspace, checks: LogChecks, catalog_ids: set[int] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(day statistics, rows in scope) read one partition at a time."""
    root = ws.path("events")
    days = io.list_days(root)
    if not days:
        raise FileNotFoundError(f"no event partitions (ds=YYYY-MM-DD) under {root}")
    keep_from = days[-checks.row_checks.last_days] if checks.row_checks.last_days else days[0]
    stats, rows = [], []
    for day in days:
        frame = read_raw_day(root, day)
        schema = schema_problems(frame)
        stats.append(day_stats(str(day), frame, schema))
        if schema == "ok" and day >= keep_from and len(frame):
            rows.append(_row_frame(frame[EVENT_COLUMNS], str(day), catalog_ids))
    stats_frame = _with_bands(pd.DataFrame([s.__dict__ for s in stats]), checks)
    rows_frame = pd.concat(rows, ignore_index=True) if rows else _row_frame(
        pd.DataFrame({c: pd.Series(dtype="float64") for c in EVENT_COLUMNS}).astype({"ts": "datetime64[ns, UTC]"}), "", catalog_ids)
    return stats_frame, rows_frame


def _row_frame(frame: pd.DataFrame, ds: str, catalog_ids: set[int] | None) -> pd.DataFrame:
    frame = frame.copy()
    frame["ds"] = ds
    frame["ts_day"] = frame["ts"].dt.strftime("%Y-%m-%d")
    if catalog_ids is not None:
        frame["known_item"] = frame["item_id"].isin(catalog_ids) | frame["item_id"].isna()
    return frame


def _trailing_median(values: pd.Series, usable: pd.Series, window: int) -> pd.Series:
    """Median of the previous ``window`` usable days (robust: one bad day does not move it)."""
    out = []
    history: list[float] = []
    for value, ok in zip(values, usable, strict=True):
        out.append(float(np.median(history[-window:])) if history else np.nan)
        if ok:
            history.append(float(value))
    return pd.Series(out, index=values.index)


def _with_bands(stats: pd.DataFrame, checks: LogChecks) -> pd.DataFrame:
    ok = stats["schema"].eq("ok") & stats["impressions"].gt(0)
    stats["ctr"] = np.where(ok, stats["clicks"] / stats["impressions"].clip(lower=1), np.nan)
    stats["trailing_impressions"] = _trailing_median(stats["impressions"], ok, checks.volume_band.trailing_days)
    stats["volume_ratio"] = stats["impressions"] / stats["trailing_impressions"]
    judged = ok & stats["impressions"].ge(checks.ctr_band.min_impressions)
    stats["trailing_ctr"] = _trailing_median(stats["ctr"], judged, checks.ctr_band.trailing_days)
    ratio = stats["ctr"] / stats["trailing_ctr"].where(stats["trailing_ctr"] > 0)
    stats["ctr_ratio"] = ratio.where(judged)
    return stats


def suites(stats: pd.DataFrame, rows: pd.DataFrame, checks: LogChecks, now: dt.datetime) -> list[Suite]:
    vol, ctr, bot = checks.volume_band, checks.ctr_band, checks.bot_max_impressions_per_user_day
    day_expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "days_present", "message": "no day partitions"}),
        gxe.ExpectColumnValuesToBeInSet(
            column="schema", value_set=["ok"],
            meta={"check": "schema", "message": "a day's columns or types drift from the data contract"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="impressions", min_value=1,
            meta={"check": "empty_day", "message": "a day partition has no impressions"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="volume_ratio", min_value=1 / vol.ratio, max_value=vol.ratio, strict_min=True, strict_max=True,
            severity=vol.severity,
            notes=f"impressions / median of the previous {vol.trailing_days} days; {vol.ratio:g}x or 1/{vol.ratio:g}x fails",
            meta={"check": "volume_band", "message": f"day volume outside 1/{vol.ratio:g}x..{vol.ratio:g}x of the trailing median"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="ctr_ratio", min_value=1 / ctr.ratio, max_value=ctr.ratio, strict_min=True, strict_max=True,
            severity=ctr.severity,
            notes=f"day CTR / median CTR of the previous {ctr.trailing_days} days (days with >= {ctr.min_impressions} impressions)",
            meta={"check": "ctr_band", "message": f"day CTR outside 1/{ctr.ratio:g}x..{ctr.ratio:g}x of the trailing median"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="max_user_impressions", max_value=bot.value, severity=bot.severity,
            meta={"check": "bot_threshold", "message": f"a user has more than {bot.value:g} impressions in a day (bot)"}),
    ]
    row_expectations = [
        *(gxe.ExpectColumnValuesToNotBeNull(
            column=col, meta={"check": "not_null", "message": f"null {col}"}) for col in ("event_id", "ts", "user_id", "item_id", "click")),
        gxe.ExpectColumnValuesToBeUnique(
            column="event_id", meta={"check": "unique_event_id", "message": "duplicate event_id"}),
        gxe.ExpectColumnValuesToBeInSet(
            column="click", value_set=[0, 1], meta={"check": "click_binary", "message": "click not in {0, 1}"}),
        gxe.ExpectColumnValuesToBeInSet(
            column="conversion", value_set=[0, 1], meta={"check": "conversion_binary", "message": "conversion not in {0, 1}"}),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="click", column_B="conversion", or_equal=True, ignore_row_if="either_value_is_missing",
            meta={"check": "conversion_implies_click", "message": "conversion without click"}),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="ts_day", column_B="ds", ignore_row_if="either_value_is_missing",
            meta={"check": "ts_inside_day", "message": "timestamp outside its day partition"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts", max_value=pd.Timestamp(now),
            meta={"check": "ts_not_future", "message": "timestamp in the future"}),
    ]
    if "known_item" in rows:
        row_expectations.append(gxe.ExpectColumnValuesToBeInSet(
            column="known_item", value_set=[True],
            meta={"check": "item_in_catalog", "message": "item_id missing from the catalog"}))
    return [Suite("days", stats, day_expectations, ["ds"]), Suite("events", rows, row_expectations, ["ds"])]
