"""Ranker samples: each impression with what was known strictly before its timestamp.

For every impression the :class:`SampleBuilder` emits
- the user's last ``seq_len`` clicked items with ``ts`` strictly before the impression's ``ts``
  (clicks at the same instant are not history), oldest first, right-aligned, ``-1`` = padding;
- online counters (user, user x category, category, item, global impressions and clicks, and
  optionally user x cluster / cluster for the level-1 SID and for coarse content clusters)
  over the same strict past, from which the dense features and the heuristic score derive.

The builder is replayed day by day (``step``), so only one day partition and the running
state (last ``seq_len`` clicks per user, counters per key) are ever in memory.
:class:`ItemFeatures` maps item IDs to rows of the frozen content tables (z / MiniLM
vector, SID, category); unknown item IDs map to row 0 (no content, no code, category 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from saviorrec.data.vectors import vectors_array

COUNTERS = ("user", "ucat", "cat", "item", "glob")
# Optional item groupings with user x group counters: level-1 SID code, coarse cluster of the
# variant's item vectors, coarse cluster of the plain text vectors (saviorrec.models.content_clusters).
# Each adds "<name>" and "u<name>" counters.
CLUSTER_KINDS = ("sid", "cl", "tcl")
DENSE_FEATURES = [
    "log_user_imps", "user_ctr", "log_ucat_imps", "ucat_ctr", "cat_ctr",
    "log_item_imps", "item_ctr", "history_fill", "heuristic_logit",
    # semantic-cluster counters (level-1 SID code): zero when the variant has no SIDs
    "log_usid_imps", "usid_ctr", "sid_ctr",
    # content-cluster counters (ranker.content_clusters): zero when off or without item vectors
    "log_ucl_imps", "ucl_ctr", "cl_ctr",
    # text-cluster counters (ranker.text_clusters): zero when off or when the item vectors are the text
    "log_utcl_imps", "utcl_ctr", "tcl_ctr",
]
# Models trained before the semantic-cluster counters existed read only these columns.
LEGACY_DENSE_FEATURES = DENSE_FEATURES[:9]


def ts_ns(ts: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds (comparable across frames)."""
    ts = pd.to_datetime(ts, utc=True)
    return ts.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view("int64")


def category_codes(categories: pd.Series, vocab: np.ndarray) -> np.ndarray:
    """Category strings -> 1..len(vocab) (``vocab`` sorted); unknown or missing -> 0."""
    values = categories.astype(object).where(categories.notna(), "").astype(str).to_numpy()
    pos = np.searchsorted(vocab, values)
    pos = np.clip(pos, 0, max(len(vocab) - 1, 0))
    found = (len(vocab) > 0) & (vocab[pos] == values) if len(vocab) else np.zeros(len(values), bool)
    return np.where(found, pos + 1, 0).astype(np.int64)


@dataclass
class DaySamples:
    """One day's impressions in time order with their strict-past context."""

    frame: pd.DataFrame        # event_id, user_id, item_id, click, conversion (float, NaN=unknown), [oracle_*]
    history: np.ndarray        # [n, seq_len] item ids, -1 = padding, newest last
    counts: dict[str, np.ndarray]  # "<counter>_imps" / "<counter>_clicks" -> [n] float64

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, idx: np.ndarray) -> DaySamples:
        return DaySamples(self.frame.iloc[idx].reset_index(drop=True), self.history[idx],
                          {k: v[idx] for k, v in self.counts.items()})


def _strict_prior(keys: np.ndarray, ts: np.ndarray, click: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: impressions and clicks of the same key earlier in the day with ts strictly smaller."""
    frame = pd.DataFrame({"k": keys, "t": ts, "one": 1.0, "c": click.astype(float)})
    frame = frame.sort_values(["k", "t"], kind="stable")
    cum = frame.groupby("k", sort=False)[["one", "c"]].cumsum() - frame[["one", "c"]].to_numpy()
    # rows sharing (key, ts) all see only what came before the first of them
    cum = cum.groupby([frame["k"].to_numpy(), frame["t"].to_numpy()], sort=False).transform("min")
    cum = cum.reindex(range(len(keys)))
    return cum["one"].to_numpy(), cum["c"].to_numpy()


class SampleBuilder:
    """Streams day partitions into :class:`DaySamples`, carrying history and counters across days."""

    def __init__(self, items: pd.DataFrame, seq_len: int,
                 clusters: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
        """``clusters``: kind (``CLUSTER_KINDS``) -> (item ids, group per item, -1 = none) for the
        user x group counters: a new item's group is known from content, so the user's past
        impressions and clicks on its group inform its first impressions. None: no such counters."""
        self.seq_len = seq_len
        self._clusters: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._groups: dict[str, int] = {}  # key stride per kind: group values are 0..stride-1
        for kind, (ids, codes) in (clusters or {}).items():
            if kind not in CLUSTER_KINDS:
                raise ValueError(f"unknown cluster kind {kind!r}; expected one of {CLUSTER_KINDS}")
            ids, codes = np.asarray(ids, np.int64), np.asarray(codes, np.int64)
            order = np.argsort(ids)
            self._clusters[kind] = (ids[order], codes[order])
            self._groups[kind] = int(codes.max(initial=0)) + 2
        self.cat_vocab = np.array(sorted(items["category"].dropna().astype(str).unique()), dtype=object)
        self._item_ids = items["item_id"].to_numpy(np.int64)
        order = np.argsort(self._item_ids)
        self._item_ids = self._item_ids[order]
        self._item_cat = category_codes(items["category"], self.cat_vocab)[order]
        self._clicks = pd.DataFrame({"user_id": np.zeros(0, np.int64), "item_id": np.zeros(0, np.int64),
                                     "t": np.zeros(0, np.int64)})
        names = [*COUNTERS, *(f"{p}{kind}" for kind in self._clusters for p in ("u", ""))]
        self._state = {name: (pd.Series(dtype=float), pd.Series(dtype=float)) for name in names}

    def item_categories(self, item_ids: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(self._item_ids, item_ids), 0, max(len(self._item_ids) - 1, 0))
        found = self._item_ids[pos] == item_ids if len(self._item_ids) else np.zeros(len(item_ids), bool)
        return np.where(found, self._item_cat[pos], 0)

    def item_clusters(self, item_ids: np.ndarray, kind: str = "sid") -> np.ndarray:
        """Group + 1 per item; 0 = unknown item or no group (one shared bucket)."""
        ids, codes = self._clusters[kind]
        pos = np.clip(np.searchsorted(ids, item_ids), 0, max(len(ids) - 1, 0))
        found = ids[pos] == item_ids if len(ids) else np.zeros(len(item_ids), bool)
        return np.where(found & (codes[pos] >= 0), codes[pos] + 1, 0)

    def step(self, events: pd.DataFrame, emit: bool = True) -> DaySamples | None:
        """Consume one day (any order); return its samples in time order, then add it to the state."""
        events = events.sort_values(["ts", "event_id"], kind="stable").reset_index(drop=True)
        user = events["user_id"].to_numpy(np.int64)
        item = events["item_id"].to_numpy(np.int64)
        click = events["click"].to_numpy().astype(np.int64)
        t = ts_ns(events["ts"])
        cat = self.item_categories(item)
        keys = {
            "user": user,
            "ucat": user * np.int64(len(self.cat_vocab) + 1) + cat,
            "cat": cat,
            "item": item,
            "glob": np.zeros(len(events), np.int64),
        }
        for kind in self._clusters:
            cluster = self.item_clusters(item, kind)
            keys[f"u{kind}"] = user * np.int64(self._groups[kind]) + cluster
            keys[kind] = cluster
        day_clicks = events.loc[click == 1]
        clicks = pd.concat([self._clicks, pd.DataFrame({
            "user_id": day_clicks["user_id"].to_numpy(np.int64),
            "item_id": day_clicks["item_id"].to_numpy(np.int64),
            "t": t[click == 1]})], ignore_index=True).sort_values(["user_id", "t"], kind="stable")
        result = None
        if emit:
            counts: dict[str, np.ndarray] = {}
            for name, key in keys.items():
                day_imps, day_clicks_before = _strict_prior(key, t, click)
                prior_imps, prior_clicks = self._state[name]
                counts[f"{name}_imps"] = day_imps + prior_imps.reindex(key).fillna(0.0).to_numpy()
                counts[f"{name}_clicks"] = day_clicks_before + prior_clicks.reindex(key).fillna(0.0).to_numpy()
            frame = pd.DataFrame({
                "event_id": events["event_id"].to_numpy(np.int64),
                "user_id": user,
                "item_id": item,
                "click": click.astype(np.float32),
                "conversion": pd.to_numeric(events["conversion"], errors="coerce").astype(float).to_numpy(),
                "category": cat,
                "ts": events["ts"].to_numpy(),
            })
            for col in ("oracle_p_click", "oracle_p_conversion"):
                if col in events:
                    frame[col] = events[col].to_numpy()
            result = DaySamples(frame, self._sequences(clicks, user, t), counts)
        self._update(keys, click, clicks)
        return result

    def _sequences(self, clicks: pd.DataFrame, user: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Last seq_len clicks per impression, strictly before its ts (vectorised merge of clicks and impressions).

        ``clicks``: carried + today's clicks sorted by (user_id, t).
        """
        n_imp, n_click = len(user), len(clicks)
        cu = clicks["user_id"].to_numpy(np.int64)
        u = np.concatenate([user, cu])
        tt = np.concatenate([t, clicks["t"].to_numpy(np.int64)])
        flag = np.concatenate([np.zeros(n_imp, np.int8), np.ones(n_click, np.int8)])  # impression before click at equal ts
        order = np.lexsort((flag, tt, u))
        is_click = flag[order].astype(np.int64)
        before = np.cumsum(is_click) - is_click
        end = np.empty(n_imp, np.int64)
        imp_pos = order < n_imp
        end[order[imp_pos]] = before[imp_pos]
        start = np.searchsorted(cu, user, side="left")
        idx = end[:, None] - self.seq_len + np.arange(self.seq_len)[None, :]
        valid = idx >= start[:, None]
        citems = clicks["item_id"].to_numpy(np.int64)
        if n_click == 0:
            return np.full((n_imp, self.seq_len), -1, np.int64)
        return np.where(valid, citems[np.clip(idx, 0, n_click - 1)], -1)

    def _update(self, keys: dict, click: np.ndarray, clicks: pd.DataFrame) -> None:
        for name, key in keys.items():
            imps, n_clicks = self._state[name]
            day = pd.DataFrame({"k": key, "one": 1.0, "c": click.astype(float)}).groupby("k")[["one", "c"]].sum()
            self._state[name] = (imps.add(day["one"], fill_value=0.0), n_clicks.add(day["c"], fill_value=0.0))
        self._clicks = clicks.groupby("user_id", sort=False).tail(self.seq_len).reset_index(drop=True)


def smoothed_rates(counts: dict[str, np.ndarray], prior_strength: float) -> dict[str, np.ndarray]:
    """Hierarchically smoothed click rates from the strict-past counters.

    global -> category -> user x category, and global -> user; the heuristic blends the user's
    propensity with the category's attractiveness as the prior of the user's category rate.
    """
    k = prior_strength
    g_imps, g_clicks = counts["glob_imps"], counts["glob_clicks"]
    glob = np.where(g_imps > 0, (g_clicks + 1.0) / (g_imps + 2.0), 0.5)
    cat = (counts["cat_clicks"] + k * glob) / (counts["cat_imps"] + k)
    user = (counts["user_clicks"] + k * glob) / (counts["user_imps"] + k)
    base = np.clip(user * cat / np.maximum(glob, 1e-6), 1e-4, 1 - 1e-4)
    ucat = (counts["ucat_clicks"] + k * base) / (counts["ucat_imps"] + k)
    item = (counts["item_clicks"] + k * cat) / (counts["item_imps"] + k)
    rates = {"glob": glob, "cat": cat, "user": user, "ucat": ucat, "item": item, "heuristic": ucat}
    for kind in CLUSTER_KINDS:
        if f"{kind}_imps" in counts:
            group = (counts[f"{kind}_clicks"] + k * glob) / (counts[f"{kind}_imps"] + k)
            group_base = np.clip(user * group / np.maximum(glob, 1e-6), 1e-4, 1 - 1e-4)
            rates[kind] = group
            rates[f"u{kind}"] = (counts[f"u{kind}_clicks"] + k * group_base) / (counts[f"u{kind}_imps"] + k)
    return rates


def dense_features(samples: DaySamples, prior_strength: float) -> np.ndarray:
    """[n, len(DENSE_FEATURES)] float32: log counts and smoothed rates (all from the strict past)."""
    c = samples.counts
    r = smoothed_rates(c, prior_strength)
    h = np.clip(r["heuristic"], 1e-4, 1 - 1e-4)
    fill = (samples.history >= 0).mean(axis=1) if samples.history.shape[1] else np.zeros(len(samples))
    cols = [np.log1p(c["user_imps"]), r["user"], np.log1p(c["ucat_imps"]), r["ucat"], r["cat"],
            np.log1p(c["item_imps"]), r["item"], fill, np.log(h / (1 - h))]
    for kind in CLUSTER_KINDS:
        if f"u{kind}" in r:
            cols += [np.log1p(c[f"u{kind}_imps"]), r[f"u{kind}"], r[kind]]
        else:
            cols += [np.zeros(len(samples))] * 3
    return np.nan_to_num(np.stack(cols, axis=1).astype(np.float32))


# ---- item tables ------------------------------------------------------------------------

def sid_columns(sids: pd.DataFrame) -> list[str]:
    cols = sorted((c for c in sids.columns if c.startswith("c") and c[1:].isdigit()), key=lambda c: int(c[1:]))
    if not cols:
        raise ValueError("SID table has no c1..cL columns")
    return cols


class ItemFeatures:
    """Frozen per-item inputs of the ranker. Row 0 = unknown item (zero content, no code, category 0)."""

    def __init__(self, item_ids: np.ndarray, category: np.ndarray, content: np.ndarray | None = None,
                 sid: np.ndarray | None = None):
        order = np.argsort(item_ids)
        self.item_ids = np.asarray(item_ids, np.int64)[order]
        self.category = np.concatenate([[0], np.asarray(category, np.int64)[order]])
        self.content = None if content is None else np.concatenate(
            [np.zeros((1, content.shape[1]), np.float32), content[order].astype(np.float32)])
        self.sid = None if sid is None else np.concatenate([np.full((1, sid.shape[1]), -1, np.int64),
                                                            sid[order].astype(np.int64)])
        self.clusters: dict[str, np.ndarray] = {}  # kind -> [N] group per item (-1 = none); see set_clusters

    @classmethod
    def build(cls, items: pd.DataFrame, cat_vocab: np.ndarray, vectors: pd.DataFrame | None,
              sids: pd.DataFrame | None) -> ItemFeatures:
        """Align optional vector / SID tables to the catalog; items absent from a table get no content / no code."""
        ids = items["item_id"].to_numpy(np.int64)
        content = sid = None
        if vectors is not None:
            vid, matrix = vectors_array(vectors)
            content = np.zeros((len(ids), matrix.shape[1]), np.float32)
            pos = pd.Index(vid).get_indexer(ids)
            content[pos >= 0] = matrix[pos[pos >= 0]]
        if sids is not None:
            cols = sid_columns(sids)
            sid = np.full((len(ids), len(cols)), -1, np.int64)
            pos = pd.Index(sids["item_id"].to_numpy(np.int64)).get_indexer(ids)
            sid[pos >= 0] = sids[cols].to_numpy(np.int64)[pos[pos >= 0]]
        return cls(ids, category_codes(items["category"], cat_vocab), content, sid)

    def set_clusters(self, kind: str, labels: np.ndarray) -> None:
        """Cluster per item for counter grouping ``kind`` ("cl", "tcl"), in the catalog order of
        ``item_ids``; -1 = no content."""
        if kind not in CLUSTER_KINDS or kind == "sid":
            raise ValueError(f"unknown content cluster kind {kind!r}")
        if len(labels) != len(self.item_ids):
            raise ValueError(f"{len(labels)} cluster labels for {len(self.item_ids)} items")
        self.clusters[kind] = np.asarray(labels, np.int64)

    def counter_clusters(self, sid: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Groupings for :class:`SampleBuilder`'s user x group counters: ``sid`` = level-1 SID code
        (when the table has SIDs), plus every content clustering set with :meth:`set_clusters`."""
        groups = {}
        if sid and self.sid is not None:
            groups["sid"] = (self.item_ids, self.sid[1:, 0])
        for kind, labels in self.clusters.items():
            groups[kind] = (self.item_ids, labels)
        return groups

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Item IDs (any shape, -1 = padding) -> table rows; unknown and padding -> 0."""
        flat = np.asarray(item_ids, np.int64).ravel()
        if len(self.item_ids) == 0:
            return np.zeros(np.shape(item_ids), np.int64)
        pos = np.clip(np.searchsorted(self.item_ids, flat), 0, len(self.item_ids) - 1)
        rows = np.where(self.item_ids[pos] == flat, pos + 1, 0)
        return rows.reshape(np.shape(item_ids))


class IdVocab:
    """Behavior-ID rows: 0 = padding, 1 = out-of-vocabulary (items unseen at training time), 2.. = known."""

    PAD, OOV = 0, 1

    def __init__(self, item_ids: np.ndarray):
        self.item_ids = np.unique(np.asarray(item_ids, np.int64))

    def __len__(self) -> int:
        return len(self.item_ids) + 2

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        flat = np.asarray(item_ids, np.int64).ravel()
        if len(self.item_ids) == 0:
            rows = np.full(len(flat), self.OOV)
        else:
            pos = np.clip(np.searchsorted(self.item_ids, flat), 0, len(self.item_ids) - 1)
            rows = np.where(self.item_ids[pos] == flat, pos + 2, self.OOV)
        rows = np.where(flat < 0, self.PAD, rows)
        return rows.reshape(np.shape(item_ids)).astype(np.int64)


def encode_rows(samples: DaySamples, features: ItemFeatures, vocab: IdVocab, prior_strength: float) -> dict:
    """Per-impression arrays of a day: IDs, labels, dense features, and each item's row in the frozen
    feature tables (``cand_row``, ``hist_row``) instead of the table values. The values are gathered
    per batch (:func:`with_item_features`): a day's history content would be rows x seq_len x the
    vector width (30 KB an impression with MiniLM vectors), a batch's is bounded by the batch size."""
    candidates = samples.frame["item_id"].to_numpy(np.int64)
    return {
        "cand_id": vocab.rows(candidates),
        "hist_id": vocab.rows(samples.history),
        "hist_mask": samples.history >= 0,
        "cand_row": features.rows(candidates),
        "hist_row": features.rows(samples.history),
        "dense": dense_features(samples, prior_strength),
        "click": samples.frame["click"].to_numpy(np.float32),
        "conversion": np.nan_to_num(samples.frame["conversion"].to_numpy(np.float32), nan=-1.0),
    }


def with_item_features(rows: dict, features: ItemFeatures) -> dict:
    """:func:`encode_rows` arrays (or a batch of their rows) with the item features looked up: the
    arrays the ranker consumes (see ``saviorrec.models.ranker.Ranker.forward``)."""
    cand, hist = rows["cand_row"], rows["hist_row"]
    batch = {k: v for k, v in rows.items() if k not in ("cand_row", "hist_row")}
    batch["cand_cat"] = features.category[cand]
    batch["hist_cat"] = features.category[hist]
    if features.content is not None:
        batch["cand_content"] = features.content[cand]
        batch["hist_content"] = features.content[hist]
    if features.sid is not None:
        batch["cand_sid"] = features.sid[cand]
        batch["hist_sid"] = features.sid[hist]
    return batch


def encode_batch(samples: DaySamples, features: ItemFeatures, vocab: IdVocab, prior_strength: float) -> dict:
    """Numpy arrays the ranker consumes (see ``saviorrec.models.ranker.Ranker.forward``), for a batch
    of samples; a whole day goes through :func:`encode_rows` and :func:`with_item_features` per batch."""
    return with_item_features(encode_rows(samples, features, vocab, prior_strength), features)


def to_tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """:func:`encode_batch` arrays (or rows of them) as tensors; ``from_numpy`` needs C-contiguous, writeable arrays."""
    return {k: torch.from_numpy(np.require(v, requirements=["C", "W"])) for k, v in batch.items()}
