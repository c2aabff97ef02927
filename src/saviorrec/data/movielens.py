"""MovieLens CSV layout (ratings.csv, movies.csv, tags.csv) -> the data contract.

Each rating is an impression: click = rating >= ``click_min_rating``, conversion =
rating == ``conversion_rating``. Title and genres are content (``category`` = first genre,
``attr_genres`` = all genres, ``attr_year`` = release year from the title). ``first_seen``
is the day of the item's first rating (or tag, for items only tagged). Tags become the
item description, but only tags dated before ``tags_before`` (the training cut-off) count,
so nothing from the evaluation window leaks into content.

Subsetting (params ``movielens:``, for settings that stress cold start; all off by default):
``since`` / ``until`` keep the ratings and tags of one period, ``max_users`` then keeps a
uniform sample of the users who rated in it, ``max_items`` a uniform sample of the items
still rated or tagged (uniform rather than the most-rated: a most-rated cut would favour old
hits over the new and long-tail items a cold-start setting is about, and would pick items
using counts from the evaluation window). Samples are seeded by ``params.seed``. With any of
these set, the catalog is the items left with a rating or tag. ``first_seen`` always comes
from the whole folder, so an item listed before ``since``, or first rated by a dropped user,
is not "new". ``content: title_genres`` drops the tag descriptions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


# Random streams of the samples: np.random.default_rng([seed, stream]).
_USERS_STREAM, _ITEMS_STREAM = 1, 2


def _epoch_seconds(day: dt.date) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def _subset(ratings: pd.DataFrame, tags: pd.DataFrame | None, cfg: MovieLens, seed: int
            ) -> tuple[pd.DataFrame, pd.DataFrame | None, np.ndarray]:
    """Ratings and tags of the period, users and items that ``cfg`` keeps, and the kept item ids."""

    def in_period(frame: pd.DataFrame) -> pd.Series:
        keep = pd.Series(True, index=frame.index)
        if cfg.since is not None:
            keep &= frame["timestamp"] >= _epoch_seconds(cfg.since)
        if cfg.until is not None:
            keep &= frame["timestamp"] < _epoch_seconds(cfg.until)
        return keep

    ratings = ratings[in_period(ratings)]
    if tags is not None:
        tags = tags[in_period(tags)]
    if cfg.max_users is not None:
        users = np.unique(ratings["userId"].to_numpy())
        if len(users) > cfg.max_users:
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _USERS_STREAM])
            users = np.sort(rng.choice(users, size=cfg.max_users, replace=False))
        ratings = ratings[ratings["userId"].isin(users)]
        if tags is not None:
            tags = tags[tags["userId"].isin(users)]
    items = np.unique(np.concatenate([ratings["movieId"].to_numpy(),
                                      tags["movieId"].to_numpy() if tags is not None else np.array([], dtype="int64")]))
    if cfg.max_items is not None and len(items) > cfg.max_items:
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _ITEMS_STREAM])
        items = np.sort(rng.choice(items, size=cfg.max_items, replace=False))
        ratings = ratings[ratings["movieId"].isin(items)]
        if tags is not None:
            tags = tags[tags["movieId"].isin(items)]
    if ratings.empty:
        raise ValueError(f"the MovieLens subset (since {cfg.since}, until {cfg.until}, max_users {cfg.max_users}, "
                         f"max_items {cfg.max_items}) keeps no rating")
    return ratings, tags, items


def load_movielens(folder: str | Path, cfg: MovieLens, tags_before: dt.date | None, seed: int = 0) -> MovieLensData:
    """The folder as events + catalog; ``seed`` (params.seed) draws the ``max_users`` / ``max_items`` samples."""
    folder = Path(folder)
    ratings = _read_csv(folder, "ratings.csv")
    movies = _read_csv(folder, "movies.csv")
    tags = _read_csv(folder, "tags.csv") if (folder / "tags.csv").is_file() else None

    # first_seen from the whole folder, before any subsetting
    first_event = pd.to_datetime(ratings["timestamp"], unit="s", utc=True).groupby(ratings["movieId"]).min()
    if tags is not None:
        tag_ts = pd.to_datetime(tags["timestamp"], unit="s", utc=True)
        first_event = pd.concat([first_event, tag_ts.groupby(tags["movieId"]).min()]).groupby(level=0).min()
    if cfg.subsets:
        ratings, tags, kept = _subset(ratings, tags, cfg, seed)
        movies = movies[movies["movieId"].isin(kept)].reset_index(drop=True)
    if cfg.content == "title_genres":
        tags = None  # content: title and genres only

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
