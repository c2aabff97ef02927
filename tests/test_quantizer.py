"""Residual quantizer and RQ-VAE on generated clustered embeddings (no pipeline needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_faults import CrashAtEpoch

from saviorrec.models.codebook import Codebook, load_codebook
from saviorrec.models.quantizer import ResidualQuantizer, nearest
from saviorrec.models.rqvae import RQVAEConfig
from saviorrec.models.rqvae_module import fit_rqvae

torch.set_num_threads(1)


def clustered(n=400, d=16, clusters=12, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d))
    return (centers[rng.integers(clusters, size=n)] + 0.2 * rng.normal(size=(n, d))).astype(np.float32)


def small_config(**kw) -> RQVAEConfig:
    return RQVAEConfig(**{"in_dim": 16, "latent_dim": 8, "hidden_dim": 16, "levels": 3, "codebook_size": 16, **kw})


def fit(x, config=None, epochs=2, pairs=None, seed=7, init_state=None):
    """The trained network (an ``RQVAE``)."""
    return fit_rqvae(x, config or small_config(), epochs=epochs, batch_size=128, seed=seed, kmeans_iters=5,
                     pairs=pairs, init_state=init_state).rqvae


def test_kmeans_init_uses_every_code_and_assign_is_greedy_residual():
    x = torch.from_numpy(clustered(d=8))
    rq = ResidualQuantizer(levels=3, codebook_size=16, dim=8)
    rq.init_kmeans(x, iters=5, seed=1)
    codes = rq.assign(x)
    assert codes.shape == (len(x), 3)
    assert len(torch.unique(codes[:, 0])) == 16  # k-means leaves no level-1 code empty
    # brute force: level by level nearest code to the residual
    residual = x.clone()
    for level in range(3):
        dist = ((residual[:, None, :] - rq.codebooks[level][None]) ** 2).sum(-1)
        assert torch.equal(dist.argmin(1), codes[:, level])
        residual = residual - rq.codebooks[level][codes[:, level]]


def test_residual_levels_reduce_error():
    x = torch.from_numpy(clustered(d=8))
    rq = ResidualQuantizer(levels=3, codebook_size=16, dim=8)
    rq.init_kmeans(x, iters=5, seed=1)
    codes = rq.assign(x)
    partial = torch.zeros_like(x)
    errors = [float((x ** 2).sum())]
    for level in range(3):
        partial = partial + rq.codebooks[level][codes[:, level]]
        errors.append(float(((x - partial) ** 2).sum()))
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors


def test_straight_through_gradient_reaches_input_and_codebook():
    rq = ResidualQuantizer(levels=2, codebook_size=4, dim=3)
    x = torch.randn(10, 3, requires_grad=True)
    out = rq(x)
    (out.quantized.sum() + out.loss).backward()
    assert x.grad is not None and torch.all(x.grad != 0)  # STE: identity gradient (+ commitment)
    assert rq.codebooks.grad is not None and rq.codebooks.grad.abs().sum() > 0


def test_dead_codes_are_reseeded_from_residuals():
    rq = ResidualQuantizer(levels=1, codebook_size=4, dim=2)
    with torch.no_grad():
        rq.codebooks.copy_(torch.tensor([[[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [60.0, 60.0]]]))
    x = torch.tensor([[0.1, 0.0], [0.9, 1.0], [-0.1, 0.1], [1.1, 0.9]])
    counts = torch.bincount(rq.assign(x)[:, 0], minlength=4)[None]
    assert counts[0, 2:].sum() == 0
    reset = rq.reset_dead_codes(counts, [x], threshold=1, generator=torch.Generator().manual_seed(0))
    assert reset == 2
    fresh = rq.codebooks[0, 2:]
    assert all(any(torch.equal(code, row) for row in x) for code in fresh)  # re-seeded on real residuals
    assert set(nearest(x, rq.codebooks[0]).tolist()) != {0, 1}  # the re-seeded codes now win some items


def test_fit_is_deterministic_and_roundtrips(tmp_path):
    x = clustered(d=16)
    pairs = (np.arange(0, 100), np.arange(100, 200), np.ones(100, np.float32))
    a = Codebook(fit(x, pairs=pairs)).assign(x)
    book = Codebook(fit(x, pairs=pairs))
    assert np.array_equal(a, book.assign(x))
    book.save(tmp_path / "cb")
    loaded = load_codebook(tmp_path / "cb")
    assert np.array_equal(loaded.assign(x), a)
    assert a.dtype == np.int32 and a.shape == (len(x), 3)


def test_training_keeps_reconstruction_close_to_kmeans_init():
    x = clustered(d=16)
    init = Codebook(fit(x, epochs=0))
    trained = Codebook(fit(x, epochs=5))
    mse = lambda book: float(np.mean((book.reconstruct(book.assign(x)) - x) ** 2))  # noqa: E731
    assert mse(trained) <= mse(init) * 1.05
    assert mse(init) < 0.2 * float(np.var(x))  # the codes explain most of the variance


def test_no_pairs_still_trains_reconstruction():
    x = clustered(d=16)
    model = fit(x, config=small_config(contrastive_weight=0.5), pairs=None)
    codes = Codebook(model).assign(x)
    assert codes.shape == (len(x), 3)


def test_codebook_larger_than_item_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"codebook_size=16 is larger than the item count 10"):
        fit(clustered(n=10, d=16))


def test_nan_embeddings_are_rejected_at_assignment():
    x = clustered(d=16)
    book = Codebook(fit(x, epochs=1))
    x[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"2 embedding rows contain NaN.*\[3, 7\]"):
        book.assign(x)


def test_sticky_assignment_keeps_previous_codes_within_margin():
    x = clustered(d=16)
    book = Codebook(fit(x, epochs=1))
    greedy = book.assign(x)
    previous = greedy.copy()
    previous[:50, 2] = (previous[:50, 2] + 1) % 16  # a slightly worse level-3 code
    previous[50:60] = -1  # unknown items
    kept = book.assign(x, previous, margin=1e6)
    assert np.array_equal(kept[:50], previous[:50])
    assert np.array_equal(kept[50:], greedy[50:])
    assert np.array_equal(book.assign(x, previous, margin=0.0), greedy)


def test_warm_start_from_state_keeps_codes():
    x = clustered(d=16)
    first = fit(x, epochs=2)
    warm = fit(x, config=small_config(lr=1e-5), epochs=1, init_state=first.state_dict())
    same = (Codebook(first).assign(x) == Codebook(warm).assign(x)).all(axis=1).mean()
    assert same >= 0.95


def test_a_fit_resumed_from_its_epoch_checkpoint_equals_an_uninterrupted_one(tmp_path):
    x = clustered()
    rng = np.random.default_rng(0)
    pairs = (rng.integers(len(x), size=200), rng.integers(len(x), size=200), np.ones(200, np.float32))
    kw = dict(epochs=4, batch_size=64, seed=1, kmeans_iters=5, pairs=pairs)
    unbroken = fit_rqvae(x, small_config(), **kw)
    with pytest.raises(RuntimeError, match="simulated"):
        fit_rqvae(x, small_config(), checkpoint_dir=tmp_path, callbacks=[CrashAtEpoch(2)], **kw)
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 1  # 2 of 4 epochs done
    resumed = fit_rqvae(x, small_config(), checkpoint_dir=tmp_path, ckpt_path=tmp_path / "last.ckpt", **kw)
    assert resumed.resumed_from == str(tmp_path / "last.ckpt") and unbroken.resumed_from is None
    for key, value in unbroken.rqvae.state_dict().items():
        torch.testing.assert_close(resumed.rqvae.state_dict()[key], value, rtol=0, atol=0)
