"""A corpus of a user's mistakes on the `saviorrec` command line, built from a tiny ingested workspace.

Each ``CliCase`` is one command a person could type (a garbage or CSV file where Parquet
belongs, an events file given as the catalog, a missing column, a folder without partitions,
an output suffix nobody writes, pictures that are not where the catalog says). Through the
real CLI, each must end in exit code 2 and ONE line on stderr, ``error: <file>: <problem>;
expected <what>``, naming the file the person must fix, with no traceback and no output file.
``build_cli_files`` writes the broken files the cases point at, once per test session.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class CliFiles:
    """Where the corpus's files are: good ones copied from an ingested workspace, broken ones beside them."""

    folder: Path
    params: Path           # a params file whose registry holds a production model

    def __getattr__(self, name: str) -> Path:  # files.events_csv -> folder/events_csv...
        return FILES[name](self.folder)


# name -> its path under the corpus folder
FILES: dict[str, Callable[[Path], Path]] = {
    "events_root": lambda f: f / "data" / "events",
    "day_folder": lambda f: sorted((f / "data" / "events").glob("ds=*"))[-1],  # the last day
    "items": lambda f: f / "data" / "items.parquet",
    "events_file": lambda f: f / "events.parquet",
    "garbage": lambda f: f / "garbage.parquet",
    "events_csv": lambda f: f / "events.csv",
    "truncated": lambda f: f / "truncated.parquet",
    "without_click": lambda f: f / "without_click.parquet",
    "click_count": lambda f: f / "click_count.parquet",
    "unknown_items": lambda f: f / "unknown_items.parquet",
    "no_partitions": lambda f: f / "no_partitions",
    "empty_day": lambda f: f / "empty_events" / "ds=2024-01-06",
    "new_items": lambda f: f / "new" / "new_items.parquet",
    "pictures": lambda f: f / "data",
    "out": lambda f: f / "out",
}


def _write(frame: pd.DataFrame, path: Path) -> None:
    """Parquet as a foreign producer writes it: pyarrow directly, no contract check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def build_cli_files(ingested: Path, dst: Path, params: Path) -> CliFiles:
    """The corpus's files under ``dst``, from the data of the ingested workspace ``ingested``."""
    shutil.copytree(ingested / "data", dst / "data")
    files = CliFiles(dst, params)
    day = pq.read_table(next(files.day_folder.glob("*.parquet"))).to_pandas()
    _write(day, files.events_file)
    files.garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    day.head(20).to_csv(files.events_csv, index=False)
    files.truncated.write_bytes(files.events_file.read_bytes()[:-100])
    _write(day.drop(columns=["click"]), files.without_click)
    click_count = day.copy()
    click_count.loc[click_count.index[:2], "click"] = 2
    _write(click_count, files.click_count)
    _write(day.assign(item_id=np.where(day.index < 4, 99_999_999, day["item_id"])), files.unknown_items)
    files.no_partitions.mkdir()
    (files.no_partitions / "readme.txt").write_text("not a partition")
    files.empty_day.mkdir(parents=True)
    # 3 new items whose pictures stay in the workspace's data folder, not beside the catalog file
    items = pq.read_table(files.items).to_pandas()
    new = items.tail(3).assign(item_id=items["item_id"].max() + 1 + np.arange(3))
    assert new["image_ref"].notna().all() and all((files.pictures / ref).is_file() for ref in new["image_ref"])
    _write(new, files.new_items)
    files.out.mkdir()
    return files


@dataclass(frozen=True)
class CliCase:
    name: str
    argv: Callable[[CliFiles], list[str]]     # the command line, after `saviorrec`
    names: Callable[[CliFiles], Path]          # the file the error line must name
    problem: str                               # a fragment of the problem, as the line must say it
    expected: str                              # a fragment of what was expected

    def out_file(self, files: CliFiles) -> Path:
        """The output the command was asked to write (it must not exist afterwards)."""
        return Path(self.argv(files)[self.argv(files).index("--out") + 1])


def _args(files: CliFiles, parts: tuple[str, ...]) -> list[str]:
    """Flags as they are, corpus file names (keys of FILES) as their paths."""
    return [str(getattr(files, part)) if part in FILES else part for part in parts]


def _score(events: str, *extra: str, out: str = "scores.parquet") -> Callable[[CliFiles], list[str]]:
    return lambda f: ["score", "--events", str(getattr(f, events)), "--out", str(f.out / out),
                      "--params", str(f.params), *_args(f, extra)]


def _sid(items: str, *extra: str, out: str = "sids.parquet") -> Callable[[CliFiles], list[str]]:
    return lambda f: ["sid", "--items", str(getattr(f, items)), "--out", str(f.out / out), "--params", str(f.params),
                      *_args(f, extra)]


def _file(name: str) -> Callable[[CliFiles], Path]:
    return lambda f: getattr(f, name)


_PARQUET_EVENTS = "a behavior log in the data contract"
_CATALOG = "an item catalog in the data contract"

CLI_CASES = [
    CliCase("score_garbage_file", _score("garbage"), _file("garbage"), "is not a Parquet file", _PARQUET_EVENTS),
    CliCase("score_csv_file", _score("events_csv"), _file("events_csv"), "is a CSV/text file, not Parquet",
            _PARQUET_EVENTS),
    CliCase("score_truncated_parquet", _score("truncated"), _file("truncated"), "is a damaged Parquet file",
            _PARQUET_EVENTS),
    CliCase("score_missing_file", lambda f: ["score", "--events", str(f.folder / "nowhere.parquet"), "--out",
                                             str(f.out / "s.parquet"), "--params", str(f.params)],
            lambda f: f.folder / "nowhere.parquet", "no such file or folder", _PARQUET_EVENTS),
    CliCase("score_folder_without_partitions", _score("no_partitions"), _file("no_partitions"),
            "folder holds no ds=YYYY-MM-DD partition", "one ds=YYYY-MM-DD partition folder"),
    CliCase("score_empty_day_folder", _score("empty_day"), _file("empty_day"),
            "partition folder holds no .parquet file", _PARQUET_EVENTS),
    # one line, the missing column: not a "conversion without click" chain ending in KeyError('click')
    CliCase("score_without_click_column", _score("without_click"), _file("without_click"),
            "missing column(s) click", "the behavior log columns event_id, ts, user_id, item_id, click, conversion"),
    CliCase("score_click_count", _score("click_count"), _file("click_count"),
            "breaks the data contract: column 'click': must be 0 or 1", _PARQUET_EVENTS),
    CliCase("score_unknown_items", _score("unknown_items"), _file("unknown_items"),
            "item_id missing from the model's catalog (4 rows, e.g. 99999999)", "given with --items"),
    CliCase("score_history_garbage", _score("events_file", "--history", "garbage"),
            _file("garbage"), "is not a Parquet file", _PARQUET_EVENTS),
    CliCase("score_catalog_as_events", _score("items"), _file("items"),
            "missing column(s) event_id, ts, user_id, click, conversion: it looks like an item catalog",
            "the behavior log columns"),
    CliCase("score_out_txt", _score("events_file", out="scores.txt"), lambda f: f.out / "scores.txt",
            "unsupported output format (suffix '.txt')", "a file name ending in .parquet, .csv, .json"),
    CliCase("sid_out_without_suffix", _sid("new_items", "--data-dir", "pictures", out="sids"),
            lambda f: f.out / "sids", "unsupported output format (no suffix)", ".parquet, .csv, .json"),
    CliCase("sid_events_file_as_catalog", _sid("events_file"), _file("events_file"),
            "missing column(s) title, category, first_seen: it looks like a behavior log", _CATALOG),
    CliCase("sid_garbage_catalog", _sid("garbage"), _file("garbage"), "is not a Parquet file", _CATALOG),
    CliCase("sid_catalog_folder", _sid("events_root"), _file("events_root"), "is a folder", _CATALOG),
    # pictures missing where the refs point: the folder looked in (the catalog's own) and the count
    CliCase("sid_pictures_not_beside_catalog", _sid("new_items"), _file("new_items"),
            "3 of 3 image_ref(s) name no file under NEW_FOLDER (e.g. images/", "under --data-dir"),
    CliCase("sid_pictures_not_under_data_dir", _sid("new_items", "--data-dir", "no_partitions"),
            _file("new_items"), "3 of 3 image_ref(s) name no file under NO_PARTITIONS (e.g. images/",
            "or a null image_ref"),
]


def expand(text: str, files: CliFiles) -> str:
    """Placeholders for paths only known once the files exist."""
    return (text.replace("NEW_FOLDER", str(files.new_items.parent.resolve()))
            .replace("NO_PARTITIONS", str(files.no_partitions.resolve())))
