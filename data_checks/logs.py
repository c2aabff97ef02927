"""Behavior-log suite: one batch of day-level statistics plus the rows, batch by batch.

Validating thousands of small days (MovieLens) as one batch each would take minutes; the
day-level checks (volume, CTR band, bots, empty days, schema) run on a frame with one row
per day, and the row-level checks on the rows of the days in scope, consecutive days grouped
into batches of up to ``checks.logs.row_checks.batch_rows`` rows (a bigger day is a batch of
its own). Each batch is read, validated and dropped before the next, so memory holds one
batch, never the log; the batch results add up to one validation result (runner, batches),
each failing row named by its ``ds``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from data_checks.config import LogChecks
from data_checks.frames import day_stats, read_raw_day, schema_problems
from data_checks.runner import Suite
from saviorrec.data import io
from saviorrec.data.contract import EVENT_COLUMNS
from saviorrec.workspace import Workspace


def load_stats(ws: Workspace, checks: LogChecks) -> pd.DataFrame:
    """Day statistics (one row per day partition), read one partition at a time."""
    root = ws.path("events")
    days = io.list_days(root)
    if not days:
        raise FileNotFoundError(f"no event partitions (ds=YYYY-MM-DD) under {root}")
    stats = []
    for day in days:
        frame = read_raw_day(root, day)
        stats.append(day_stats(str(day), frame, schema_problems(frame)))
        del frame
    return _with_bands(pd.DataFrame([s.__dict__ for s in stats]), checks)


def plan_batches(stats: pd.DataFrame, checks: LogChecks) -> list[list[str]]:
    """The days in scope for row checks (contract schema, some rows), grouped into consecutive
    runs of at most ``batch_rows`` rows; a day bigger than that is a batch of its own."""
    scope = stats if not checks.row_checks.last_days else stats.iloc[-checks.row_checks.last_days:]
    scope = scope[scope["schema"].eq("ok") & scope["impressions"].gt(0)]
    budget = checks.row_checks.batch_rows
    batches: list[list[str]] = []
    rows = 0
    for ds, n in zip(scope["ds"], scope["impressions"], strict=True):
        if not batches or rows + n > budget:
            batches.append([])
            rows = 0
        batches[-1].append(str(ds))
        rows += int(n)
    return batches


def row_batches(ws: Workspace, plan: list[list[str]], catalog_ids: set[int] | None) -> Iterator[tuple[str, pd.DataFrame]]:
    """(days label, rows) per planned batch, read only when asked for; one empty frame when no day is in scope."""
    root = ws.path("events")
    if not plan:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in EVENT_COLUMNS}).astype({"ts": "datetime64[ns, UTC]"})
        yield "no day in scope", _row_frame(empty, "", catalog_ids)
        return
    for days in plan:
        parts = [_row_frame(read_raw_day(root, day)[EVENT_COLUMNS], day, catalog_ids) for day in days]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        del parts
        yield (days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"), frame
        del frame


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


def suites(stats: pd.DataFrame, ws: Workspace, catalog_ids: set[int] | None, checks: LogChecks,
           now: dt.datetime) -> list[Suite]:
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
    if catalog_ids is not None:  # _row_frame adds known_item
        row_expectations.append(gxe.ExpectColumnValuesToBeInSet(
            column="known_item", value_set=[True],
            meta={"check": "item_in_catalog", "message": "item_id missing from the catalog"}))
    plan = plan_batches(stats, checks)
    rows = int(stats.set_index("ds").loc[[d for days in plan for d in days], "impressions"].sum()) if plan else 0
    return [Suite("days", stats, day_expectations, ["ds"]),
            Suite("events", None, row_expectations, ["ds"], batches=row_batches(ws, plan, catalog_ids), rows=rows)]
