"""The data contract rejects bad rows with a message naming the column and the problem."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saviorrec.data import io
from saviorrec.data.contract import ContractError, validate_events, validate_items


def _items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.Series([1, 2, 3], dtype="int64"),
            "title": pd.Series(["red tent", "blue boots", "green mug"], dtype="str"),
            "category": pd.Series(["outdoor", "outdoor", "kitchen"], dtype="str"),
            "first_seen": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]).astype("datetime64[ns]"),
        }
    )


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series([10, 11, 12], dtype="int64"),
            "ts": pd.to_datetime(["2024-01-02 08:00", "2024-01-02 09:00", "2024-01-02 23:59"], utc=True),
            "user_id": pd.Series([7, 7, 8], dtype="int64"),
            "item_id": pd.Series([1, 2, 3], dtype="int64"),
            "click": pd.Series([1, 0, 1], dtype="int8"),
            "conversion": pd.Series([1, 0, pd.NA], dtype="Int8"),
            "ds": pd.Series(["2024-01-02"] * 3, dtype="str"),
        }
    )


def _problem(err: ContractError, column: str) -> str:
    matches = [p for c, p in err.problems if c == column]
    assert matches, f"no problem reported for column {column!r}: {err}"
    return matches[0]


def test_clean_rows_pass():
    validate_items(_items())
    validate_events(_events(), _items())


def test_duplicate_event_id_named():
    events = _events()
    events.loc[1, "event_id"] = 10
    with pytest.raises(ContractError) as err:
        validate_events(events, _items())
    assert "duplicate" in _problem(err.value, "event_id")
    assert "column 'event_id'" in str(err.value)


@pytest.mark.parametrize("column", ["user_id", "item_id"])
def test_null_ids_named(column):
    events = _events()
    events[column] = pd.Series([1, None, 3], dtype="Int64")
    with pytest.raises(ContractError) as err:
        validate_events(events)
    assert "null" in _problem(err.value, column) or "type" in _problem(err.value, column)


def test_conversion_without_click():
    events = _events()
    events.loc[1, "conversion"] = 1
    with pytest.raises(ContractError) as err:
        validate_events(events)
    assert "conversion without click" in str(err.value)


def test_ts_outside_its_day():
    events = _events()
    events.loc[2, "ts"] = pd.Timestamp("2024-01-03 00:00:01", tz="UTC")
    with pytest.raises(ContractError) as err:
        validate_events(events)
    assert "outside its day" in _problem(err.value, "ts")


def test_item_missing_from_catalog():
    events = _events()
    events.loc[0, "item_id"] = 999
    with pytest.raises(ContractError) as err:
        validate_events(events, _items())
    assert "999" in _problem(err.value, "item_id")


def test_wrong_types_named():
    events = _events()
    events["click"] = events["click"].astype("float64")
    events["ts"] = events["ts"].dt.tz_convert(None)
    with pytest.raises(ContractError) as err:
        validate_events(events)
    assert "int8" in _problem(err.value, "click")
    assert "UTC" in _problem(err.value, "ts")


def test_items_duplicate_and_missing_column():
    items = _items()
    items.loc[2, "item_id"] = 1
    with pytest.raises(ContractError) as err:
        validate_items(items.drop(columns=["category"]))
    assert "duplicate" in _problem(err.value, "item_id")
    assert "missing" in _problem(err.value, "category")


def test_roundtrip_through_partitions(tmp_path):
    events = _events()
    io.write_events(events, tmp_path / "events")
    io.write_items(_items(), tmp_path / "items.parquet")
    assert io.list_days(tmp_path / "events") == [pd.Timestamp("2024-01-02").date()]
    back = io.read_events(tmp_path / "events")
    validate_events(back, io.read_items(tmp_path / "items.parquet"))
    expected = events.drop(columns="ds").assign(ts=events["ts"].astype("datetime64[ns, UTC]"))
    pd.testing.assert_frame_equal(back.drop(columns="ds"), expected, check_dtype=True)
    assert io.count_events(tmp_path / "events") == 3


def test_roundtrip_through_s3_partitions(s3_bucket, tmp_path):
    """The same files and frames on S3 (moto server) as on a local folder."""
    local, remote = tmp_path / "events", f"s3://{s3_bucket}/data/events"
    for root in (local, remote):
        io.write_events(_events(), root)
    io.write_items(_items(), f"s3://{s3_bucket}/data/items.parquet")
    assert io.list_days(remote) == io.list_days(local)
    assert io.day_parts(remote, "2024-01-02") == [f"{remote}/ds=2024-01-02/part-00000.parquet"]
    pd.testing.assert_frame_equal(io.read_events(remote), io.read_events(local), check_exact=True)
    pd.testing.assert_frame_equal(io.read_items(f"s3://{s3_bucket}/data/items.parquet"), _items())
    assert io.count_events(remote) == 3
    assert io.list_days(f"s3://{s3_bucket}/nothing-here") == []
    with pytest.raises(FileNotFoundError, match="parquet file not found"):
        io.read_parquet(f"s3://{s3_bucket}/data/missing.parquet")


@pytest.mark.parametrize("group_rows", [1, 5, 10_000])
def test_streamed_days_equal_each_day_read_alone(tmp_path, monkeypatch, group_rows):
    """iter_event_days converts small consecutive days together: every day must come out exactly as
    read_event_day returns it (rows in file order, a day of two files, a file whose conversion
    column is all null), whatever the group size."""
    monkeypatch.setattr(io, "DAY_GROUP_ROWS", group_rows)
    base = _events()
    root = tmp_path / "events"
    for offset in range(6):
        day = base.assign(event_id=base["event_id"] + 10 * offset, ts=base["ts"] + pd.Timedelta(days=offset))
        if offset == 2:
            day = day.assign(conversion=pd.array([pd.NA] * 3, dtype="Int8"))
        io.write_event_day(day.iloc[::-1], root, day["ts"].dt.date.iloc[0])  # not in ts order on purpose
    io.write_event_day(base.assign(event_id=[90, 91, 92]), root, "2024-01-03", part=1)
    # days whose files convert to other dtypes must come out as they do alone, not as their neighbours'
    odd = base.assign(ts=base["ts"] + pd.Timedelta(days=10))
    io.write_event_day(odd.drop(columns="conversion"), root, "2024-01-12")  # a column missing
    io.write_event_day(odd.assign(ts=odd["ts"] + pd.Timedelta(days=1), note=None), root, "2024-01-13")  # null-typed
    io.write_event_day(odd.assign(ts=odd["ts"] + pd.Timedelta(days=2), rank=pd.array([1, None, 3], dtype="Int64"))
                       .astype({"rank": "float64"}), root, "2024-01-14")
    io.write_event_day(odd.assign(ts=odd["ts"] + pd.Timedelta(days=3), rank=[1.0, 2.0, 3.0]), root, "2024-01-15")
    io.write_parquet(odd.assign(ts=odd["ts"] + pd.Timedelta(days=4)).drop(columns="ds").astype({"click": "int64"}),
                     root / "ds=2024-01-16" / "part-00000.parquet")  # another integer width
    for offset, rank in ((5, [1, None, 3]), (6, [1, 2, 3])):  # files of another writer: no pandas metadata
        plain = pa.Table.from_pandas(odd.assign(ts=odd["ts"] + pd.Timedelta(days=offset)).drop(columns="ds"),
                                     preserve_index=False).replace_schema_metadata(None)
        folder = root / f"ds={(odd['ts'] + pd.Timedelta(days=offset)).dt.date.iloc[0]}"
        folder.mkdir()
        pq.write_table(plain.append_column("rank", pa.array(rank, pa.int64())), folder / "part-00000.parquet")
    for columns in (None, ["item_id", "ts"]):
        streamed = list(io.iter_event_days(root, columns=columns))
        assert [d for d, _ in streamed] == io.list_days(root)
        for day, frame in streamed:
            pd.testing.assert_frame_equal(frame, io.read_event_day(root, day, columns=columns), check_exact=True)
    window = [d for d, _ in io.iter_event_days(root, start=pd.Timestamp("2024-01-03").date(),
                                               end=pd.Timestamp("2024-01-05").date())]
    assert [str(d) for d in window] == ["2024-01-03", "2024-01-04"]
