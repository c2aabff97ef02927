"""The ingest stage: parquet source round trip, bad input keeps the previous data."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import ingest
from saviorrec.data import io
from saviorrec.data.contract import ContractError
from saviorrec.stages import run_stage
from saviorrec.workspace import StageError, Workspace
from tests.conftest import make_workspace
from tests.test_contract import _events, _items


def _workspace(tmp_path, **overrides):
    ws = Workspace.open(make_workspace(tmp_path / "ws", overrides))
    return ws.params, ws


def _parquet_source(tmp_path, events=None):
    src = tmp_path / "src"
    io.write_items(_items(), src / "items.parquet")
    io.write_events(_events() if events is None else events, src / "events")
    return src


def test_parquet_source_roundtrip(tmp_path):
    params, ws = _workspace(tmp_path)
    summary = run_stage("ingest", ws, source="parquet", path=str(_parquet_source(tmp_path)))
    assert summary["impressions"] == 3 and summary["items"] == 3 and summary["days"] == 1
    pd.testing.assert_frame_equal(io.read_events(ws.path("events")), io.read_events(tmp_path / "src" / "events"))


def test_bad_source_keeps_previous_data(tmp_path):
    params, ws = _workspace(tmp_path)
    run_stage("ingest", ws, source="parquet", path=str(_parquet_source(tmp_path)))
    before = io.read_events(ws.path("events"))

    bad = _events()
    bad.loc[1, "conversion"] = 1  # conversion without click
    bad_src = tmp_path / "bad"
    io.write_items(_items(), bad_src / "items.parquet")
    io.write_events(bad, bad_src / "events")
    with pytest.raises(ContractError, match="conversion without click"):
        run_stage("ingest", ws, source="parquet", path=str(bad_src))
    pd.testing.assert_frame_equal(io.read_events(ws.path("events")), before)


def test_missing_source_folder_is_a_clear_error(tmp_path):
    params, ws = _workspace(tmp_path)
    with pytest.raises(StageError, match="data source folder not found"):
        run_stage("ingest", ws, source="movielens", path=str(tmp_path / "nope"))


def test_cli_out_flag_and_exit_code(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    src = _parquet_source(tmp_path)
    out = tmp_path / "out"
    ingest.main(["--workdir", str(root), "--params", str(root / "params.yaml"),
                 "--source", "parquet", "--path", str(src), "--out", str(out)])
    assert "wrote 3 impressions" in capsys.readouterr().out
    assert io.count_events(out / "events") == 3
    with pytest.raises(SystemExit) as exit_info:
        ingest.main(["--workdir", str(root), "--params", str(root / "params.yaml"), "--set", "ranker.lr=-1"])
    assert exit_info.value.code == 1
    assert "ranker.lr" in capsys.readouterr().err
