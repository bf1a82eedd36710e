"""Tests of vpcore.stats: Baum-Welch statistics against the UBM."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from vpcore.errors import ParameterError
from vpcore.stats import BaumWelchStats, compute_stats, stack_stats


def ubm(C, D, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(C) * 2), rng.normal(0, 2, (C, D)), rng.uniform(0.5, 2.0, (C, D))


def frames(T, D, seed):
    return np.random.default_rng(seed + 1000).normal(0, 2.5, (T, D)).astype(np.float32)


def brute_force(params, X, min_posterior=0.0):
    """Posteriors from scipy densities, pruned and renormalised, then N and whitened F."""
    w, mu, var = params
    X = X.astype(np.float64)
    logp = np.stack([np.log(w[c]) + multivariate_normal(mu[c], np.diag(var[c])).logpdf(X)
                     for c in range(len(w))], axis=1)
    post = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
    if min_posterior > 0:
        post = np.where(post < min_posterior, 0.0, post)
        post /= post.sum(axis=1, keepdims=True)
    n = post.sum(axis=0)
    f = np.stack([(post[:, c, None] * (X - mu[c])).sum(0) / np.sqrt(var[c])
                  for c in range(len(w))])
    return n, f


# ---------------------------------------------------------------------------
# against an independent computation


@pytest.mark.parametrize("min_posterior", [0.0, 1e-4, 0.05])
def test_stats_match_a_brute_force_scipy_computation(min_posterior):
    params = ubm(4, 3, seed=1)
    X = frames(30, 3, seed=1)
    stats = compute_stats(params, X, min_posterior=min_posterior)
    n, f = brute_force(params, X, min_posterior)
    assert stats.n.shape == (4,) and stats.f.shape == (4, 3)
    assert stats.n.dtype == np.float64 and stats.f.dtype == np.float64
    np.testing.assert_allclose(stats.n, n, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.f, f, rtol=1e-4, atol=1e-4)


def test_one_dimensional_case_by_hand_with_scipy_norm():
    # Two unit Gaussians at -1 and +1 with equal weights; one frame at 0.5.
    w, mu, var = np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.array([[1.0], [4.0]])
    x = 0.5
    p = np.array([norm(-1.0, 1.0).pdf(x), norm(1.0, 2.0).pdf(x)]) * 0.5
    gamma = p / p.sum()
    stats = compute_stats((w, mu, var), np.array([[x]]), min_posterior=0.0)
    np.testing.assert_allclose(stats.n, gamma, rtol=1e-6)
    np.testing.assert_allclose(stats.f[:, 0], gamma * (x - mu[:, 0]) / np.sqrt(var[:, 0]),
                               rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), st.integers(1, 4))
def test_single_component_stats_are_frame_count_and_whitened_sum(seed, T, D):
    w, mu, var = np.ones(1), *ubm(1, D, seed)[1:]
    X = frames(T, D, seed)
    stats = compute_stats((w, mu, var), X)
    np.testing.assert_allclose(stats.n, [T], rtol=1e-6)
    np.testing.assert_allclose(stats.f[0], (X.astype(np.float64) - mu[0]).sum(0) / np.sqrt(var[0]),
                               rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------
# properties


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.sampled_from([0.0, 1e-4, 0.01, 0.1]))
def test_zeroth_order_stats_sum_to_the_number_of_frames(seed, T, min_posterior):
    C = 1 + seed % 8
    stats = compute_stats(ubm(C, 2, seed), frames(T, 2, seed), min_posterior=min_posterior)
    assert np.all(stats.n >= 0)
    assert stats.n.sum() == pytest.approx(T, rel=1e-5)
    assert stats.n_frames == pytest.approx(T, rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 49), st.sampled_from([0.0, 1e-3]))
def test_stats_of_two_halves_add_up_to_the_stats_of_the_whole(seed, split, min_posterior):
    params = ubm(5, 3, seed)
    X = frames(50, 3, seed)
    whole = compute_stats(params, X, min_posterior=min_posterior)
    first = compute_stats(params, X[:split], min_posterior=min_posterior)
    second = compute_stats(params, X[split:], min_posterior=min_posterior)
    total = first + second
    assert isinstance(total, BaumWelchStats)
    np.testing.assert_allclose(total.n, whole.n, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(total.f, whole.f, rtol=1e-4, atol=1e-4)
    summed = sum([first, second])  # sum() starts from 0
    np.testing.assert_allclose(summed.n, total.n)
    np.testing.assert_allclose(summed.f, total.f)


def test_frame_order_does_not_matter():
    params = ubm(6, 4, seed=2)
    X = frames(80, 4, seed=2)
    perm = np.random.default_rng(3).permutation(80)
    a, b = compute_stats(params, X), compute_stats(params, X[perm])
    np.testing.assert_allclose(a.n, b.n, rtol=1e-5)
    np.testing.assert_allclose(a.f, b.f, rtol=1e-4, atol=1e-4)


def test_frames_at_the_means_of_their_own_component_give_zero_first_order_stats():
    w = np.full(3, 1 / 3)
    mu = np.array([[-20.0, 0.0], [0.0, 20.0], [20.0, 0.0]])
    var = np.ones((3, 2))
    X = np.repeat(mu, [5, 7, 9], axis=0)
    stats = compute_stats((w, mu, var), X)
    np.testing.assert_allclose(stats.n, [5, 7, 9], rtol=1e-6)
    np.testing.assert_allclose(stats.f, 0.0, atol=1e-4)


def test_pruning_zeroes_far_components_and_keeps_the_count():
    w = np.full(2, 0.5)
    mu = np.array([[0.0], [50.0]])
    var = np.ones((2, 1))
    X = np.zeros((10, 1), np.float32)
    stats = compute_stats((w, mu, var), X, min_posterior=1e-4)
    assert stats.n[1] == 0.0 and np.all(stats.f[1] == 0.0)
    assert stats.n[0] == pytest.approx(10.0)


def test_whitening_makes_stats_invariant_to_a_per_dimension_rescaling():
    # Scaling dimension d of the frames, means and standard deviations by s_d
    # leaves posteriors and whitened stats unchanged.
    w, mu, var = ubm(4, 3, seed=4)
    X = frames(40, 3, seed=4)
    s = np.array([0.5, 3.0, 10.0])
    a = compute_stats((w, mu, var), X, min_posterior=0.0)
    b = compute_stats((w, mu * s, var * s**2), (X * s).astype(np.float32), min_posterior=0.0)
    np.testing.assert_allclose(a.n, b.n, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.f, b.f, rtol=1e-3, atol=1e-3)


def test_stack_stats_gives_U_by_C_and_U_by_C_by_D():
    params = ubm(4, 3, seed=5)
    stats = [compute_stats(params, frames(10 + u, 3, seed=u)) for u in range(5)]
    N, F = stack_stats(stats)
    assert N.shape == (5, 4) and F.shape == (5, 4, 3)
    np.testing.assert_array_equal(N[2], stats[2].n)
    np.testing.assert_array_equal(F[4], stats[4].f)
    np.testing.assert_allclose(N.sum(axis=1), [10, 11, 12, 13, 14], rtol=1e-5)


# ---------------------------------------------------------------------------
# errors


def test_stack_of_nothing_raises():
    with pytest.raises(ParameterError, match="empty"):
        stack_stats([])


def test_zero_frames_raise():
    with pytest.raises(ParameterError, match="0 frames"):
        compute_stats(ubm(2, 3, 0), np.zeros((0, 3)))


@pytest.mark.parametrize("X, match", [
    (np.zeros((5, 4)), "columns"),
    (np.zeros(5), "2-D"),
    (np.full((5, 3), np.nan), "NaN"),
])
def test_bad_frames_raise_parameter_error(X, match):
    with pytest.raises(ParameterError, match=match):
        compute_stats(ubm(2, 3, 0), X)


@pytest.mark.parametrize("min_posterior", [0.6, 1.0])
def test_min_posterior_above_one_over_c_is_rejected_or_harmless(min_posterior):
    params = (np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.ones((2, 1)))
    X = np.array([[0.0], [3.0], [-3.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            stats = compute_stats(params, X, min_posterior=min_posterior)
        except ParameterError as exc:
            assert "min_posterior" in str(exc)
            return
    assert np.all(np.isfinite(stats.n)) and stats.n.sum() == pytest.approx(3.0)
