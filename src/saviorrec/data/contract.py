"""The data contract, enforced with pandera.

Behavior log (one row per impression), Parquet partitioned by day ``ds=YYYY-MM-DD``:

=============  ==========================  ==================================================
column         type                        meaning
=============  ==========================  ==================================================
event_id       int64, unique               impression id
ts             timestamp, UTC              when the impression happened; inside its ``ds`` day
user_id        int64, not null
item_id        int64, not null             must exist in the item catalog
click          int8 in {0, 1}
conversion     Int8 in {0, 1} or null      null where the source has no conversions;
                                           conversion = 1 implies click = 1
ds             str ``YYYY-MM-DD``          the partition key (UTC day of ``ts``)
oracle_*       float, optional             synthetic only: the hidden true probabilities,
                                           for the oracle AUC; never a model feature
=============  ==========================  ==================================================

Item catalog (``items.parquet``), one row per item:
``item_id`` (int64, unique), ``title`` (str), ``description`` (str, optional),
``category`` (str), ``brand`` / ``price_bucket`` / ``attr_*`` (str, optional attributes),
``image_ref`` (str, optional; path relative to the data folder), ``first_seen``
(datetime64, midnight: the day the item was listed).

Errors are raised as :class:`ContractError`, whose message names each column and problem.
:func:`event_schema_drift` checks only the required event columns and their types, for
readers that must report a drifted day rather than fail on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors


class ContractError(ValueError):
    """Rows break the data contract. ``problems`` lists (column, problem) pairs."""

    def __init__(self, what: str, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = "\n".join(f"  - column '{col}': {problem}" for col, problem in problems)
        super().__init__(f"{what} breaks the data contract:\n{lines}")


def _is_utc(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) and str(series.dtype.tz) == "UTC"


def _is_midnight_datetime(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_dtype(series.dtype) and bool((series.dropna().dt.normalize() == series.dropna()).all())


_binary = pa.Check.isin([0, 1], error="must be 0 or 1")

EVENTS_SCHEMA = pa.DataFrameSchema(
    {
        "event_id": pa.Column("int64", unique=True, nullable=False),
        "ts": pa.Column(
            checks=pa.Check(_is_utc, error="must be a timezone-aware UTC timestamp"),
            nullable=False,
        ),
        "user_id": pa.Column("int64", nullable=False),
        "item_id": pa.Column("int64", nullable=False),
        "click": pa.Column("int8", checks=_binary, nullable=False),
        "conversion": pa.Column("Int8", checks=_binary, nullable=True),
        "oracle_p_click": pa.Column("float64", pa.Check.in_range(0, 1), required=False, nullable=False),
        "oracle_p_conversion": pa.Column("float64", pa.Check.in_range(0, 1), required=False, nullable=True),
    },
    checks=[
        pa.Check(
            lambda df: ~((df["conversion"].fillna(0) == 1) & (df["click"] != 1)),
            error="conversion without click (conversion = 1 requires click = 1)",
            name="conversion_implies_click",
        ),
    ],
    strict=False,
    name="events",
)

_optional_text = pa.Column("str", nullable=True, required=False)

ITEMS_SCHEMA = pa.DataFrameSchema(
    {
        "item_id": pa.Column("int64", unique=True, nullable=False),
        "title": pa.Column("str", nullable=False),
        "category": pa.Column("str", nullable=False),
        "first_seen": pa.Column(
            checks=pa.Check(_is_midnight_datetime, error="must be a datetime64 day (midnight, no timezone)"),
            nullable=False,
        ),
        "description": _optional_text,
        "brand": _optional_text,
        "price_bucket": _optional_text,
        "image_ref": _optional_text,
        r"attr_.+": pa.Column("str", nullable=True, required=False, regex=True),
    },
    strict=False,
    name="items",
)

EVENT_COLUMNS = [name for name, column in EVENTS_SCHEMA.columns.items() if column.required]
ITEM_REQUIRED = [name for name, column in ITEMS_SCHEMA.columns.items() if column.required]


def _integral(series: pd.Series) -> bool:
    """Integer values; Parquet reads an integer column with nulls back as float, which still counts."""
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return True
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.dropna().to_numpy()
        return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return False


def _type_only(column: pa.Column) -> pa.Column:
    """The column's type as the contract declares it, with nulls and values left to row checks."""
    if column.dtype is not None and pd.api.types.is_integer_dtype(column.dtype.type):
        return pa.Column(checks=pa.Check(_integral, error="must be integer"), nullable=True)
    # a column declared without a dtype (ts) states its type with its checks
    return pa.Column(column.dtype, checks=[] if column.dtype is not None else column.checks, nullable=True)


# The required event columns and their types only: what a day partition must have to be read at all.
EVENTS_TYPES_SCHEMA = pa.DataFrameSchema(
    {name: _type_only(column) for name, column in EVENTS_SCHEMA.columns.items() if column.required},
    strict=False,
    name="event types",
)


def event_schema_drift(events: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """(missing event columns, {column: what its type must be}) against the contract; nulls are not judged."""
    try:
        EVENTS_TYPES_SCHEMA.validate(events, lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases
        absent = cases["check"] == "column_in_dataframe"
        wrong = cases[~absent].drop_duplicates("column")
        return cases.loc[absent, "failure_case"].astype(str).tolist(), dict(zip(wrong["column"], wrong["check"], strict=True))
    return [], {}


def _problems(err: SchemaErrors) -> list[tuple[str, str]]:
    """Turn pandera's failure cases into one readable line per (column, check)."""
    cases = err.failure_cases
    out: list[tuple[str, str]] = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        column = column if isinstance(column, str) else "<table>"
        examples = ", ".join(str(v) for v in group["failure_case"].head(3).tolist())
        check = str(check)
        if check == "field_uniqueness":
            problem = f"duplicate values ({len(group)} rows, e.g. {examples})"
        elif check == "not_nullable":
            problem = f"null values ({len(group)} rows)"
        elif check.startswith("dtype("):
            problem = f"wrong type: expected {check[6:-1]}, got {examples}"
        elif check == "column_in_dataframe":
            # pandera reports the schema as the column and the missing name as the case
            out.extend((str(name), "required column is missing") for name in group["failure_case"])
            continue
        else:
            problem = f"{check} ({len(group)} rows, e.g. {examples})"
        out.append((column, problem))
    return out


def _run(schema: pa.DataFrameSchema, df: pd.DataFrame) -> list[tuple[str, str]]:
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as err:
        return _problems(err)
    return []


def validate_items(items: pd.DataFrame) -> pd.DataFrame:
    """Return ``items`` unchanged if it meets the contract, else raise ContractError."""
    problems = _run(ITEMS_SCHEMA, items)
    if problems:
        raise ContractError("item catalog", problems)
    return items


def validate_events(
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    day: str | None = None,
) -> pd.DataFrame:
    """Check a behavior log (optionally one ``day``) against the contract and the catalog."""
    problems = _run(EVENTS_SCHEMA, events)
    broken = {col for col, _ in problems}
    if "ts" not in broken and "ts" in events:
        expected_day = events["ds"] if "ds" in events else (pd.Series(day, index=events.index) if day else None)
        if expected_day is not None:
            actual = events["ts"].dt.strftime("%Y-%m-%d")
            outside = actual != expected_day.astype(str)
            if outside.any():
                first = events.loc[outside, "ts"].iloc[0]
                problems.append(("ts", f"timestamp outside its day partition ({int(outside.sum())} rows, e.g. {first} in ds={expected_day[outside].iloc[0]})"))
    if items is not None and "item_id" not in broken and "item_id" in events:
        unknown = ~events["item_id"].isin(items["item_id"])
        if unknown.any():
            examples = ", ".join(str(v) for v in events.loc[unknown, "item_id"].unique()[:3])
            problems.append(("item_id", f"item_id missing from the catalog ({int(unknown.sum())} rows, e.g. {examples})"))
    if problems:
        raise ContractError(f"behavior log{' for ds=' + day if day else ''}", problems)
    return events
