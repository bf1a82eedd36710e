"""Tests of vpcore.plda: two-covariance PLDA training and closed-form LLR scoring.

Data come from a KNOWN model: x = mu + y_s + e with y_s ~ N(0, B), e ~ N(0, W).
"""

import functools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from vpcore.errors import ConvergenceWarning, ModelError, NotFittedError, ParameterError
from vpcore.plda import PLDA


def random_spd(R, rng, eig_low, eig_high):
    Q, _ = np.linalg.qr(rng.standard_normal((R, R)))
    return (Q * rng.uniform(eig_low, eig_high, R)) @ Q.T


def model(R=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, R), random_spd(R, rng, 1.0, 4.0), random_spd(R, rng, 0.5, 2.0)


def generate(n_speakers, per_speaker, R=4, seed=0, model_seed=0):
    mu, B, W = model(R, model_seed)
    rng = np.random.default_rng(seed + 1)
    y = rng.multivariate_normal(np.zeros(R), B, n_speakers)
    counts = np.broadcast_to(per_speaker, (n_speakers,))
    labels = np.repeat(np.arange(n_speakers), counts)
    X = mu + y[labels] + rng.multivariate_normal(np.zeros(R), W, len(labels))
    return X, labels, (mu, B, W)


def joint_cov(n, B, W):
    """Covariance of n stacked vectors of one speaker."""
    return np.kron(np.ones((n, n)), B) + np.kron(np.eye(n), W)


def brute_force_llr(enrol, probe, mu, B, W):
    """log p(enrol, probe | same) - log p(enrol | one speaker) - log p(probe)."""
    n, R = enrol.shape
    stacked = np.concatenate([enrol.ravel(), probe]) - np.tile(mu, n + 1)
    same = multivariate_normal(np.zeros((n + 1) * R), joint_cov(n + 1, B, W)).logpdf(stacked)
    enrol_alone = multivariate_normal(np.zeros(n * R), joint_cov(n, B, W)).logpdf(stacked[:-R])
    probe_alone = multivariate_normal(np.zeros(R), B + W).logpdf(stacked[-R:])
    return same - enrol_alone - probe_alone


def log_likelihood(X, labels, mu, B, W):
    """Marginal log-likelihood of the data under a two-covariance model."""
    total = 0.0
    for s in np.unique(labels):
        Xs = X[labels == s]
        n, R = Xs.shape
        total += multivariate_normal(np.tile(mu, n), joint_cov(n, B, W)).logpdf(Xs.ravel())
    return total


def rel_err(estimate, truth):
    return np.linalg.norm(estimate - truth) / np.linalg.norm(truth)


@functools.lru_cache(maxsize=None)
def known_model(R=4, seed=3):
    mu, B, W = model(R, seed)
    return PLDA().set_fitted(mu, B, W), (mu, B, W)


# ---------------------------------------------------------------------------
# training


def test_recovers_the_between_and_within_covariances():
    # 1500 speakers: the relative Frobenius sampling error of a 4x4 covariance
    # from n draws is about sqrt((tr(S)^2 + tr(S^2)) / n) / |S|_F, ~13 % for B at
    # n=300 already, so 300 speakers would test the data, not the estimator.
    X, labels, (mu, B, W) = generate(1500, 6, seed=0)
    plda = PLDA(n_iter=20).fit(X, labels)
    assert rel_err(plda.between_, B) < 0.15
    assert rel_err(plda.within_, W) < 0.15
    np.testing.assert_allclose(plda.mean_, mu, atol=0.3)


def test_300_speakers_by_6_recover_within_well_and_between_within_sampling_error():
    X, labels, (mu, B, W) = generate(300, 6, seed=1)
    plda = PLDA(n_iter=20).fit(X, labels)
    assert rel_err(plda.within_, W) < 0.15
    assert rel_err(plda.between_, B) < 0.3


def test_em_reaches_the_closed_form_ml_estimate_on_balanced_data():
    # With K vectors for every speaker the ML estimates are closed form:
    # W = within scatter / (S (K - 1)); B = cov of speaker means - W / K.
    S, K = 200, 5
    X, labels, _ = generate(S, K, seed=2)
    means = np.stack([X[labels == s].mean(0) for s in range(S)])
    W_ml = sum((X[labels == s] - means[s]).T @ (X[labels == s] - means[s])
               for s in range(S)) / (S * (K - 1))
    centred = means - X.mean(0)
    B_ml = centred.T @ centred / S - W_ml / K
    plda = PLDA(n_iter=100).fit(X, labels)
    np.testing.assert_allclose(plda.within_, W_ml, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(plda.between_, B_ml, rtol=1e-6, atol=1e-8)


def test_em_never_lowers_the_likelihood_on_unbalanced_data():
    rng = np.random.default_rng(4)
    X, labels, _ = generate(40, rng.integers(2, 7, 40), R=3, seed=4)
    values = []
    for n_iter in (0, 1, 2, 4, 8, 16):
        plda = PLDA(n_iter=n_iter).fit(X, labels)
        values.append(log_likelihood(X, labels, plda.mean_, plda.between_, plda.within_))
    assert np.all(np.diff(values) >= -1e-8 * abs(values[0]))
    assert values[-1] > values[0]


def test_diagonalising_transform_whitens_w_and_diagonalises_b():
    X, labels, _ = generate(100, 4, seed=5)
    plda = PLDA().fit(X, labels)
    V = plda.transform_
    np.testing.assert_allclose(V.T @ plda.within_ @ V, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(V.T @ plda.between_ @ V, np.diag(plda.psi_), atol=1e-9)
    assert np.all(plda.psi_ > 0)


def test_fitted_covariances_are_symmetric_positive_definite():
    X, labels, _ = generate(30, 3, seed=6)
    plda = PLDA().fit(X, labels)
    for M in (plda.between_, plda.within_):
        np.testing.assert_allclose(M, M.T)
        assert np.linalg.eigvalsh(M).min() > 0


def test_between_covariance_stays_positive_when_speakers_do_not_differ():
    # All "speakers" from one distribution: the closed-form start gives a B with
    # negative eigenvalues; it must be clipped, not break scoring.
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 3))
    labels = np.repeat(np.arange(20), 3)
    plda = PLDA().fit(X, labels)
    assert np.linalg.eigvalsh(plda.between_).min() > 0
    assert np.isfinite(plda.score(X[:2], X[5]))


# ---------------------------------------------------------------------------
# scoring against the joint Gaussian


@pytest.mark.parametrize("n", [1, 2, 3])
def test_score_equals_the_brute_force_llr_of_the_joint_gaussian(n):
    plda, (mu, B, W) = known_model()
    rng = np.random.default_rng(10 + n)
    for _ in range(5):
        enrol = mu + rng.normal(0, 2, (n, 4))
        probe = mu + rng.normal(0, 2, 4)
        assert plda.score(enrol, probe) == pytest.approx(
            brute_force_llr(enrol, probe, mu, B, W), rel=1e-8, abs=1e-8)


def test_score_of_a_trained_model_equals_the_brute_force_llr_of_its_parameters():
    X, labels, _ = generate(50, 4, seed=12)
    plda = PLDA().fit(X, labels)
    enrol, probe = X[:3], X[10]
    assert plda.score(enrol, probe) == pytest.approx(
        brute_force_llr(enrol, probe, plda.mean_, plda.between_, plda.within_), rel=1e-7)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.1, 5.0))
def test_llr_of_one_versus_one_is_symmetric(seed, spread):
    plda, (mu, _, _) = known_model()
    rng = np.random.default_rng(seed)
    x1, x2 = mu + rng.normal(0, spread, (2, 4))
    assert plda.score(x1[None], x2) == pytest.approx(plda.score(x2[None], x1), rel=1e-9,
                                                     abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_enrolment_order_does_not_matter(seed, n):
    plda, (mu, _, _) = known_model()
    rng = np.random.default_rng(seed)
    enrol = mu + rng.normal(0, 2, (n, 4))
    probe = mu + rng.normal(0, 2, 4)
    assert plda.score(enrol[::-1], probe) == pytest.approx(plda.score(enrol, probe),
                                                           rel=1e-9, abs=1e-9)


def test_score_projected_of_many_enrolments_equals_looping_score():
    plda, (mu, _, _) = known_model()
    rng = np.random.default_rng(13)
    n = 3
    enrolments = mu + rng.normal(0, 2, (7, n, 4))
    probes = mu + rng.normal(0, 2, (5, 4))
    means = np.stack([plda.project(e).mean(axis=0) for e in enrolments])
    matrix = plda.score_projected(means, n, plda.project(probes))
    assert matrix.shape == (7, 5)
    expected = np.array([[plda.score(e, p) for p in probes] for e in enrolments])
    np.testing.assert_allclose(matrix, expected, rtol=1e-10, atol=1e-10)


def test_one_probe_given_as_a_row_or_a_vector_scores_the_same():
    plda, (mu, _, _) = known_model()
    x = mu + np.arange(4.0)
    assert plda.score(x[None], x) == plda.score(x[None], x[None])


def test_same_speaker_scores_above_different_speaker_scores():
    X, labels, _ = generate(200, 4, seed=14)
    plda = PLDA().fit(X[labels < 150], labels[labels < 150])
    Xt, lt = X[labels >= 150], labels[labels >= 150]
    enrol = {s: Xt[lt == s][:3] for s in np.unique(lt)}
    probe = {s: Xt[lt == s][3] for s in np.unique(lt)}
    speakers = list(enrol)
    target = [plda.score(enrol[s], probe[s]) for s in speakers]
    non = [plda.score(enrol[s], probe[t]) for s in speakers for t in speakers[:10] if t != s]
    assert np.mean(target) > np.mean(non) + 3.0
    assert np.mean(target) > 0 > np.mean(non)
    # and almost every target beats the median non-target
    assert np.mean(np.array(target) > np.median(non)) > 0.9


def test_more_enrolment_vectors_make_a_genuine_trial_more_certain():
    plda, (mu, B, W) = known_model()
    rng = np.random.default_rng(15)
    y = rng.multivariate_normal(np.zeros(4), B)
    draws = mu + y + rng.multivariate_normal(np.zeros(4), W, (400, 4))
    probes = mu + y + rng.multivariate_normal(np.zeros(4), W, 400)
    mean_llr = [np.mean([plda.score(d[:n], p) for d, p in zip(draws, probes)])
                for n in (1, 2, 4)]
    assert mean_llr[0] < mean_llr[1] < mean_llr[2]


def test_enrol_terms_interpolate_between_no_and_perfect_knowledge():
    plda, _ = known_model()
    a1, v1 = plda.enrol_terms(1)
    a_big, v_big = plda.enrol_terms(1e9)
    assert np.all((0 < a1) & (a1 < 1))
    np.testing.assert_allclose(a_big, 1.0, rtol=1e-6)
    np.testing.assert_allclose(v_big, 1.0, rtol=1e-6)  # only the within noise is left
    np.testing.assert_allclose(plda.enrol_terms(0)[1], 1.0 + plda.psi_)  # prior predictive


# ---------------------------------------------------------------------------
# errors


def test_one_vector_per_speaker_is_rejected():
    X = np.random.default_rng(16).standard_normal((10, 3))
    with pytest.raises(ParameterError, match="several vectors"):
        PLDA().fit(X, np.arange(10))


def test_one_speaker_is_rejected():
    X = np.random.default_rng(17).standard_normal((10, 3))
    with pytest.raises(ParameterError, match="1 distinct speaker"):
        PLDA().fit(X, np.zeros(10))


@pytest.mark.parametrize("X, y, match", [
    (np.zeros((2, 3)), [0, 1], "at least 3"),
    (np.zeros(6), [0, 0, 1, 1, 2, 2], "2-D"),
    (np.full((6, 2), np.nan), [0, 0, 1, 1, 2, 2], "NaN"),
    (np.zeros((6, 2)), [0, 0, 1, 1, 2], "y has shape"),
])
def test_bad_training_data_is_rejected(X, y, match):
    with pytest.raises(ParameterError, match=match):
        PLDA().fit(X, y)


def test_negative_n_iter_is_rejected():
    X, labels, _ = generate(10, 3, seed=18)
    with pytest.raises(ParameterError, match="n_iter"):
        PLDA(n_iter=-1).fit(X, labels)


def test_unfitted_model_and_wrong_dimension_are_rejected():
    with pytest.raises(NotFittedError):
        PLDA().score(np.zeros((1, 4)), np.zeros(4))
    plda, _ = known_model()
    with pytest.raises(ParameterError, match="columns"):
        plda.score(np.zeros((1, 3)), np.zeros(3))


def test_set_fitted_rejects_disagreeing_shapes():
    mu, B, W = model()
    with pytest.raises(ModelError, match="shape"):
        PLDA().set_fitted(mu[:3], B, W)


# ---------------------------------------------------------------------------
# convergence, reported as scikit-learn does


def test_tol_stops_em_and_reports_convergence():
    X, labels, _ = generate(200, 5, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        plda = PLDA(n_iter=500, tol=1e-6).fit(X, labels)
    assert plda.converged_ is True
    assert 1 <= plda.n_iter_ < 500
    # it stopped after the first step that moved both covariances by less than tol
    fixed = PLDA(n_iter=plda.n_iter_).fit(X, labels)
    np.testing.assert_array_equal(fixed.within_, plda.within_)
    before = PLDA(n_iter=plda.n_iter_ - 1).fit(X, labels)
    assert rel_err(plda.within_, before.within_) < 1e-6
    assert rel_err(plda.between_, before.between_) < 1e-6


def test_tol_not_met_warns_with_sklearn_convergence_warning():
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    X, labels, _ = generate(40, 3, seed=5)
    with pytest.warns(SklearnConvergenceWarning, match="n_iter=2"):
        plda = PLDA(n_iter=2, tol=0.0).fit(X, labels)
    assert (plda.converged_, plda.n_iter_) == (False, 2)


def test_without_tol_every_step_runs_and_nothing_is_claimed():
    X, labels, _ = generate(40, 3, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        plda = PLDA(n_iter=3).fit(X, labels)
    assert (plda.converged_, plda.n_iter_) == (False, 3)
    assert PLDA(n_iter=0).fit(X, labels).n_iter_ == 0
