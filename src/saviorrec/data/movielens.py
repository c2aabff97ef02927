"""MovieLens CSV layout (ratings.csv, movies.csv, tags.csv) -> the data contract.

Each rating is an impression: click = rating >= ``click_min_rating``, conversion =
rating == ``conversion_rating``. Title and genres are content (``category`` = first genre,
``attr_genres`` = all genres, ``attr_year`` = release year from the title). ``first_seen``
is the day of the item's first rating (or tag, for items only tagged). Tags become the
item description, but only tags dated before ``tags_before`` (the training cut-off) count,
so nothing from the evaluation window leaks into content.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saviorrec.config.model import MovieLens


@dataclass(frozen=True)
class MovieLensData:
    events: pd.DataFrame
    items: pd.DataFrame


def _read_csv(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"MovieLens folder {folder} has no {name}")
    return pd.read_csv(path)


def load_movielens(folder: str | Path, cfg: MovieLens, tags_before: dt.date | None) -> MovieLensData:
    folder = Path(folder)
    ratings = _read_csv(folder, "ratings.csv")
    movies = _read_csv(folder, "movies.csv")
    tags = _read_csv(folder, "tags.csv") if (folder / "tags.csv").is_file() else None

    ratings = ratings.sort_values(["timestamp", "userId", "movieId"], kind="stable").reset_index(drop=True)
    events = pd.DataFrame(
        {
            "event_id": ratings.index.astype("int64"),
            "ts": pd.to_datetime(ratings["timestamp"], unit="s", utc=True).astype("datetime64[ns, UTC]"),
            "user_id": ratings["userId"].astype("int64"),
            "item_id": ratings["movieId"].astype("int64"),
            "click": (ratings["rating"] >= cfg.click_min_rating).astype("int8"),
            "conversion": (ratings["rating"] == cfg.conversion_rating).astype("Int8"),
        }
    )

    first_event = events.groupby("item_id")["ts"].min()
    if tags is not None:
        tag_ts = pd.to_datetime(tags["timestamp"], unit="s", utc=True)
        first_event = pd.concat([first_event, tag_ts.groupby(tags["movieId"]).min()]).groupby(level=0).min()

    genres = movies["genres"].fillna("").astype(str)
    category = genres.str.split("|").str[0].replace({"(no genres listed)": "unknown", "": "unknown"})
    items = pd.DataFrame(
        {
            "item_id": movies["movieId"].astype("int64"),
            "title": movies["title"].fillna("").astype("str"),
            "category": category.astype("str"),
            "attr_genres": genres.str.replace("|", " ", regex=False).astype("str"),
            "attr_year": movies["title"].str.extract(r"\((\d{4})\)\s*$")[0].fillna("unknown").astype("str"),
        }
    )
    first_seen = items["item_id"].map(first_event)
    if first_seen.isna().any():
        missing = items.loc[first_seen.isna(), "item_id"].head(5).tolist()
        raise ValueError(f"movies without any rating or tag (cannot date first_seen), e.g. {missing}")
    items["first_seen"] = first_seen.dt.tz_convert(None).dt.normalize().astype("datetime64[ns]")
    items["description"] = _tag_descriptions(items["item_id"], tags, tags_before)
    return MovieLensData(events=events, items=items)


def _tag_descriptions(item_ids: pd.Series, tags: pd.DataFrame | None, before: dt.date | None) -> pd.Series:
    """'tags: a, b' per item from tags dated before the cut-off (None when there are none)."""
    empty = pd.Series(None, index=item_ids.index, dtype="str")
    if tags is None or tags.empty:
        return empty
    tag_ts = pd.to_datetime(tags["timestamp"], unit="s", utc=True)
    if before is not None:
        tags = tags[tag_ts < pd.Timestamp(before, tz="UTC")]
    if tags.empty:
        return empty
    text = (
        tags.assign(tag=tags["tag"].astype(str).str.strip().str.lower())
        .drop_duplicates(["movieId", "tag"])
        .sort_values(["movieId", "tag"])
        .groupby("movieId")["tag"]
        .agg(", ".join)
    )
    return ("tags: " + item_ids.map(text)).astype("str")
