"""Item-to-item retrieval quality on held-out behavior pairs (the paper's hit@30).

For each held-out (trigger, target): rank every catalog item except the trigger by cosine
similarity to the trigger; a hit when the target is in the top k. Exact search with faiss.
:func:`retrieval_report` gives it per pair set (warm, cold, future, future-new) beside plain MiniLM.

An exact search costs (trigger items) x (catalog) and both grow with the catalog, so hit@k is
quadratic in it. Beyond ``max_triggers`` distinct triggers (``encoder.hit_max_triggers``), the
queries of a seeded sample of that many trigger items are scored: linear in the catalog, the same
queries for any vectors (so two representations still compare query by query), and exact below
the cap (every catalog of the default world and MovieLens dev stays below it).
"""

from __future__ import annotations

import faiss
import numpy as np
import pandas as pd

from saviorrec.metrics.retrieval_sets import RetrievalSets


def hit_at_k(
    item_ids: np.ndarray,
    vectors: np.ndarray,
    pairs: pd.DataFrame,
    k: int = 30,
    both_directions: bool = True,
    max_triggers: int | None = None,
    seed: int = 0,
) -> float | None:
    """Share of held-out pairs whose target is in the trigger's top-k neighbours.

    ``both_directions``: pairs are unordered (trigger < target), so each is asked both ways
    (a -> b and b -> a) and the two hits averaged. None when there are no usable pairs.
    """
    hits = hits_at_k(item_ids, vectors, pairs, k, both_directions, max_triggers, seed)
    return float(hits.mean()) if len(hits) else None


def hits_at_k(
    item_ids: np.ndarray,
    vectors: np.ndarray,
    pairs: pd.DataFrame,
    k: int = 30,
    both_directions: bool = True,
    max_triggers: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """bool per usable query (pairs whose items are in the catalog; both directions first
    a -> b, then b -> a): is the target among the trigger's top k? Same query order for any
    ``vectors``, so two item representations can be compared query by query."""
    item_ids = np.asarray(item_ids, np.int64)
    index_of = pd.Series(np.arange(len(item_ids)), index=item_ids)
    queries = usable_queries(item_ids, pairs, both_directions)
    queries = queries[sampled_triggers(queries[:, 0], max_triggers, seed)]
    if len(queries) == 0:
        return np.zeros(0, bool)
    x = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    faiss.normalize_L2(x)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    trig = index_of.reindex(queries[:, 0]).to_numpy()
    targ = index_of.reindex(queries[:, 1]).to_numpy()
    uniq, inverse = np.unique(trig, return_inverse=True)
    kk = min(k + 1, len(item_ids))
    _, neighbours = index.search(x[uniq], kk)
    neighbours = neighbours[inverse]
    # drop the trigger itself (wherever ties put it), keep the first k others
    not_self = neighbours != trig[:, None]
    rank = np.cumsum(not_self, axis=1)
    in_top = not_self & (rank <= k) & (neighbours == targ[:, None])
    return in_top.any(axis=1)


def usable_queries(item_ids: np.ndarray, pairs: pd.DataFrame, both_directions: bool) -> np.ndarray:
    """[n, 2] (trigger, target) queries whose items are both in the catalog; both directions:
    every a -> b first, then every b -> a."""
    queries = pairs[["trigger", "target"]].to_numpy(np.int64)
    if both_directions:
        queries = np.concatenate([queries, queries[:, ::-1]])
    return queries[np.isin(queries, np.asarray(item_ids, np.int64)).all(axis=1)]


def sampled_triggers(triggers: np.ndarray, max_triggers: int | None, seed: int = 0) -> np.ndarray:
    """bool per query: is its trigger among a seeded sample of ``max_triggers`` distinct triggers
    (all of them at or below the cap)? Depends on the trigger ids only, never on the vectors."""
    distinct = np.unique(triggers)
    if max_triggers is None or len(distinct) <= max_triggers:
        return np.ones(len(triggers), bool)
    kept = np.random.default_rng(seed).choice(distinct, size=max_triggers, replace=False)
    return np.isin(triggers, kept)


def retrieval_report(item_ids: np.ndarray, vectors: np.ndarray, reference: np.ndarray, sets: RetrievalSets,
                     k: int, max_triggers: int | None = None, seed: int = 0) -> dict[str, dict]:
    """{set: {pairs, queries, sampled, hit, minilm, ratio}}: hit@k of ``vectors`` beside the
    plain-content ``reference`` on the same queries (ratio None when either is undefined or the
    reference scores 0). ``queries``: those scored; ``sampled``: beyond ``max_triggers``."""
    report = {}
    for name, pairs in sets.items().items():
        both = name not in RetrievalSets.ORDERED
        hits = hits_at_k(item_ids, vectors, pairs, k, both, max_triggers, seed)
        ref_hits = hits_at_k(item_ids, reference, pairs, k, both, max_triggers, seed)
        hit = float(hits.mean()) if len(hits) else None
        ref = float(ref_hits.mean()) if len(ref_hits) else None
        every = len(usable_queries(item_ids, pairs, both))
        report[name] = {"pairs": int(len(pairs)), "queries": int(len(hits)), "sampled": len(hits) < every,
                        "hit": hit, "minilm": ref, "ratio": hit / ref if hit is not None and ref else None}
    return report
