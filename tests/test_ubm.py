"""Tests of vpcore.ubm: diagonal GMM, its EM statistics and training by binary splitting."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from vpcore.errors import ConvergenceWarning, NotFittedError, ParameterError
from vpcore.ubm import DiagonalGMM, GmmStats, accumulate, log_likelihoods, posteriors

pytestmark = pytest.mark.filterwarnings("ignore::vpcore.errors.ConvergenceWarning")


def clusters(centres, n_per, std, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=float)
    X = np.concatenate([c + std * rng.standard_normal((n_per, centres.shape[1]))
                        for c in centres])
    return X[rng.permutation(len(X))]


def random_params(C, D, seed):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(C))
    return w, rng.normal(0, 2, (C, D)), rng.uniform(0.3, 3.0, (C, D))


def match_means(estimated, true):
    """Max abs error of estimated means against the true ones, best pairing."""
    cost = ((estimated[:, None, :] - true[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return np.abs(estimated[rows] - true[cols]).max(), rows, cols


# ---------------------------------------------------------------------------
# maths against an independent reference


def test_log_likelihoods_match_scipy_multivariate_normal():
    w, mu, var = random_params(3, 4, seed=1)
    X = np.random.default_rng(2).normal(0, 2, (50, 4))
    expected = np.stack([np.log(w[c]) + multivariate_normal(mu[c], np.diag(var[c])).logpdf(X)
                         for c in range(3)], axis=1)
    np.testing.assert_allclose(log_likelihoods(X, w, mu, var), expected, rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(-800, 800))
def test_posteriors_sum_to_one_and_norm_is_logsumexp(seed, shift):
    ll = np.random.default_rng(seed).normal(0, 30, (20, 5)) + shift
    expected_norm = logsumexp(ll, axis=1)
    expected_post = np.exp(ll - expected_norm[:, None])
    post, norm = posteriors(ll.copy())
    assert np.all((post >= 0) & (post <= 1))
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(post, expected_post, atol=1e-12)
    np.testing.assert_allclose(norm, expected_norm, rtol=1e-12)


def test_accumulate_matches_brute_force_posteriors():
    w, mu, var = random_params(3, 2, seed=3)
    X = np.random.default_rng(4).normal(0, 2, (40, 2))
    logp = np.stack([np.log(w[c]) + multivariate_normal(mu[c], np.diag(var[c])).logpdf(X)
                     for c in range(3)], axis=1)
    post = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
    stats = accumulate((w, mu, var), X, block=7)
    np.testing.assert_allclose(stats.n, post.sum(0), rtol=1e-10)
    np.testing.assert_allclose(stats.f, post.T @ X, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.s, post.T @ X**2, rtol=1e-10)
    assert stats.loglik == pytest.approx(logsumexp(logp, axis=1).sum(), rel=1e-10)
    assert stats.n_frames == 40


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 99), st.integers(1, 60))
def test_gmm_stats_of_two_halves_add_up_to_the_whole(seed, split, block):
    params = random_params(4, 3, seed)
    X = np.random.default_rng(seed + 1).normal(0, 2, (100, 3))
    whole = accumulate(params, X)
    parts = [accumulate(params, X[:split], block), accumulate(params, X[split:], block)]
    total = parts[0] + parts[1]
    assert isinstance(total, GmmStats)
    np.testing.assert_allclose(total.n, whole.n, rtol=1e-10)
    np.testing.assert_allclose(total.f, whole.f, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(total.s, whole.s, rtol=1e-10)
    assert total.loglik == pytest.approx(whole.loglik, rel=1e-10)
    assert total.n_frames == whole.n_frames == 100
    via_sum = sum(parts)  # sum() starts from 0
    np.testing.assert_allclose(via_sum.f, whole.f, rtol=1e-10, atol=1e-10)
    assert via_sum.n_frames == 100
    np.testing.assert_allclose(whole.n.sum(), 100.0)


def test_m_step_of_one_component_gives_sample_mean_and_variance():
    X = np.random.default_rng(5).normal([1.0, -2.0], [0.5, 3.0], (500, 2))
    gmm = DiagonalGMM(n_components=1).fit(X)
    np.testing.assert_allclose(gmm.weights_, [1.0])
    np.testing.assert_allclose(gmm.means_[0], X.mean(0), rtol=1e-10)
    np.testing.assert_allclose(gmm.variances_[0], X.var(0), rtol=1e-10)


# ---------------------------------------------------------------------------
# EM behaviour


@st.composite
def em_problems(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    C = draw(st.sampled_from([1, 2, 4]))
    D = draw(st.integers(1, 3))
    n = draw(st.integers(2 * C, 150))
    rng = np.random.default_rng(seed)
    k = draw(st.integers(1, 5))
    X = rng.normal(0, 4, (k, D))[rng.integers(k, size=n)] + rng.standard_normal((n, D))
    if draw(st.booleans()):
        X = np.round(X)  # many duplicate frames: components may collapse onto points
    return X, C, seed


@settings(max_examples=40, deadline=None)
@given(em_problems())
def test_em_log_likelihood_never_decreases_and_parameters_stay_valid(problem):
    X, C, seed = problem
    gmm = DiagonalGMM(n_components=C, n_iter=12, n_iter_split=3, tol=0.0,
                      variance_floor=0.01, random_state=seed).fit(X)
    hist = np.array(gmm.loglik_history_)
    assert len(hist) >= 1 and np.all(np.isfinite(hist))
    assert np.all(np.diff(hist) >= -1e-9 * np.maximum(1.0, np.abs(hist[1:])))
    assert gmm.weights_.shape == (C,) and gmm.means_.shape == gmm.variances_.shape == (C, X.shape[1])
    assert gmm.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(gmm.weights_ > 0)
    floor = np.maximum(0.01 * X.var(axis=0), 1e-8)
    assert np.all(gmm.variances_ >= floor * (1 - 1e-12))
    # the recorded history is the average log-likelihood the model gave the frames
    stats = accumulate(gmm.params, X)
    if len(hist) < 12:  # stopped: the last E-step was made with the final parameters
        assert stats.loglik / len(X) == pytest.approx(hist[-1], rel=1e-9, abs=1e-9)


def test_history_increases_to_the_score_of_the_trained_model():
    X = clusters([[0, 0], [6, 6], [-6, 6]], 200, 1.0, seed=6)
    gmm = DiagonalGMM(n_components=4, n_iter=30, random_state=0).fit(X)
    hist = gmm.loglik_history_
    assert hist[-1] >= hist[0]
    assert gmm.score(X) >= hist[-1] - 1e-6
    np.testing.assert_allclose(gmm.score_samples(X),
                               logsumexp(log_likelihoods(X, *gmm.params), axis=1))


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000))
def test_recovers_two_well_separated_clusters(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-10, 10, 2)
    b = a + rng.choice([-1, 1], 2) * rng.uniform(5, 10, 2)  # any orientation
    X = clusters([a, b], 300, 0.5, seed=seed)
    # tol=0: run EM to the end (see test_default_tol_stops_on_the_saddle_after_a_split)
    gmm = DiagonalGMM(n_components=2, n_iter=100, tol=0.0, random_state=seed).fit(X)
    err, _, _ = match_means(gmm.means_, np.array([a, b]))
    assert err < 0.15
    np.testing.assert_allclose(np.sort(gmm.weights_), [0.5, 0.5], atol=1e-6)
    # each component's variance is its cluster's sample variance, raised to the floor
    # (1 % of the data's variance). Not the generating 0.25: 300 draws of a variance
    # scatter by about 8 %, and a dozen examples reach 4 sigma.
    truth = np.array([a, b])
    own = np.argmin(((X[:, None, :] - truth[None]) ** 2).sum(-1), axis=1)
    expected = np.maximum([X[own == k].var(axis=0) for k in range(2)], 0.01 * X.var(axis=0))
    _, rows, cols = match_means(gmm.means_, truth)
    np.testing.assert_allclose(gmm.variances_[rows], expected[cols], rtol=1e-6)


def test_recovers_four_well_separated_clusters_with_unequal_weights():
    true = np.array([[-5.0, -5.0], [5.0, 5.0], [-5.0, 5.0], [5.0, -5.0]])
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    rng = np.random.default_rng(0)
    labels = rng.choice(4, 4000, p=weights)
    X = true[labels] + rng.standard_normal((4000, 2)) * 0.5
    gmm = DiagonalGMM(n_components=4, n_iter=100, n_iter_split=20, tol=0.0).fit(X)
    err, rows, cols = match_means(gmm.means_, true)
    assert err < 0.1
    np.testing.assert_allclose(gmm.weights_[rows], weights[cols], atol=0.03)
    np.testing.assert_allclose(gmm.variances_[rows], 0.25, rtol=0.15)


def test_default_tol_stops_on_the_saddle_after_a_split():
    rng = np.random.default_rng(0)
    X = np.r_[rng.standard_normal((300, 2)) * 0.5 + [-5, 5],
              rng.standard_normal((300, 2)) * 0.5 + [5, -5]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # no warning may hide the failure
        gmm = DiagonalGMM(n_components=2).fit(X)
    err, _, _ = match_means(gmm.means_, np.array([[-5.0, 5.0], [5.0, -5.0]]))
    assert err < 0.2


def test_variance_floor_binds_on_a_collapsed_component():
    rng = np.random.default_rng(7)
    X = np.r_[np.zeros((200, 2)), rng.normal(10.0, 1.0, (200, 2))]
    gmm = DiagonalGMM(n_components=2, n_iter=50, tol=0.0, variance_floor=0.01).fit(X)
    floor = 0.01 * X.var(axis=0)
    assert np.all(gmm.variances_ >= floor * (1 - 1e-12))
    collapsed = np.argmin(np.abs(gmm.means_).sum(axis=1))
    np.testing.assert_allclose(gmm.means_[collapsed], 0.0, atol=1e-8)
    np.testing.assert_allclose(gmm.variances_[collapsed], floor, rtol=1e-10)
    np.testing.assert_allclose(gmm.weights_[collapsed], 0.5, atol=1e-6)


def test_non_convergence_is_a_warning():
    X = clusters([[0, 0], [3, 3], [-3, 3], [0, -4]], 100, 1.0, seed=8)
    with pytest.warns(ConvergenceWarning, match="n_iter=2"):
        DiagonalGMM(n_components=4, n_iter=2, tol=0.0).fit(X)


def test_progress_callback_reports_each_final_iteration():
    X = clusters([[0, 0], [8, 8]], 100, 1.0, seed=9)
    calls = []
    gmm = DiagonalGMM(n_components=2, n_iter=5, tol=0.0).fit(
        X, progress=lambda stage, it, avg: calls.append((stage, it, avg)))
    final = [avg for stage, _, avg in calls if not stage.startswith("split")]
    assert final == gmm.loglik_history_
    assert any(stage.startswith("split") for stage, _, _ in calls)


# ---------------------------------------------------------------------------
# reproducibility and subsampling


def test_same_seed_gives_identical_parameters_and_other_seed_other_subset():
    X = clusters([[0, 0], [6, 6], [-6, 6], [6, -6]], 250, 1.0, seed=10)
    kw = dict(n_components=4, n_iter=5, max_frames=300)
    a = DiagonalGMM(random_state=3, **kw).fit(X)
    b = DiagonalGMM(random_state=3, **kw).fit(X)
    c = DiagonalGMM(random_state=4, **kw).fit(X)
    for name in ("weights_", "means_", "variances_"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.loglik_history_ == b.loglik_history_
    assert not np.array_equal(a.means_, c.means_)


def test_random_state_none_means_zero():
    X = clusters([[0, 0], [6, 6]], 200, 1.0, seed=11)
    kw = dict(n_components=2, n_iter=5, max_frames=150)
    np.testing.assert_array_equal(DiagonalGMM(random_state=None, **kw).fit(X).means_,
                                  DiagonalGMM(random_state=0, **kw).fit(X).means_)


def test_max_frames_at_or_above_the_data_size_uses_every_frame_in_order():
    X = clusters([[0, 0], [6, 6]], 200, 1.0, seed=12)
    a = DiagonalGMM(n_components=2, n_iter=5, max_frames=400).fit(X)
    b = DiagonalGMM(n_components=2, n_iter=5, max_frames=10_000, random_state=99).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_fit_does_not_modify_its_input_and_returns_self():
    X = clusters([[0, 0], [6, 6]], 100, 1.0, seed=13)
    before = X.copy()
    gmm = DiagonalGMM(n_components=2, n_iter=3)
    assert gmm.fit(X) is gmm
    np.testing.assert_array_equal(X, before)


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("C", [1, 4, 16])
def test_too_few_frames_raises_and_the_boundary_is_two_per_component(C):
    X = np.random.default_rng(14).standard_normal((2 * C, 2))
    DiagonalGMM(n_components=C, n_iter=2).fit(X)
    with pytest.raises(ParameterError, match=rf"{2 * C - 1} frames; n_components={C}"):
        DiagonalGMM(n_components=C).fit(X[:-1])


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_components=0), "n_components"),
    (dict(n_components=2.0), "n_components"),
    (dict(n_components=2, n_iter=0), "n_iter"),
    (dict(n_components=2, n_iter_split=0), "n_iter_split"),
    (dict(n_components=2, variance_floor=0.0), "variance_floor"),
    (dict(n_components=2, variance_floor=1.5), "variance_floor"),
    (dict(n_components=2, max_frames=0), "max_frames"),
    (dict(n_components=2, tol=-1.0), "tol"),
    (dict(n_components=2, random_state=-1), "random_state"),
])
def test_invalid_parameters_raise_parameter_error_at_fit(kwargs, name):
    gmm = DiagonalGMM(**kwargs)  # __init__ only stores, fit checks
    with pytest.raises(ParameterError, match=name):
        gmm.fit(np.random.default_rng(0).standard_normal((100, 2)))


@pytest.mark.parametrize("X", [np.zeros(10), np.full((10, 2), np.nan), [["a", "b"]]])
def test_bad_frames_raise_parameter_error(X):
    with pytest.raises(ParameterError, match="X"):
        DiagonalGMM(n_components=1).fit(X)


def test_unfitted_model_raises_not_fitted():
    gmm = DiagonalGMM(n_components=2)
    with pytest.raises(NotFittedError, match="fit"):
        gmm.params
    with pytest.raises(NotFittedError):
        gmm.score(np.zeros((3, 2)))


def test_score_rejects_frames_of_another_dimension():
    gmm = DiagonalGMM(n_components=1).fit(np.random.default_rng(0).standard_normal((20, 3)))
    with pytest.raises(ParameterError, match="columns"):
        gmm.score(np.zeros((5, 2)))


def test_set_fitted_round_trip_and_validation():
    w, mu, var = random_params(3, 2, seed=15)
    gmm = DiagonalGMM().set_fitted(w, mu, var)
    assert len(gmm.weights_) == 3
    assert gmm.n_components == 256  # installing arrays leaves the hyper-parameters alone
    X = np.random.default_rng(16).standard_normal((10, 2))
    np.testing.assert_allclose(gmm.score_samples(X),
                               logsumexp(log_likelihoods(X, w, mu, var), axis=1))
    with pytest.raises(ParameterError, match="disagree"):
        DiagonalGMM().set_fitted(w[:2], mu, var)
    with pytest.raises(ParameterError, match="positive"):
        DiagonalGMM().set_fitted(w, mu, -var)


# ---------------------------------------------------------------------------
# convergence, reported as scikit-learn does


def test_converged_and_n_iter_when_tol_is_met():
    X = clusters([[0, 0], [8, 8]], 200, 1.0, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gmm = DiagonalGMM(n_components=2, n_iter=100, tol=1e-3).fit(X)
    assert gmm.converged_ is True
    assert 2 <= gmm.n_iter_ < 100
    assert gmm.n_iter_ == len(gmm.loglik_history_)
    assert gmm.loglik_history_[-1] - gmm.loglik_history_[-2] < 1e-3


def test_not_converged_warns_with_sklearn_convergence_warning():
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    X = clusters([[0, 0], [3, 3], [-3, 3], [0, -4]], 100, 1.0, seed=8)
    with pytest.warns(SklearnConvergenceWarning, match="n_iter=3"):
        gmm = DiagonalGMM(n_components=4, n_iter=3, tol=0.0).fit(X)
    assert gmm.converged_ is False
    assert gmm.n_iter_ == 3 == len(gmm.loglik_history_)


def test_one_iteration_cannot_judge_convergence_and_says_so():
    X = clusters([[0, 0], [8, 8]], 100, 1.0, seed=13)
    with pytest.warns(ConvergenceWarning):
        gmm = DiagonalGMM(n_components=2, n_iter=1).fit(X)
    assert (gmm.converged_, gmm.n_iter_) == (False, 1)
