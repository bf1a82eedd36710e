"""Tests of vpcore.ivector: total-variability training and i-vector extraction.

Data come from a KNOWN total-variability model in the UBM-whitened space: for
utterance u with latent w_u ~ N(0, I) and n_uc frames of component c, every
frame is N(T_c w_u, I), so the statistics are N_uc = n_uc and
F_uc = n_uc T_c w_u + sqrt(n_uc) z with z ~ N(0, I).
"""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from vpcore.errors import (ConvergenceWarning, ModelError, NotFittedError, ParameterError,
                           VpcoreError)
from vpcore.ivector import TotalVariability, TvStats, accumulate


def generate(C=8, D=3, S=2, U=300, seed=0, mean_count=20.0, latent_mean=0.0, t_scale=0.5):
    rng = np.random.default_rng(seed)
    T = rng.standard_normal((C * D, S)) * t_scale
    W = rng.standard_normal((U, S)) + latent_mean
    N = rng.poisson(mean_count, size=(U, C)).astype(float)
    F = (N[:, :, None] * (W @ T.T).reshape(U, C, D)
         + np.sqrt(N)[:, :, None] * rng.standard_normal((U, C, D)))
    return T, W, N, F


@functools.lru_cache(maxsize=None)
def trained(seed=0):
    T, W, N, F = generate(seed=seed)
    return TotalVariability(rank=2, n_iter=10, random_state=seed).fit(N, F), (T, W, N, F)


def r_squared(target, predictors):
    """R^2 of regressing each column of ``target`` on ``predictors`` (with intercept)."""
    A = np.c_[predictors, np.ones(len(predictors))]
    coef = np.linalg.lstsq(A, target, rcond=None)[0]
    resid = target - A @ coef
    return 1 - (resid**2).sum(0) / ((target - target.mean(0)) ** 2).sum(0)


def posterior_mean(T, n, f):
    """inv(I + sum_c n_c T_c' T_c) T' f, written out component by component."""
    C = len(n)
    D, S = T.shape[0] // C, T.shape[1]
    L = np.eye(S)
    b = np.zeros(S)
    for c in range(C):
        Tc = T[c * D:(c + 1) * D]
        L += n[c] * Tc.T @ Tc
        b += Tc.T @ f[c]
    return np.linalg.solve(L, b)


# ---------------------------------------------------------------------------
# recovering a known model


@pytest.mark.parametrize("seed", [0, 1])
def test_ivectors_recover_the_true_latent_up_to_a_linear_map(seed):
    tv, (T, W, N, F) = trained(seed)
    w_hat = tv.transform(N, F)
    assert w_hat.shape == (300, 2)
    assert np.all(r_squared(W, w_hat) > 0.9)
    # and the other way round: the map is invertible, not a projection
    assert np.all(r_squared(w_hat, W) > 0.9)


def test_trained_subspace_is_the_true_subspace():
    tv, (T, W, N, F) = trained(0)
    # principal angles between span(T_) and span(T_true)
    q_true, _ = np.linalg.qr(T)
    q_est, _ = np.linalg.qr(tv.T_)
    cosines = np.linalg.svd(q_true.T @ q_est, compute_uv=False)
    assert cosines.min() > 0.98


def test_held_out_utterances_are_recovered_too():
    tv, _ = trained(0)
    # new utterances from the same model (same T: same seed of T, other latents)
    T, _, _, _ = generate(seed=0)
    rng = np.random.default_rng(123)
    W = rng.standard_normal((100, 2))
    N = rng.poisson(20.0, size=(100, 8)).astype(float)
    F = N[:, :, None] * (W @ T.T).reshape(100, 8, 3) + np.sqrt(N)[:, :, None] * rng.standard_normal((100, 8, 3))
    assert np.all(r_squared(W, tv.transform(N, F)) > 0.9)


def test_min_divergence_gives_unit_second_moment_of_training_ivectors():
    tv, (T, W, N, F) = trained(0)
    F2 = F.reshape(len(N), -1)
    stats = accumulate(tv.T_, N, F2)
    second_moment = stats.hh / stats.count  # mean of E[w w'] over utterances
    np.testing.assert_allclose(second_moment, np.eye(2), atol=0.05)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_em_objective_never_decreases_without_min_divergence(seed):
    rng = np.random.default_rng(seed)
    C, D, S, U = (int(v) for v in (rng.integers(1, 6), rng.integers(1, 4),
                                   rng.integers(1, 5), rng.integers(2, 40)))
    T, W, N, F = generate(C, D, S, U, seed=seed, mean_count=float(rng.uniform(0.5, 30)),
                          latent_mean=float(rng.choice([0.0, 2.0])),
                          t_scale=float(rng.uniform(0.1, 2.0)))
    N[0] = np.maximum(N[0], 1.0)  # every component seen once (see test_unseen_component_...)
    tv = TotalVariability(rank=S, n_iter=8, min_divergence=False, random_state=seed).fit(N, F)
    hist = np.array(tv.objective_history_)
    assert len(hist) == 8 and np.all(np.isfinite(hist))
    assert np.all(np.diff(hist) >= -1e-8 * np.maximum(1.0, np.abs(hist[1:])))


def test_em_objective_never_decreases_with_min_divergence_on_zero_mean_latents():
    tv, _ = trained(1)
    hist = np.array(tv.objective_history_)
    assert hist[-1] > hist[0]
    assert np.all(np.diff(hist) >= -1e-8 * np.abs(hist[1:]))


def test_em_objective_never_decreases_with_min_divergence_on_offset_latents():
    T, W, N, F = generate(latent_mean=2.0)
    tv = TotalVariability(rank=2, n_iter=6).fit(N, F)
    hist = np.array(tv.objective_history_)
    assert np.all(np.diff(hist) >= -1e-8 * np.abs(hist[1:]))


# ---------------------------------------------------------------------------
# extraction against the formula


def test_transform_one_equals_the_brute_force_posterior_mean():
    tv, (T, W, N, F) = trained(0)
    for u in range(5):
        # the trained model is o + T w: the posterior mean of w sees F - N o
        centred = F[u] - N[u][:, None] * tv.offset_.reshape(F[u].shape)
        expected = posterior_mean(tv.T_, N[u], centred)
        np.testing.assert_allclose(tv.transform_one(N[u], F[u]), expected, rtol=1e-4,
                                   atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 4), st.integers(1, 5))
def test_transform_equals_the_posterior_mean_for_any_matrix(seed, C, D, S):
    rng = np.random.default_rng(seed)
    T = rng.standard_normal((C * D, S))
    n = rng.poisson(5.0, C).astype(float)
    f = rng.standard_normal((C, D)) * 3
    tv = TotalVariability(rank=S).set_fitted(T, C)
    assert tv.T_.shape[1] == S and tv.n_features_ == D
    np.testing.assert_allclose(tv.transform_one(n, f), posterior_mean(T, n, f),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tv.transform(n[None], f[None])[0], posterior_mean(T, n, f),
                               rtol=1e-4, atol=1e-4)


def test_an_utterance_without_frames_gets_the_prior_mean():
    tv, _ = trained(0)
    np.testing.assert_array_equal(tv.transform_one(np.zeros(8), np.zeros((8, 3))), 0.0)


def test_more_frames_of_the_same_speaker_shrink_less():
    # With n frames of a fixed latent w (no noise), the posterior mean moves
    # towards w as n grows.
    tv, _ = trained(0)
    T = tv.T_
    w = np.array([1.5, -1.0])
    previous = np.inf
    for count in (1, 5, 25, 125):
        n = np.full(8, float(count))
        f = n[:, None] * (tv.offset_ + T @ w).reshape(8, 3)  # the model is o + T w
        err = np.linalg.norm(tv.transform_one(n, f) - w)
        assert err < previous
        previous = err
    assert previous < 0.01


def test_em_objective_is_the_marginal_log_likelihood_up_to_a_constant():
    # log p(F_u | N_u, T) = objective_u + terms that do not depend on T.
    T0, W, N, F = generate(C=3, D=2, S=2, U=4, seed=5)
    other = T0 + np.random.default_rng(6).standard_normal(T0.shape) * 0.3
    F2 = F.reshape(4, -1)

    def marginal(T):
        total = 0.0
        for u in range(4):
            lam = np.repeat(N[u], 2)
            A = lam[:, None] * T
            total += multivariate_normal(np.zeros(6), np.diag(lam) + A @ A.T).logpdf(F2[u])
        return total

    diff_objective = accumulate(T0, N, F2).objective - accumulate(other, N, F2).objective
    assert diff_objective == pytest.approx(marginal(T0) - marginal(other), rel=1e-8)


# ---------------------------------------------------------------------------
# statistics, reproducibility


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 29), st.integers(1, 40))
def test_tv_stats_of_two_halves_add_up(seed, split, batch):
    T, W, N, F = generate(C=4, D=2, S=3, U=30, seed=seed)
    F2 = F.reshape(30, -1)
    whole = accumulate(T, N, F2)
    parts = [accumulate(T, N[:split], F2[:split], batch=batch),
             accumulate(T, N[split:], F2[split:], batch=batch)]
    for total in (parts[0] + parts[1], sum(parts)):
        assert isinstance(total, TvStats)
        for name in ("a", "c", "h", "hh"):
            np.testing.assert_allclose(getattr(total, name), getattr(whole, name),
                                       rtol=1e-9, atol=1e-9)
        assert total.objective == pytest.approx(whole.objective, rel=1e-9)
        assert total.count == whole.count == 30


def test_same_seed_gives_the_same_matrix_and_another_seed_another_start():
    T, W, N, F = generate(U=60, seed=7)
    a = TotalVariability(rank=2, n_iter=3, random_state=11).fit(N, F)
    b = TotalVariability(rank=2, n_iter=3, random_state=11).fit(N, F)
    c = TotalVariability(rank=2, n_iter=3, random_state=12).fit(N, F)
    assert a.T_.tobytes() == b.T_.tobytes()
    assert a.objective_history_ == b.objective_history_
    assert not np.allclose(a.T_, c.T_)


def test_fit_accepts_float32_statistics_and_returns_self():
    T, W, N, F = generate(U=40, seed=8)
    tv = TotalVariability(rank=2, n_iter=2)
    assert tv.fit(N.astype(np.float32), F.astype(np.float32)) is tv
    assert tv.T_.shape == (24, 2) and tv.T_.dtype == np.float64
    assert (tv.n_components_, tv.n_features_) == (8, 3)
    assert tv.cache_bytes == tv._tt_packed.nbytes + tv._T32.nbytes > 0


def test_progress_callback_sees_the_history():
    T, W, N, F = generate(U=30, seed=9)
    seen = []
    tv = TotalVariability(rank=2, n_iter=3).fit(N, F, progress=lambda *a: seen.append(a))
    assert [obj for _, _, obj in seen] == tv.objective_history_
    assert [it for _, it, _ in seen] == [0, 1, 2]


# ---------------------------------------------------------------------------
# errors


def test_unfitted_extractor_raises_not_fitted():
    with pytest.raises(NotFittedError):
        TotalVariability().transform_one(np.ones(2), np.ones((2, 2)))
    with pytest.raises(NotFittedError):
        TotalVariability().cache_bytes


@pytest.mark.parametrize("kwargs, args, match", [
    (dict(rank=0), None, "rank"),
    (dict(rank=2.5), None, "rank"),
    (dict(n_iter=0), None, "n_iter"),
    (dict(), "one-utterance", "at least 2"),
    (dict(), "shape-mismatch", "F has shape"),
    (dict(), "2d-F", "F must be 3-D"),
    (dict(), "nan", "NaN"),
])
def test_invalid_input_raises_parameter_error(kwargs, args, match):
    T, W, N, F = generate(U=5, seed=10)
    if args == "one-utterance":
        N, F = N[:1], F[:1]
    elif args == "shape-mismatch":
        F = F[:, :4]
    elif args == "2d-F":
        F = F.reshape(5, -1)
    elif args == "nan":
        F = F.copy()
        F[0, 0, 0] = np.nan
    with pytest.raises(ParameterError, match=match):
        TotalVariability(**{"rank": 2, **kwargs}).fit(N, F)


def test_set_fitted_rejects_rows_not_a_multiple_of_c():
    with pytest.raises(ModelError, match="multiple"):
        TotalVariability().set_fitted(np.ones((10, 2)), 3)


def test_unseen_component_does_not_crash_training_with_a_raw_linalg_error():
    T, W, N, F = generate(C=4, D=3, S=2, U=20, seed=11)
    N[:, 0] = 0.0
    F[:, 0] = 0.0
    try:
        tv = TotalVariability(rank=2, n_iter=3).fit(N, F)
    except VpcoreError:
        return  # a clear library error is acceptable
    assert np.all(np.isfinite(tv.T_))
    assert np.all(np.isfinite(tv.transform(N, F)))


# ---------------------------------------------------------------------------
# convergence, reported as scikit-learn does


def test_tol_stops_training_and_reports_convergence():
    import warnings

    T, W, N, F = generate(U=200, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        tv = TotalVariability(rank=2, n_iter=200, tol=1e-4, random_state=0).fit(N, F)
    assert tv.converged_ is True
    assert 2 <= tv.n_iter_ < 200 and tv.n_iter_ == len(tv.objective_history_)
    last, previous = tv.objective_history_[-2:]
    assert last - previous < 1e-4 * abs(last)
    # stopping keeps the matrix the last E-step judged: more iterations change nothing
    again = TotalVariability(rank=2, n_iter=tv.n_iter_, random_state=0).fit(N, F)
    assert again.objective_history_ == tv.objective_history_


def test_tol_not_met_warns_with_sklearn_convergence_warning():
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    T, W, N, F = generate(U=60, seed=13)
    with pytest.warns(SklearnConvergenceWarning, match="n_iter=3"):
        tv = TotalVariability(rank=2, n_iter=3, tol=0.0).fit(N, F)
    assert (tv.converged_, tv.n_iter_) == (False, 3)


def test_without_tol_every_iteration_runs_and_nothing_is_claimed():
    import warnings

    T, W, N, F = generate(U=60, seed=14)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        tv = TotalVariability(rank=2, n_iter=4).fit(N, F)
    assert (tv.converged_, tv.n_iter_) == (False, 4)
