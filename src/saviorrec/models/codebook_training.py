"""The build_codebook stage: the RQ-VAE codebooks and the semantic ID of every catalog item.

Reads z (behavior-aware embeddings), the plain MiniLM text features, the behavior pairs
train_encoder trained on and held out (``paths.pairs``: contrastive term between reconstructed
trigger and target), the encoder metrics (hit@30) and the previous codebook (warm start unless
codebook.full_rebuild). The reconstruction of each space is scored like z itself: hit@k beside
plain MiniLM on the warm, cold, future and future-new pairs (``retrieval_reconstructed``). Writes codebook/ (behavior model, generic/
model, SID snapshots for churn), sids, sids_generic and metrics/codebook.json.

Choices: a codebook larger than the catalog (codebook_size > items) is an error naming both
numbers (no silent shrinking); NaN embeddings or catalog items without embeddings are errors
naming the items; no pairs turns the contrastive term off with a warning. The generic
codebook (plain MiniLM, the `sid_ids` baseline) is trained without the contrastive term: it
is the "no behavior" reference. A warm start (previous model, same shape, codebook.full_rebuild
false) trains warm_start_epochs at warm_start_lr, and known items keep their previous codes
while those quantize them within (1 + sticky_margin) of the best codes.

Lightning keeps ``<codebook>/checkpoints/<space>/last.ckpt`` after every epoch of each space
(behavior, generic). A retried run passes ``ckpt_path`` ("last", or one of those files): each
space resumes from its own last.ckpt when there is one (no k-means init over it). A fresh run
clears stale checkpoints; the outputs are staged and replace the codebook folder as a whole
only when both spaces succeeded (checkpoints included), so a failure leaves the previous
codebook, the warm-start source, untouched. A damaged last.ckpt is set aside (that space starts
from scratch); a damaged previous model, snapshot or input table is an error naming the file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saviorrec.config import Params
from saviorrec.data import io
from saviorrec.data.pairs import read_pair_splits
from saviorrec.data.vectors import read_vectors, require_finite
from saviorrec.file_integrity import CorruptFileError
from saviorrec.metrics.codebook import codebook_report
from saviorrec.metrics.retrieval import retrieval_report
from saviorrec.metrics.retrieval_sets import RetrievalSets, retrieval_sets
from saviorrec.metrics.stage_reports import write_stage_report
from saviorrec.models.checkpoints import last_checkpoint, prepare_checkpoints, staged_output
from saviorrec.models.codebook import MODEL_FILE, Codebook, load_codebook
from saviorrec.models.codebook_depth import checkpoint_levels, choose_depth, projection
from saviorrec.models.rqvae import RQVAEConfig
from saviorrec.models.rqvae_module import fit_rqvae
from saviorrec.models.semantic_ids import previous_codes, sid_table
from saviorrec.workspace import StageError, Workspace

log = logging.getLogger("saviorrec.build_codebook")

SNAPSHOT = "sids_snapshot.parquet"  # the SIDs this codebook produced, for the next run's churn/dedup
SNAPSHOT_LOST = "delete it and rerun build_codebook (the new SIDs are then not matched to the previous ones)"


def load_vectors(path: Path, item_ids: np.ndarray, what: str) -> np.ndarray:
    """[N, d] float32 in ``item_ids`` order; errors name missing items and NaN rows."""
    if not path.exists():
        raise StageError(f"{what} not found at {path}: run train_encoder first")
    try:
        ids, vectors = read_vectors(path, f"{what} at {path}", fix="rerun train_encoder to rewrite it")
    except CorruptFileError:
        raise
    except ValueError as err:  # rows of different lengths or none
        raise StageError(f"{err}; rerun train_encoder to rewrite it") from None
    # the last row of an item wins, as when its vector was appended again
    last = len(ids) - 1 - np.unique(ids[::-1], return_index=True)[1]
    known = pd.Index(ids[last])
    rows = known.get_indexer(item_ids)
    if (rows < 0).any():
        missing = item_ids[rows < 0]
        raise StageError(f"{what} at {path} lack {len(missing)} catalog items, e.g. item_id {missing[:10].tolist()}")
    return require_finite(vectors[last[rows]], item_ids, f"{what} at {path}", error=StageError)


def load_pairs(ws: Workspace) -> dict[str, pd.DataFrame]:
    """{"train", "holdout", "cold"} pairs exactly as train_encoder split them."""
    path = ws.path("pairs")
    if not path.exists():
        raise StageError(f"behavior pairs not found at {path}: run train_encoder first")
    return read_pair_splits(path)


def pair_rows(pairs: pd.DataFrame, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Pairs as row indices into item_ids (pairs with unknown items dropped); None when empty."""
    if pairs is None or pairs.empty:
        return None
    row_of = pd.Series(np.arange(len(item_ids)), index=item_ids)
    trig = row_of.reindex(pairs["trigger"].to_numpy()).to_numpy()
    targ = row_of.reindex(pairs["target"].to_numpy()).to_numpy()
    ok = ~(np.isnan(trig.astype(float)) | np.isnan(targ.astype(float)))
    if not ok.any():
        return None
    weight = pairs["weight"].to_numpy(dtype=np.float32)[ok] if "weight" in pairs else np.ones(ok.sum(), np.float32)
    return trig[ok].astype(np.int64), targ[ok].astype(np.int64), weight


def build_space(x: np.ndarray, item_ids: np.ndarray, params: Params, directory: Path, seed: int,
                pairs, contrastive: bool, retrieval: tuple[RetrievalSets, np.ndarray] | None = None, out_dir: Path | None = None,
                checkpoint_dir: Path | None = None, resume: bool = False) -> tuple[pd.DataFrame, dict]:
    """Fit (or warm-start from ``directory``) one codebook on x, assign SIDs, save the model +
    snapshot to ``out_dir`` (default ``directory``), report. ``resume`` continues from
    ``checkpoint_dir/last.ckpt`` when an interrupted run left one."""
    out_dir = directory if out_dir is None else out_dir
    # the file, not "last": with a checkpoint the fit skips the PCA + k-means init
    ckpt_path = last_checkpoint(checkpoint_dir) if resume and checkpoint_dir is not None else None
    cb = params.codebook
    config = RQVAEConfig.from_params(cb, x.shape[1], **({} if contrastive else {"contrastive_weight": 0.0}))
    if len(x) < config.codebook_size:
        raise StageError(f"codebook.codebook_size={config.codebook_size} is larger than the item count {len(x)}: "
                         f"lower codebook.codebook_size to at most {len(x)}")
    previous = io.read_parquet(directory / SNAPSHOT, fix=SNAPSHOT_LOST) if (directory / SNAPSHOT).exists() else None
    init_state, warm, depth = None, False, None
    if not cb.full_rebuild and (directory / MODEL_FILE).exists():
        old = load_codebook(directory)
        # a warm start keeps the depth chosen at the last full rebuild: SIDs stay comparable
        if cb.levels <= old.config.levels <= cb.max_levels:
            config = replace(config, levels=old.config.levels)
        if old.config.shape() == config.shape():
            init_state, warm = old.model.state_dict(), True
        else:
            log.warning("previous codebook in %s has shape %s, now %s: full rebuild", directory,
                        old.config.shape(), config.shape())
            config = replace(config, levels=cb.levels)
    if warm:
        config = replace(config, lr=cb.warm_start_lr)
    elif ckpt_path is None and cb.max_levels > cb.levels:
        depth = choose_depth(projection(x, config), config.codebook_size, min_levels=cb.levels,
                             max_levels=cb.max_levels, target=cb.depth_collision_target,
                             iters=cb.kmeans_iters, seed=seed)
        config = replace(config, levels=depth.levels)
    elif ckpt_path is not None:  # resuming: the interrupted fit's depth is in its checkpoint
        config = replace(config, levels=checkpoint_levels(ckpt_path, cb.levels))
    epochs = cb.warm_start_epochs if warm else cb.epochs
    started = time.perf_counter()
    fit = fit_rqvae(x, config, epochs=epochs, batch_size=cb.batch_size, seed=seed,
                    kmeans_iters=cb.kmeans_iters, pairs=pairs if contrastive else None, init_state=init_state,
                    checkpoint_dir=checkpoint_dir, ckpt_path=ckpt_path)
    codebook = Codebook(fit.rqvae)
    build_seconds = time.perf_counter() - started

    greedy = codebook.assign(x)
    prev = previous_codes(item_ids, previous, config.levels) if warm and cb.sticky_margin > 0 else None
    codes = codebook.assign(x, prev, cb.sticky_margin) if prev is not None else greedy
    sids = sid_table(item_ids, codes, previous)
    reconstructed = codebook.reconstruct(codes)
    report = codebook_report(x, codes, reconstructed, sids, config.codebook_size, previous)
    if retrieval is not None:  # is the quantized space still behavior-aligned, for known and unseen items?
        k = params.encoder.hit_k
        sets, reference = retrieval
        report["retrieval_reconstructed"] = retrieval_report(item_ids, reconstructed, reference, sets, k,
                                                             params.encoder.hit_max_triggers, params.seed)
        report[f"hit_at_{k}_reconstructed"] = report["retrieval_reconstructed"]["warm"]["hit"]
    if prev is not None:  # how much churn stickiness saved: the greedy codes' churn
        report["churn_codes_greedy"] = codebook_report(
            x, greedy, codebook.reconstruct(greedy), sid_table(item_ids, greedy, previous),
            config.codebook_size, previous)["churn_codes"]
    if depth is not None:  # the k-means collisions each depth tried gave (docs/method.md, codebook depth)
        report["depth_collision_rates"] = {str(k): round(v, 6) for k, v in depth.collision_rate_by_depth.items()}
    report.update(levels=config.levels, codebook_size=config.codebook_size, warm_started=warm, epochs=epochs,
                  dead_codes_reset=int(fit.reset_count), contrastive=bool(contrastive and pairs is not None and config.contrastive_weight > 0),
                  build_seconds=round(build_seconds, 3), resumed_from=fit.resumed_from)
    codebook.save(out_dir, warm_started=warm, n_items=len(item_ids))
    io.write_parquet(sids, out_dir / SNAPSHOT)
    return sids, report


def encoder_hits(ws: Workspace) -> dict:
    path = ws.metrics_file("encoder")
    if not path.exists():
        log.warning("no encoder metrics at %s: hit@30 not reported", path)
        return {"hit_at_30": None, "hit_at_30_minilm": None}
    metrics = json.loads(path.read_text())
    k = ws.params.encoder.hit_k  # the metrics file names hit@k by k; the setting itself stays out of it
    return {"hit_at_30": metrics.get(f"hit_at_{k}"), "hit_at_30_minilm": metrics.get(f"hit_at_{k}_minilm"),
            "hit_k": k}


def build_codebook(params: Params, ws: Workspace, ckpt_path: str | Path | None = None) -> dict[str, Any]:
    """Build both codebooks of ``ws`` (behavior, generic); write SIDs and metrics; the summary."""
    started = time.perf_counter()
    directory = Path(ws.path("codebook"))
    checkpoints = prepare_checkpoints(directory, ckpt_path)
    resume = ckpt_path is not None
    items = io.read_items(ws.path("items"))
    item_ids = np.sort(items["item_id"].astype("int64").unique())
    z = load_vectors(ws.path("embeddings"), item_ids, "embeddings")
    text = load_vectors(ws.path("text_features"), item_ids, "text_features")

    splits = load_pairs(ws)
    pairs = pair_rows(splits["train"], item_ids)
    sets = retrieval_sets(ws, items, splits["holdout"], splits["cold"])
    if pairs is None and params.codebook.contrastive_weight > 0:
        log.warning("no behavior pairs before train_end: contrastive term off, reconstruction only")

    with staged_output(directory) as staging:
        sids, behavior = build_space(z, item_ids, params, directory, params.seed + 3, pairs, contrastive=True,
                                     retrieval=(sets, text), out_dir=staging, checkpoint_dir=checkpoints / "behavior",
                                     resume=resume)
        sids_generic, generic = build_space(text, item_ids, params, directory / "generic", params.seed + 4, None,
                                            contrastive=False, retrieval=(sets, text), out_dir=staging / "generic",
                                            checkpoint_dir=checkpoints / "generic", resume=resume)
    io.write_parquet(sids, ws.path("sids"))
    io.write_parquet(sids_generic, ws.path("sids_generic"))

    summary = {**behavior, "n_pairs": 0 if pairs is None else int(len(pairs[0])), **encoder_hits(ws),
               "generic": generic, "seconds": round(time.perf_counter() - started, 2)}
    write_stage_report(ws.metrics_file("codebook"), ws.path("reports"), "codebook", summary,
                       hit_k=params.encoder.hit_k)
    return summary
