"""Why the MBA block does not lift new-item AUC in a rolling backtest: cheap measurements, no retraining.

    .venv/bin/python bench/diagnose_mba.py /tmp/sr/bt/drift /tmp/sr/bt/default --out /tmp/sr/diag_mba.json
    .venv/bin/python bench/diagnose_mba.py /tmp/sr/bt/drift --no-rescore     # skip the MBA-off rescoring (faster)

Reads a finished ``saviorrec backtest`` root (read-only; it needs the variants ``saviorrec`` and
``saviorrec_no_mba``, and uses ``saviorrec_no_bidir`` where present). For each step's evaluated day:

1. **residual size**: ||FusionMLP(A[codes])|| / ||z|| (and the same through the ranker's modal
   projection) for new items (the ``new`` bucket: first seen on the day, no training impression)
   vs items with training impressions shown that day; per SID level, the share of new items whose
   code row was trained (the code is held by an item with training impressions) and whose
   level-1..k *prefix* is shared with such an item;
2. **new-item AUC by slice**: saviorrec vs saviorrec_no_mba (and no_bidir), for trend vs base items
   (drifting world) and for new items whose level-k prefix is shared vs not;
3. **what the block changes at serving**: the saviorrec ranker rescored with its MBA residual
   switched off (tables zeroed: the block is then exactly the identity), new and overall AUC; the
   Spearman correlation of saviorrec and no_mba scores on new-item impressions; whether z~ puts a
   new item nearer old items of its true community / topic than z does (nearest-neighbour agreement);
4. **what the oracle rewards** on new-item impressions: the variance of the click logit's parts
   (user bias, item main effect = quality + price, topic affinity, community match;
   ``saviorrec.data.synthetic.engagement``), and how much of the item main effect the level-1 code explains.

Sanity: the per-step overall new AUC recomputed here from each variant's predictions must equal
``new_auc`` in ``state/step-NNN.json`` to 1e-6 (the script exits 1 otherwise), and the rescored
saviorrec predictions (MBA on) must reproduce ``predictions.parquet``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from saviorrec.backtest.plan import variant_overrides
from saviorrec.config import load_params
from saviorrec.data.io import iter_event_days, read_items, read_parquet
from saviorrec.data.samples import DENSE_FEATURES, dense_features
from saviorrec.data.synthetic.drift import Timeline
from saviorrec.data.synthetic.engagement import GroundTruth, community_match, topic_affinity
from saviorrec.data.synthetic.world import build_world
from saviorrec.models.scoring import EvaluationWindow, Scorer, read_window, replay_days
from saviorrec.workspace import Workspace

MAIN, NO_MBA, NO_BIDIR = "saviorrec", "saviorrec_no_mba", "saviorrec_no_bidir"
TOLERANCE = 1e-6
MIN_POSITIVES = 5  # a slice AUC with fewer clicks is noise: reported as null
# online counters every variant with SIDs / content sees as dense inputs: per-cluster CTR and the
# user x cluster CTR (level-1 SID code, content cluster), updated impression by impression
COUNTERS = ("sid_ctr", "usid_ctr", "cl_ctr", "ucl_ctr", "heuristic_logit")


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels, float)
    if labels.sum() < MIN_POSITIVES or labels.sum() == len(labels):
        return None
    return float(roc_auc_score(labels, scores))


def exact_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """As the evaluation computes it (min_positives 1): for the sanity check against the state rows."""
    labels = np.asarray(labels, float)
    if labels.sum() == 0 or labels.sum() == len(labels):
        return None
    return float(roc_auc_score(labels, scores))


def _same(a: float | None, b: float | None) -> bool:
    return a is None and b is None or (a is not None and b is not None and abs(a - b) <= TOLERANCE)


def read_state(root: Path) -> list[dict]:
    """One dict per step: key, eval_start, age (steps since the encoder refresh), rows per variant."""
    steps, age = [], 0
    for path in sorted((root / "state").glob("step-*.json")):
        rows = json.loads(path.read_text())["rows"]
        first = rows[0]
        age = 0 if first["encoder_refreshed"] else age + 1
        steps.append({"key": first["key"], "step": first["step"], "eval_start": dt.date.fromisoformat(first["eval_start"]),
                      "eval_end": dt.date.fromisoformat(first["eval_end"]), "age": age,
                      "rows": {r["variant"]: r for r in rows}})
    return steps


# ---- the world: trend membership and the oracle's parts ----------------------------------------------

class WorldTruth:
    def __init__(self, root: Path):
        params = load_params(root / "world" / "params.yaml")
        self.cfg = params.synthetic
        self.world = build_world(self.cfg, params.seed)
        self.timeline = Timeline(self.world)
        items = self.world.items
        self.trend = (items.topic >= self.cfg.n_topics) | (items.community >= self.cfg.n_communities)
        self.drifting = bool(self.world.trends)

    def index(self, item_id: np.ndarray) -> np.ndarray:
        return np.asarray(item_id, np.int64) - 1  # catalog item_id = world index + 1 (catalog.build_items)

    def logit_parts(self, events: pd.DataFrame, day: dt.date) -> dict[str, np.ndarray]:
        """The click logit's terms for each impression (engagement_probabilities without the noise)."""
        today = self.timeline.world_on((day - self.cfg.start_date).days)
        truth = GroundTruth.from_config(self.cfg)
        u = events["user_id"].to_numpy(np.int64) - 1
        i = self.index(events["item_id"].to_numpy())
        items = self.world.items
        return {"user_bias": today.users.bias[u],
                "item_main": items.quality[i] + np.asarray(truth.price_click)[items.price[i]],
                "topic": truth.topic_weight * topic_affinity(today, u, i),
                "community": truth.community_weight * community_match(today, u, i)}


def oracle_decomposition(truth: WorldTruth, new_events: pd.DataFrame, day: dt.date, c1: pd.Series,
                         trained_ids: np.ndarray) -> dict:
    parts = truth.logit_parts(new_events, day)
    total = sum(parts.values())
    observed = np.log(new_events["oracle_p_click"] / (1 - new_events["oracle_p_click"])).to_numpy()
    var = float(np.var(total))
    out = {f"var_share_{k}": float(np.var(v) / var) for k, v in parts.items()}
    out["corr_with_oracle_logit"] = float(np.corrcoef(total, observed)[0, 1])  # < 1 only by the impression noise
    # An item-level (user-independent) effect is all a per-code residual can add by itself: R^2 of
    # each new item's main effect predicted by the mean over trained items with its level-1 code.
    items = truth.world.items
    truth_main = items.quality + np.asarray(GroundTruth.from_config(truth.cfg).price_click)[items.price]
    old = pd.Series(truth_main[truth.index(trained_ids)], index=trained_ids)
    code_mean = old.groupby(c1.reindex(old.index)).mean()
    new_ids = np.unique(new_events["item_id"].to_numpy())
    main_new = truth_main[truth.index(new_ids)]
    guess = c1.reindex(new_ids).map(code_mean).fillna(old.mean()).to_numpy()
    out["item_main_r2_from_c1_mean"] = float(1 - np.sum((main_new - guess) ** 2) / np.sum((main_new - old.mean()) ** 2))
    out["n_new_items"] = int(len(new_ids))
    return out


# ---- the models ------------------------------------------------------------------------------------

def without_mba(scorer: Scorer) -> Scorer:
    """The same ranker with its MBA tables zeroed: z~ = z + Fusion(0) = z exactly (no biases, GELU(0)=0)."""
    module = copy.deepcopy(scorer.module)
    with torch.no_grad():
        for table in module.model.mba.tables:
            table.weight.zero_()
    return Scorer(module, scorer.meta, scorer.vocab, scorer.features)


def rescore(window: EvaluationWindow, scorers: dict[str, Scorer], items: pd.DataFrame) -> pd.DataFrame:
    """p_ctr of every scorer on the window (one replay, built as EvaluationWindow.score builds it)."""
    ids = window.events["event_id"]

    def days():
        for _, day in iter_event_days(window.events_root, end=window.train_end):
            yield day.loc[~day["event_id"].isin(ids)].assign(_score=False)
        for _, day in window.events.groupby("ds", sort=True):
            yield day.assign(_score=True)

    first = next(iter(scorers.values()))
    frames = []
    for samples in replay_days(days(), items, first.meta["seq_len"], clusters=first.clusters):
        frame = {"event_id": samples.frame["event_id"].to_numpy()}
        dense = dense_features(samples, first.meta["prior_strength"])
        frame |= {f"dense_{name}": dense[:, DENSE_FEATURES.index(name)] for name in COUNTERS}
        for name, scorer in scorers.items():
            frame[name] = scorer.predict(samples)[0].astype(np.float64)
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


@torch.no_grad()
def residuals(scorer: Scorer, item_ids: np.ndarray) -> pd.DataFrame:
    """Per item: ||r|| / ||z|| with r = Fusion(A[codes]), in z space and through the modal projection."""
    model = scorer.module.model
    rows = scorer.features.rows(item_ids)
    z = torch.from_numpy(scorer.features.content[rows])
    sid = torch.from_numpy(scorer.features.sid[rows])
    r = model.mba(z, sid) - z
    w = model.modal_proj.weight
    return pd.DataFrame({"item_id": item_ids, "ratio_z": (r.norm(dim=-1) / z.norm(dim=-1).clamp(min=1e-12)).numpy(),
                         "ratio_modal": ((r @ w.T).norm(dim=-1) / (z @ w.T).norm(dim=-1).clamp(min=1e-12)).numpy()})


@torch.no_grad()
def neighbour_agreement(scorer: Scorer, truth: WorldTruth, new_ids: np.ndarray, old_ids: np.ndarray) -> dict:
    """Share of new items whose nearest old item (cosine) has the same community / topic, in z and in z~."""
    model = scorer.module.model
    out = {}
    world = truth.world.items
    new_i, old_i = truth.index(new_ids), truth.index(old_ids)
    for name, transform in (("z", lambda z, s: z), ("z_mba", lambda z, s: model.mba(z, s))):
        vec = {}
        for key, ids in (("new", new_ids), ("old", old_ids)):
            rows = scorer.features.rows(ids)
            v = transform(torch.from_numpy(scorer.features.content[rows]), torch.from_numpy(scorer.features.sid[rows]))
            vec[key] = torch.nn.functional.normalize(v, dim=-1)
        nearest = (vec["new"] @ vec["old"].T).argmax(dim=1).numpy()
        groups = {"": np.ones(len(new_i), bool)}
        if truth.drifting:
            groups |= {"trend_": truth.trend[new_i], "base_": ~truth.trend[new_i]}
        for trait in ("community", "topic"):
            values = getattr(world, trait)
            same = values[new_i] == values[old_i][nearest]
            for prefix, mask in groups.items():
                out[f"nn_{prefix}{trait}_{name}"] = float(same[mask].mean()) if mask.any() else None
    return out


def _r2(target: np.ndarray, labels: np.ndarray) -> float:
    """Share of the variance of ``target`` ([N, d]) explained by the group means of ``labels``."""
    frame = pd.DataFrame(target)
    fitted = frame.groupby(labels).transform("mean").to_numpy()
    return float(((fitted - target.mean(0)) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())


@torch.no_grad()
def residual_content(scorer: Scorer, truth: WorldTruth, ids: np.ndarray) -> dict:
    """What the learned residual (modal space) encodes over trained items: R^2 by community, topic, c1
    code, beside the same for z (modal space): does MBA add community knowledge z lacks?"""
    model = scorer.module.model
    rows = scorer.features.rows(ids)
    z = torch.from_numpy(scorer.features.content[rows])
    sid = torch.from_numpy(scorer.features.sid[rows])
    w = model.modal_proj.weight
    r, zm = ((model.mba(z, sid) - z) @ w.T).numpy(), (z @ w.T).numpy()
    i = truth.index(ids)
    labels = {"community": truth.world.items.community[i], "topic": truth.world.items.topic[i], "c1": sid[:, 0].numpy()}
    return {f"r2_{what}_{name}": _r2(x, lab) for what, x in (("residual", r), ("z", zm)) for name, lab in labels.items()}


# ---- one step --------------------------------------------------------------------------------------

def code_sharing(sids: pd.DataFrame, new_ids: np.ndarray, trained_ids: set[int], levels: int) -> pd.DataFrame:
    """Per new item and level k: code row trained (level-k code held by a trained item), prefix c1..ck shared."""
    cols = [f"c{k}" for k in range(1, levels + 1)]
    table = sids.set_index("item_id")[cols]
    old = table[table.index.isin(trained_ids)]
    new = table.reindex(new_ids)
    out = pd.DataFrame(index=pd.Index(new_ids, name="item_id"))
    for k, col in enumerate(cols, start=1):
        out[f"row_trained_l{k}"] = new[col].isin(set(old[col])).to_numpy()
        prefixes = set(map(tuple, old[cols[:k]].to_numpy().tolist()))
        out[f"prefix_shared_l{k}"] = [tuple(p) in prefixes for p in new[cols[:k]].to_numpy().tolist()]
    return out


def diagnose_step(root: Path, step: dict, truth: WorldTruth, variants: list[str], rescore_mba: bool) -> dict:
    folder = root / "steps" / step["key"]
    ws = Workspace.open(folder, overrides=variant_overrides(MAIN))
    items = read_items(ws.path("items"))
    scorer = Scorer.load(ws, items)
    result: dict = {"key": step["key"], "age": step["age"]}

    window = read_window(ws)  # the evaluated day's events and the training impressions per item
    train_imps = window.train_impressions
    if rescore_mba:
        scores = rescore(window, {MAIN: scorer, "mba_off": without_mba(scorer)}, items)
    else:
        scores = window.events[["event_id"]]
    df = window.events.merge(scores, on="event_id", how="left", validate="one_to_one", suffixes=("", "_rescored"))
    for v in variants:
        preds = read_parquet(folder / "artifacts" / "variants" / v / "predictions.parquet", columns=["event_id", "p_ctr"])
        df = df.merge(preds.rename(columns={"p_ctr": f"p_{v}"}), on="event_id", how="left", validate="one_to_one")
    if rescore_mba:
        result["rescore_max_abs_diff"] = float(np.abs(df[MAIN] - df[f"p_{MAIN}"]).max())

    first_seen = pd.to_datetime(df["item_id"].map(items.set_index("item_id")["first_seen"]))
    imps = df["item_id"].map(train_imps).fillna(0).to_numpy()
    new = (((first_seen >= pd.Timestamp(step["eval_start"])) | first_seen.isna()).to_numpy()) & (imps == 0)
    click = df["click"].to_numpy(float)

    # sanity: the new-bucket AUC per variant as the backtest recorded it
    result["new_auc"] = {v: exact_auc(click[new], df.loc[new, f"p_{v}"]) for v in variants}
    result["state_new_auc"] = {v: step["rows"][v]["new_auc"] for v in variants}
    result["new_n"] = int(new.sum())
    result["new_auc_matches_state"] = all(step["rows"][v]["new_n"] == result["new_n"] and _same(result["new_auc"][v], step["rows"][v]["new_auc"])
                                          for v in variants)

    new_df = df[new]
    new_ids = np.unique(new_df["item_id"].to_numpy())
    trained_ids = set(train_imps.index[train_imps > 0].tolist())
    known_shown = np.unique(df.loc[~new & df["item_id"].isin(trained_ids), "item_id"].to_numpy())

    # 1. residual size and code sharing
    res = residuals(scorer, np.concatenate([new_ids, known_shown]))
    is_new = res["item_id"].isin(new_ids)
    result["residual"] = {f"{g}_{m}": float(res.loc[mask, f"ratio_{m}"].median())
                          for g, mask in (("new", is_new), ("known", ~is_new)) for m in ("z", "modal")}
    sids = read_parquet(ws.path("sids"))
    levels = scorer.module.model.cfg.levels
    sharing = code_sharing(sids, new_ids, trained_ids, levels)
    result["codes"] = {c: float(sharing[c].mean()) for c in sharing.columns}

    # 2. new-item AUC by slice
    slices = {"all": np.ones(len(new_df), bool)}
    if truth.drifting:
        trend = truth.trend[truth.index(new_df["item_id"].to_numpy())]
        slices |= {"trend": trend, "base": ~trend}
    for k in range(1, min(levels, 3) + 1):
        shared = new_df["item_id"].map(sharing[f"prefix_shared_l{k}"]).to_numpy(bool)
        slices |= {f"prefix{k}_shared": shared, f"prefix{k}_alone": ~shared}
    scored = [f"p_{v}" for v in variants] + ([MAIN, "mba_off"] if rescore_mba else [])
    y = new_df["click"].to_numpy(float)
    result["slices"] = {}
    for name, mask in slices.items():
        entry = {"n": int(mask.sum()), "clicks": int(y[mask].sum())}
        # p_saviorrec is keyed "saviorrec"; the rescored MBA-on column (a copy of it) is left out
        entry |= {col.removeprefix("p_"): auc(y[mask], new_df[col].to_numpy()[mask]) for col in scored if col != MAIN}
        result["slices"][name] = entry

    # 3. what MBA changes at serving
    if rescore_mba:
        result["mba_off"] = {"new_auc": exact_auc(y, new_df["mba_off"]), "auc": exact_auc(click, df["mba_off"]),
                             "auc_on": exact_auc(click, df[MAIN])}
    result["spearman_new_sav_vs_no_mba"] = float(spearmanr(new_df[f"p_{MAIN}"], new_df[f"p_{NO_MBA}"]).statistic)
    old = df[~new]
    result["spearman_old_sav_vs_no_mba"] = float(spearmanr(old[f"p_{MAIN}"], old[f"p_{NO_MBA}"]).statistic)
    result["neighbours"] = neighbour_agreement(scorer, truth, new_ids, np.array(sorted(trained_ids), np.int64))
    result["residual_content"] = residual_content(scorer, truth, np.array(sorted(trained_ids), np.int64))

    # 4. the oracle's parts on new-item impressions
    result["oracle"] = oracle_decomposition(truth, new_df, step["eval_start"], sids.set_index("item_id")["c1"],
                                            np.array(sorted(trained_ids), np.int64))
    if rescore_mba:
        result["counter_auc_new"] = {name: auc(y, new_df[f"dense_{name}"].to_numpy()) for name in COUNTERS}
        if truth.drifting:
            result["counter_auc_trend"] = {name: auc(y[slices["trend"]], new_df[f"dense_{name}"].to_numpy()[slices["trend"]])
                                           for name in COUNTERS}
    return result


# ---- report ----------------------------------------------------------------------------------------

def _pts(a, b) -> float | None:
    return None if a is None or b is None else 100.0 * (a - b)


def _f(x, fmt="{:+.2f}") -> str:
    return "  -  " if x is None or (isinstance(x, float) and np.isnan(x)) else fmt.format(x)


def step_table(results: list[dict], drifting: bool, rescored: bool) -> pd.DataFrame:
    rows = []
    for r in results:
        s, na = r["slices"], r["new_auc"]
        row = {"day": r["key"][5:], "age": r["age"], "new_n": r["new_n"], "sav": na[MAIN], "no_mba": na[NO_MBA],
               "d_mba": _pts(na[MAIN], na[NO_MBA])}
        if NO_BIDIR in na:
            row["d_bidir"] = _pts(na[MAIN], na[NO_BIDIR])
        if rescored:
            row["d_off"] = _pts(na[MAIN], r["mba_off"]["new_auc"])  # MBA's own serving effect in the same ranker
        if drifting:
            row["d_trend"] = _pts(s["trend"][MAIN], s["trend"][NO_MBA])
            row["d_base"] = _pts(s["base"][MAIN], s["base"][NO_MBA])
        row |= {"r_new": r["residual"]["new_z"], "r_known": r["residual"]["known_z"],
                "p2_shared": r["codes"]["prefix_shared_l2"], "l2_row": r["codes"]["row_trained_l2"],
                "nnC_z": r["neighbours"]["nn_community_z"], "nnC_zm": r["neighbours"]["nn_community_z_mba"],
                "rho_new": r["spearman_new_sav_vs_no_mba"]}
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(results: list[dict], variants: list[str], rescored: bool) -> dict:
    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    out: dict = {"steps": len(results)}
    out["new_auc_mean"] = {v: mean(r["new_auc"][v] for r in results) for v in variants}
    if rescored:
        out["new_auc_mean"]["saviorrec_mba_off_at_serving"] = mean(r["mba_off"]["new_auc"] for r in results)
        out["auc_mean_mba_on_vs_off"] = [mean(r["mba_off"]["auc_on"] for r in results), mean(r["mba_off"]["auc"] for r in results)]
        out["rescore_max_abs_diff"] = max(r["rescore_max_abs_diff"] for r in results)
    names = sorted({k for r in results for k in r["slices"]})
    out["slices"] = {}
    for name in names:
        entries = [r["slices"][name] for r in results if name in r["slices"]]
        cols = [c for c in entries[0] if c not in ("n", "clicks")]
        out["slices"][name] = {"n_mean": mean(e["n"] for e in entries), "clicks_mean": mean(e["clicks"] for e in entries)}
        out["slices"][name] |= {c: mean(e.get(c) for e in entries) for c in cols}
        paired = [(e[MAIN], e[NO_MBA]) for e in entries if e.get(MAIN) is not None and e.get(NO_MBA) is not None]
        out["slices"][name]["d_mba_pts_paired"] = mean(100 * (a - b) for a, b in paired)
        out["slices"][name]["steps_defined"] = len(paired)
    out["residual_median"] = {k: mean(r["residual"][k] for r in results) for k in results[0]["residual"]}
    out["codes"] = {k: mean(r["codes"][k] for r in results) for k in results[0]["codes"]}
    out["neighbours"] = {k: mean(r["neighbours"][k] for r in results) for k in results[0]["neighbours"]}
    out["oracle"] = {k: mean(r["oracle"][k] for r in results) for k in results[0]["oracle"]}
    out["residual_content"] = {k: mean(r["residual_content"][k] for r in results) for k in results[0]["residual_content"]}
    for key in ("counter_auc_new", "counter_auc_trend"):
        if key in results[0]:
            out[key] = {k: mean(r[key][k] for r in results) for k in results[0][key]}
    out["spearman_new_sav_vs_no_mba"] = mean(r["spearman_new_sav_vs_no_mba"] for r in results)
    out["spearman_old_sav_vs_no_mba"] = mean(r["spearman_old_sav_vs_no_mba"] for r in results)
    by_age = {}
    for r in results:
        by_age.setdefault(r["age"], []).append(r)
    out["by_age"] = {str(a): {"d_mba_pts": mean(_pts(r["new_auc"][MAIN], r["new_auc"][NO_MBA]) for r in rs),
                              "residual_new": mean(r["residual"]["new_z"] for r in rs),
                              **({"d_off_pts": mean(_pts(r["new_auc"][MAIN], r["mba_off"]["new_auc"]) for r in rs)} if rescored else {})}
                     for a, rs in sorted(by_age.items())}
    return out


def print_root(root: Path, results: list[dict], summary: dict, drifting: bool, rescored: bool) -> None:
    print(f"\n== {root}  ({summary['steps']} steps{', drifting world' if drifting else ''}) ==")
    table = step_table(results, drifting, rescored)
    fmt = {c: (lambda x: _f(x, "{:.4f}")) for c in ("sav", "no_mba")}
    fmt |= {c: _f for c in table.columns if c.startswith("d_")}
    fmt |= {c: (lambda x: _f(x, "{:.3f}")) for c in ("r_new", "r_known", "p2_shared", "l2_row", "nnC_z", "nnC_zm", "rho_new")}
    print(table.to_string(index=False, formatters=fmt))
    print("columns: d_* = saviorrec minus {no_mba, no_bidir, saviorrec with MBA off at serving} new AUC, points; "
          "d_trend/d_base = saviorrec - no_mba on trend / base new items; r_* = median ||Fusion(A[c])||/||z||; "
          "p2_shared = new items whose (c1,c2) prefix a trained item has; l2_row = whose level-2 code row was trained; "
          "nnC_z / nnC_zm = nearest old item (z / z~) has the new item's community; rho_new = Spearman(sav, no_mba) on new impressions")
    print("slices (mean over steps; d = saviorrec - no_mba in points, paired steps):")
    for name, s in summary["slices"].items():
        aucs = "  ".join(f"{k} {_f(v, '{:.4f}')}" for k, v in s.items()
                         if k not in ("n_mean", "clicks_mean", "d_mba_pts_paired", "steps_defined"))
        print(f"  {name:<15} n {s['n_mean']:7.1f} clicks {s['clicks_mean']:6.1f}  d {_f(s['d_mba_pts_paired'])} "
              f"({s['steps_defined']} steps)  {aucs}")
    print("codes (share of new items):", "  ".join(f"{k} {v:.3f}" for k, v in summary["codes"].items()))
    print("residual (median ratio):", "  ".join(f"{k} {v:.3f}" for k, v in summary["residual_median"].items()))
    print("nearest old item agrees (new items):", "  ".join(f"{k} {_f(v, '{:.3f}')}" for k, v in summary["neighbours"].items()))
    print("R^2 over trained items (modal space):", "  ".join(f"{k} {v:.3f}" for k, v in summary["residual_content"].items()))
    for key in ("counter_auc_new", "counter_auc_trend"):
        if key in summary:
            print(f"{key} (one dense input alone):", "  ".join(f"{k} {_f(v, '{:.4f}')}" for k, v in summary[key].items()))
    print("oracle on new impressions:", "  ".join(f"{k} {_f(v, '{:.3f}')}" for k, v in summary["oracle"].items()))
    print("by encoder age:", "  ".join(f"{a}: " + "/".join(_f(v) for v in d.values()) for a, d in summary["by_age"].items()),
          "(d_mba pts / residual_new" + (" / d_off pts)" if rescored else ")"))
    if rescored:
        print(f"serving MBA off (same ranker): new AUC {summary['new_auc_mean']['saviorrec_mba_off_at_serving']:.4f} vs on "
              f"{summary['new_auc_mean'][MAIN]:.4f}; overall AUC off {summary['auc_mean_mba_on_vs_off'][1]:.4f} vs on "
              f"{summary['auc_mean_mba_on_vs_off'][0]:.4f}; rescore reproduces predictions to {summary['rescore_max_abs_diff']:.1e}")
    print(f"Spearman(saviorrec, no_mba): new impressions {summary['spearman_new_sav_vs_no_mba']:.3f}, "
          f"others {summary['spearman_old_sav_vs_no_mba']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="finished backtest roots (read-only)")
    parser.add_argument("--out", type=Path, default=Path("metrics/diagnose_mba.json"))
    parser.add_argument("--no-rescore", action="store_true", help="skip rescoring saviorrec with MBA off")
    parser.add_argument("--steps", type=int, default=None, help="only the first N steps (a quick look)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report, ok = {}, True
    for root in args.roots:
        steps = read_state(root)[: args.steps]
        available = [v for v in (MAIN, NO_MBA, NO_BIDIR) if v in steps[0]["rows"]]
        if MAIN not in available or NO_MBA not in available:
            print(f"{root}: needs the variants {MAIN} and {NO_MBA}; found {sorted(steps[0]['rows'])}", file=sys.stderr)
            return 2
        truth = WorldTruth(root)
        results = []
        for step in steps:
            result = diagnose_step(root, step, truth, available, rescore_mba=not args.no_rescore)
            results.append(result)
            if not result["new_auc_matches_state"]:
                ok = False
                print(f"MISMATCH {root} {step['key']}: recomputed {result['new_auc']} vs state {result['state_new_auc']}",
                      file=sys.stderr)
            print(f"{root.name} {step['key']} done (new AUC matches state: {result['new_auc_matches_state']})", file=sys.stderr)
        summary = summarize(results, available, not args.no_rescore)
        summary["new_auc_matches_state_all_steps"] = all(r["new_auc_matches_state"] for r in results)
        print_root(root, results, summary, truth.drifting, not args.no_rescore)
        report[str(root)] = {"summary": summary, "steps": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
