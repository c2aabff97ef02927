"""Does the simulated world reward a behavior-aware content encoder? Cheap proxies.

On the items listed on the last ``eval_days`` days (scored on their first day, so no ID
signal exists), compare the AUC of:

- ``oracle``: the true p_click;
- ``user_only``: the user's past CTR (what an ID-only ranker has for a brand-new item);
- ``text``: + item topic, price and the user's past click share on that topic
  (what a generic text embedding exposes: the topic is in the title words);
- ``behavior``: + brand and the user's past click share on the item's community
  (what an encoder trained on co-clicks can learn from brand / image palette);
- ``content_ceiling``: the true click logit without the hidden per-item and per-impression
  noise (perfect knowledge of users, items known from content only).

The proxies infer user tastes from a few dozen clicks, so they sit below the ceiling; the
gap ``behavior - text`` is what a behavior-aware encoder can add over generic text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from saviorrec.data.synthetic.engagement import GroundTruth, community_match, topic_affinity
from saviorrec.data.synthetic.world import World


def community_predictability(world: World) -> dict:
    """Accuracy of guessing an item's community from its topic vs from its brand."""
    items = world.items
    frame = pd.DataFrame({"topic": items.topic, "brand": items.brand, "community": items.community})

    def majority_accuracy(key: str) -> float:
        counts = frame.groupby([key, "community"]).size()
        return float(counts.groupby(level=0).max().sum() / len(frame))

    return {
        "chance": float(frame["community"].value_counts(normalize=True).max()),
        "from_topic": majority_accuracy("topic"),
        "from_brand": majority_accuracy("brand"),
    }


def _leave_one_out_share(user, key, click, history, n_users, n_keys):
    """Per row: log share of the user's history clicks on the row's key, the row's own click left out."""
    counts = np.zeros((n_users, n_keys))
    np.add.at(counts, (user[history], key[history]), click[history])
    own = np.where(history, click, 0.0)
    on_key = counts[user, key] - own
    total = counts.sum(axis=1)[user] - own
    return np.log((on_key + 1.0 / n_keys) / (total + 1.0))


def new_item_auc(world: World, events: pd.DataFrame, eval_days: int = 3) -> dict:
    """AUC of the oracle and of the three content proxies on first-day impressions of new items.

    ``events`` holds every day (``user_id``, ``item_id``, ``ts``, ``click``, ``oracle_p_click``).
    The proxies are fitted on the days before the evaluation window; user features there
    come from the same days with the row itself left out.
    """
    cfg, items = world.cfg, world.items
    day = ((events["ts"].dt.tz_convert(None) - pd.Timestamp(world.start)).dt.days).to_numpy()
    user = events["user_id"].to_numpy() - 1
    item = events["item_id"].to_numpy() - 1
    click = events["click"].to_numpy().astype(float)
    eval_start = cfg.n_days - eval_days
    history = day < eval_start
    topic, community = items.topic[item], items.community[item]
    topic_share = _leave_one_out_share(user, topic, click, history, cfg.n_users, world.n_topics)
    community_share = _leave_one_out_share(user, community, click, history, cfg.n_users, world.n_communities)
    shown = np.bincount(user[history], minlength=cfg.n_users).astype(float)[user] - history
    clicked = np.bincount(user[history], weights=click[history], minlength=cfg.n_users)[user] - np.where(history, click, 0)
    user_ctr = np.log((clicked + 1.0) / (shown + 10.0))
    click = click.astype(int)

    numeric = {
        "user_only": np.stack([user_ctr[user]], axis=1),
        "text": np.stack([user_ctr, topic_share], axis=1),
        "behavior": np.stack([user_ctr, topic_share, community_share], axis=1),
    }
    categorical = {
        "user_only": np.zeros((len(item), 0), dtype=np.int64),
        "text": np.stack([items.topic[item], items.price[item]], axis=1),
        "behavior": np.stack([items.topic[item], items.price[item], items.brand[item]], axis=1),
    }
    fit = history
    test = (day >= eval_start) & (items.first_day[item] == day)
    result = {
        "eval_rows": int(test.sum()),
        "eval_clicks": int(click[test].sum()),
        "oracle": float(roc_auc_score(click[test], events["oracle_p_click"].to_numpy()[test])),
    }
    truth, u, i = GroundTruth.from_config(cfg), user[test], item[test]
    ceiling = (
        world.users.bias[u] + np.asarray(truth.price_click)[items.price[i]]
        + truth.topic_weight * topic_affinity(world, u, i) + truth.community_weight * community_match(world, u, i)
    )
    result["content_ceiling"] = float(roc_auc_score(click[test], ceiling))
    for name in ("user_only", "text", "behavior"):
        parts = [numeric[name]]
        if categorical[name].shape[1]:
            onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(categorical[name][fit])
            parts.append(onehot.transform(categorical[name]))
        features = np.concatenate(parts, axis=1)
        model = LogisticRegression(C=1.0, max_iter=500).fit(features[fit], click[fit])
        result[name] = float(roc_auc_score(click[test], model.predict_proba(features[test])[:, 1]))
    return result
