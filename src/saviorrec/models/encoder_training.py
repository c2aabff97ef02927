"""The train_encoder stage: SaviorEnc (behavior-aware multimodal item encoder) on co-click pairs.

Trains on clicks before train_end, the item catalog and pictures. z = normalize(content + scale *
correction) (``saviorrec.models.encoder``): the pairs of the newest ``encoder.cold_item_fraction``
of the listed items are held out, and the epoch and correction scale kept are the ones that find
those cold items' partners best (``encoder_selection``), so z extrapolates to new items no worse
than plain content does. Writes the plain MiniLM text features, the encoder (model.pt +
config.json), z for every catalog item, the pairs (train, holdout and cold splits in
``paths.pairs``, read by build_codebook) and metrics/encoder.json: pair counts, loss, the chosen
epoch and scale, and hit@k of z beside plain MiniLM on the warm, cold, future and future-new pair
sets (``saviorrec.metrics.retrieval_sets``; the future ones read the evaluation window for this
report only).

A warm start (previous encoder, same architecture) trains warm_start_epochs at warm_start_lr and,
with encoder.anchor_weight > 0, keeps every item's z near the previous encoder's z (stable SIDs).
Lightning keeps ``<encoder>/checkpoints/last.ckpt`` after every epoch: a retried run passes
``ckpt_path="last"`` (or that file) and continues from that epoch; a fresh run clears stale
checkpoints, and a successful run replaces the encoder folder as a whole (checkpoints included).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from saviorrec.config import Params
from saviorrec.data import io
from saviorrec.data.pairs import (
    count_clicks,
    encoder_pair_splits,
    listed_before,
    mine_pairs_from_days,
    write_pairs,
)
from saviorrec.data.vectors import write_vectors
from saviorrec.metrics.retrieval import retrieval_report
from saviorrec.metrics.retrieval_sets import retrieval_sets
from saviorrec.metrics.stage_reports import write_stage_report
from saviorrec.models.checkpoints import prepare_checkpoints, staged_output
from saviorrec.models.encoder import ItemEncoder, compatible, encoder_config
from saviorrec.models.encoder_io import load_item_encoder, read_config, read_weights, save_item_encoder
from saviorrec.models.encoder_module import fit_encoder
from saviorrec.models.encoder_selection import ColdSelection
from saviorrec.models.image import BackboneFeatures
from saviorrec.models.text import text_features
from saviorrec.workspace import StageError, Workspace

log = logging.getLogger("saviorrec.train_encoder")


def _backbone_width(cfg) -> int | None:
    if cfg.image_backbone == "cnn":
        return None
    return int(BackboneFeatures(cfg.image_backbone)(torch.zeros(1, 3, cfg.image_size, cfg.image_size)).shape[1])


def pairs_per_epoch(cfg, n_items: int) -> int:
    """The epoch budget: ``encoder.pairs_per_epoch``, or ``pairs_per_item`` per item listed before
    the cut (at least a batch), so each item's z gets about as many updates at any catalog size."""
    return cfg.pairs_per_epoch or max(int(cfg.pairs_per_item * n_items), cfg.batch_size)


def train_encoder(params: Params, ws: Workspace, ckpt_path: str | Path | None = None) -> dict[str, Any]:
    """Train the encoder of ``ws`` on its pairs before train_end; write its outputs; the summary."""
    started = time.perf_counter()
    cfg = params.encoder
    out_dir = Path(ws.path("encoder"))
    checkpoints = prepare_checkpoints(out_dir, ckpt_path)
    train_end, _eval_end = ws.split()
    items = io.read_items(ws.path("items")).sort_values("item_id", kind="stable").reset_index(drop=True)

    # streamed by blocks of users: memory grows with the distinct pairs, not with the click log
    pairs = mine_pairs_from_days(ws.path("events"), params.pairs, train_end)
    if pairs.empty:
        clicks = count_clicks(ws.path("events"), end=train_end)  # one more pass, on this error path only
        raise StageError(
            f"no item pairs mined from {clicks} clicks before {train_end}: "
            "no user clicked two different items within the window. Loosen pairs.window_days, "
            "pairs.max_gap_events or pairs.min_support (or provide more days of events)."
        )
    splits = encoder_pair_splits(pairs, items, train_end, params.pairs.holdout_fraction, cfg.cold_item_fraction,
                                 params.seed)
    train_pairs, holdout, cold_pairs, cold_ids = splits["train"], splits["holdout"], splits["cold"], splits["cold_ids"]
    if train_pairs.empty:
        raise StageError(f"none of the {len(pairs)} mined pairs is left for training after the holdout "
                         f"({params.pairs.holdout_fraction:g} of pairs) and the cold items ({len(cold_ids)}); "
                         "lower pairs.holdout_fraction or encoder.cold_item_fraction, or add data")

    log.info("mined %d pairs (%d train, %d held out, %d touching the %d cold items) in %.1fs", len(pairs),
             len(train_pairs), len(holdout), len(cold_pairs), len(cold_ids), time.perf_counter() - started)
    if cfg.finetune_text_layers:
        log.warning("encoder.finetune_text_layers=%d: fine-tuning MiniLM is not implemented yet; the text model stays "
                    "frozen and a projection is trained on its cached features", cfg.finetune_text_layers)
    text = text_features(items, cfg, ws.path("text_cache"))
    log.info("text features ready at %.1fs", time.perf_counter() - started)
    write_vectors(ws.path("text_features"), items["item_id"], text)

    # vocabularies, content basis, budget and choice only from items listed before train_end
    is_listed = listed_before(items, train_end)
    listed = items.loc[is_listed]
    previous = read_config(out_dir) if cfg.warm_start else None
    config = encoder_config(cfg, listed, previous, _backbone_width(cfg))
    warm = previous is not None and compatible(previous, config)
    if previous is not None and not warm:
        log.warning("previous encoder in %s has another architecture; training from scratch", out_dir)
    L.seed_everything(params.seed, workers=True, verbose=False)
    encoder = ItemEncoder(config)
    if warm:
        encoder.load_grown(read_weights(out_dir))  # the content basis too: z stays comparable across refreshes
    elif encoder.content_residual:
        try:
            encoder.set_text_basis(text[is_listed])
        except ValueError as err:
            raise StageError(str(err)) from None
    epochs, lr = (cfg.warm_start_epochs, cfg.warm_start_lr) if warm else (cfg.epochs, cfg.lr)

    features = encoder.featurize(items, ws.path("data"), text_vectors=text)
    # what the previous encoder (its own vocabularies) gave each item: the SIDs were built on it
    anchor = load_item_encoder(out_dir).embed(items, ws.path("data"), text_vectors=text) \
        if warm and cfg.anchor_weight > 0 else None
    row_of = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())
    rows = np.stack([row_of.reindex(train_pairs["trigger"]).to_numpy(), row_of.reindex(train_pairs["target"]).to_numpy()], axis=1)
    if np.isnan(rows.astype(float)).any():
        raise StageError("mined pairs reference item_ids missing from the catalog; run validate_logs")
    item_ids = items["item_id"].to_numpy()
    # the choice ranks neighbours among listed items only: later listings are evaluation-window data
    listed_rows = torch.as_tensor(np.flatnonzero(is_listed))
    # a warm start keeps the previous scale (the anchor and the SIDs were built at it): it trains and
    # chooses epochs at that scale; a cold retrain chooses the scale again
    scales = [float(encoder.correction_scale)] if warm and encoder.content_residual else cfg.correction_scales
    selection = ColdSelection(features.take(listed_rows), item_ids[is_listed], cold_pairs, cfg.hit_k, scales,
                              cfg.patience, cfg.selection_margin, cfg.hit_max_triggers, params.seed) \
        if len(cold_pairs) else None
    if selection is None:
        log.warning("no pairs touch a cold item (encoder.cold_item_fraction %g): the last epoch is kept at "
                    "correction scale %g, unchecked on unseen items", cfg.cold_item_fraction,
                    float(encoder.correction_scale) if encoder.content_residual else 1.0)
    per_epoch = pairs_per_epoch(cfg, len(listed))
    fit = fit_encoder(encoder, features, rows.astype(np.int64), train_pairs["weight"].to_numpy(),
                      epochs=epochs, lr=lr, cfg=cfg, seed=params.seed, anchor=anchor,
                      anchor_weight=cfg.anchor_weight, checkpoint_dir=checkpoints, ckpt_path=ckpt_path,
                      selection=selection, pairs_per_epoch=per_epoch, train_scale=None if warm else 1.0)
    losses = fit.epoch_losses

    log.info("trained %d of %d epochs (loss %s), kept epoch %s at correction scale %s, at %.1fs", len(losses), epochs,
             [round(x, 3) for x in losses], selection.best["epoch"] if selection else len(losses),
             float(encoder.correction_scale) if encoder.content_residual else None, time.perf_counter() - started)
    with staged_output(out_dir) as staging:
        save_item_encoder(encoder, staging)
    # build_codebook's contrastive term and hit@k use exactly these pairs, not a re-mining
    write_pairs(train_pairs, holdout, ws.path("pairs"), cold=cold_pairs)
    # embeddings come from the saved artifact, through the same call every consumer uses
    z = load_item_encoder(out_dir).embed(items, ws.path("data"), text_vectors=text)
    drift = float(np.mean(np.sum((z - anchor) ** 2, axis=1))) if anchor is not None else None
    write_vectors(ws.path("embeddings"), items["item_id"], z)

    k = cfg.hit_k
    sets = retrieval_sets(ws, items, holdout, cold_pairs)
    retrieval = retrieval_report(item_ids, z, text, sets, k, cfg.hit_max_triggers, params.seed)
    hit, hit_minilm = retrieval["warm"]["hit"], retrieval["warm"]["minilm"]
    with_behavior = np.isin(items["item_id"], np.concatenate([pairs["trigger"], pairs["target"]]))
    summary = {
        "n_items": int(len(items)),
        "n_items_without_pairs": int((~with_behavior).sum()),
        "n_cold_items": int(len(cold_ids)),
        "n_pairs": int(len(pairs)),
        "n_train_pairs": int(len(train_pairs)),
        "n_holdout_pairs": int(len(holdout)),
        "n_cold_pairs": int(len(cold_pairs)),
        "pairs_per_epoch": per_epoch,
        "hit_k": k,
        f"hit_at_{k}": hit,  # warm: held-out pairs of trained items
        f"hit_at_{k}_minilm": hit_minilm,
        "relative_gain": (hit / hit_minilm - 1.0) if hit is not None and hit_minilm else None,
        "retrieval": retrieval,  # hit@k of z vs plain MiniLM per pair set: warm, cold, future, future_new
        "selected_epoch": selection.best["epoch"] if selection else len(losses),
        "correction_scale": float(encoder.correction_scale) if encoder.content_residual else None,
        "selection": selection.history if selection else [],
        "epochs": epochs,
        "epochs_run": len(losses),
        "lr": lr,
        "warm_started": warm,
        "anchor_weight": cfg.anchor_weight if anchor is not None else 0.0,
        "anchor_drift": drift,  # mean ||z - previous z||^2 over the catalog (anchored warm starts)
        "resumed_from": fit.resumed_from,
        "train_loss": losses[-1] if losses else None,
        "train_loss_per_epoch": losses,
        "embedding_dim": int(z.shape[1]),
        "train_end": str(train_end),
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_stage_report(ws.metrics_file("encoder"), ws.path("reports"), "encoder", summary, hit_k=k)
    return summary
