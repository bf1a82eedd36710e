"""Baselines: GMM-UBM MAP adaptation and LLR scoring, i-vector cosine scoring."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import multivariate_normal

from vpcore.baselines import cosine_score, gmm_ubm_llr, gmm_ubm_llr_many, map_adapt_means
from vpcore.errors import ParameterError, VpcoreError
from vpcore.features import extract_features
from vpcore.metrics import eer
from vpcore.synth import SyntheticSpeaker, synthesize


def random_ubm(C=8, D=3, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, C)
    return (weights / weights.sum(), rng.normal(0, 3, (C, D)), rng.uniform(0.5, 2.0, (C, D)))


def reference_posteriors(ubm, X):
    """Component posteriors with scipy's densities (independent of vpcore.ubm)."""
    weights, means, variances = ubm
    dens = np.stack([w * multivariate_normal(m, np.diag(v)).pdf(X)
                     for w, m, v in zip(weights, means, variances)], axis=1)
    return dens / dens.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------- MAP ---

def test_map_infinite_relevance_returns_ubm_means():
    ubm = random_ubm()
    X = np.random.default_rng(1).normal(0, 3, (50, 3))
    np.testing.assert_array_equal(map_adapt_means(ubm, X, relevance=np.inf), ubm[1])
    np.testing.assert_allclose(map_adapt_means(ubm, X, relevance=1e12), ubm[1], atol=1e-8)


def test_map_zero_relevance_gives_data_means_of_responsible_components():
    means = np.array([[0.0, 0.0], [100.0, 100.0], [-100.0, 50.0]])
    ubm = (np.array([0.4, 0.3, 0.3]), means, np.ones((3, 2)))
    X = np.random.default_rng(2).normal([1.0, -0.5], 0.7, (200, 2))  # all near component 0
    adapted = map_adapt_means(ubm, X, relevance=0.0)
    np.testing.assert_allclose(adapted[0], X.mean(axis=0), rtol=1e-10)
    np.testing.assert_array_equal(adapted[1:], means[1:])  # no occupancy: unchanged


def test_map_matches_reynolds_formula_with_scipy_posteriors():
    ubm = random_ubm(C=4, D=2, seed=3)
    X = np.random.default_rng(4).normal(0, 3, (300, 2))
    r = 16.0
    gamma = reference_posteriors(ubm, X)
    n = gamma.sum(axis=0)
    data_mean = gamma.T @ X / n[:, None]
    alpha = (n / (n + r))[:, None]
    expected = alpha * data_mean + (1 - alpha) * ubm[1]
    np.testing.assert_allclose(map_adapt_means(ubm, X, relevance=r), expected, rtol=1e-7)
    # relevance 0 is the data mean of every component that saw frames
    np.testing.assert_allclose(map_adapt_means(ubm, X, relevance=0.0), data_mean, rtol=1e-7)


def test_map_moves_means_monotonically_with_relevance():
    ubm = random_ubm()
    X = np.random.default_rng(5).normal(1.0, 2.0, (80, 3))
    dist = [np.abs(map_adapt_means(ubm, X, r) - ubm[1]).sum() for r in (0.0, 1.0, 16.0, 1e3)]
    assert all(a >= b for a, b in zip(dist, dist[1:]))


# ------------------------------------------------------------------------------- LLR ---

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), top_k=st.sampled_from([None, 1, 3, 8]))
def test_llr_of_the_ubm_itself_is_zero(seed, top_k):
    ubm = random_ubm(seed=seed)
    X = np.random.default_rng(seed + 1).normal(0, 4, (25, 3))
    assert gmm_ubm_llr(ubm, ubm[1].copy(), X, top_k=top_k) == 0.0


def test_llr_matches_scipy_reference():
    ubm = random_ubm(C=4, D=2, seed=6)
    rng = np.random.default_rng(7)
    adapted = ubm[1] + rng.normal(0, 0.5, ubm[1].shape)
    X = rng.normal(0, 3, (40, 2))

    def loglik(means):
        weights, _, variances = ubm
        dens = sum(w * multivariate_normal(m, np.diag(v)).pdf(X)
                   for w, m, v in zip(weights, means, variances))
        return np.log(dens)

    expected = float(np.mean(loglik(adapted) - loglik(ubm[1])))
    assert gmm_ubm_llr(ubm, adapted, X) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # top-k with k = C is the full sum
    assert gmm_ubm_llr(ubm, adapted, X, top_k=4) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_llr_many_equals_one_at_a_time():
    ubm = random_ubm(C=16, D=4, seed=8)
    rng = np.random.default_rng(9)
    A = ubm[1][None] + rng.normal(0, 0.3, (5, 16, 4))
    X = rng.normal(0, 3, (30, 4))
    for top_k in (None, 5):
        many = gmm_ubm_llr_many(ubm, A, X, top_k=top_k)
        one = [gmm_ubm_llr(ubm, a, X, top_k=top_k) for a in A]
        np.testing.assert_allclose(many, one, rtol=1e-12)


def test_top_k_approximates_full_scoring():
    ubm = random_ubm(C=16, D=4, seed=10)
    rng = np.random.default_rng(11)
    X = rng.normal(0, 3, (100, 4))
    adapted = map_adapt_means(ubm, X[:50])
    full = gmm_ubm_llr(ubm, adapted, X[50:])
    assert gmm_ubm_llr(ubm, adapted, X[50:], top_k=5) == pytest.approx(full, abs=0.05)


# ----------------------------------------------------------- on synthetic voices ---

@pytest.fixture(scope="module")
def voices_features(small_model):
    """Features of 6 synthetic voices x 4 utterances (3 enrolment + 1 test)."""
    opts = small_model.feature_options_
    feats = {}
    for spk in range(6):
        voice = SyntheticSpeaker.from_seed(500 + spk)
        feats[spk] = [extract_features(synthesize(voice, duration=4.0, random_state=u), opts)
                      for u in range(4)]
    return feats


def _trials(voices_features, score):
    scores, labels = [], []
    for e, e_feats in voices_features.items():
        for t, t_feats in voices_features.items():
            scores.append(score(e_feats[:3], t_feats[3]))
            labels.append(e == t)
    return np.array(scores), np.array(labels)


def test_gmm_ubm_same_speaker_scores_higher(small_model, voices_features):
    ubm = small_model.ubm_.params

    def score(enrol, test):
        return gmm_ubm_llr(ubm, map_adapt_means(ubm, np.concatenate(enrol)), test)

    scores, labels = _trials(voices_features, score)
    assert scores[labels].mean() > scores[~labels].mean()
    assert eer(scores, labels) < 0.25


def test_ivector_cosine_same_speaker_scores_higher(small_model, voices_features):
    from vpcore.stats import compute_stats

    def ivector(f):
        s = compute_stats(small_model.ubm_.params, f)
        return small_model.tv_.transform_one(s.n, s.f)

    mean = small_model.backend_.mean_

    def score(enrol, test):
        return cosine_score(np.stack([ivector(f) for f in enrol]), ivector(test), mean=mean)

    scores, labels = _trials(voices_features, score)
    assert np.all((scores >= -1) & (scores <= 1))
    assert scores[labels].mean() > scores[~labels].mean()
    assert eer(scores, labels) < 0.25


# ------------------------------------------------------------------------ cosine ---

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(a=arrays(np.float64, 5, elements=finite), b=arrays(np.float64, 5, elements=finite))
def test_cosine_is_bounded_and_symmetric(a, b):
    ab = cosine_score(a[None, :], b)
    ba = cosine_score(b[None, :], a)
    assert -1.0 <= ab <= 1.0
    assert ab == pytest.approx(ba, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(E=arrays(np.float64, (3, 4), elements=finite), t=arrays(np.float64, 4, elements=finite),
       m=arrays(np.float64, 4, elements=st.floats(-10, 10)))
def test_cosine_bounded_with_centring_and_projection(E, t, m):
    P = np.arange(12, dtype=float).reshape(4, 3) - 5
    assert -1.0 <= cosine_score(E, t, mean=m, projection=P) <= 1.0


def test_cosine_known_values():
    assert cosine_score(np.array([[1.0, 0.0]]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine_score(np.array([[1.0, 0.0]]), np.array([-3.0, 0.0])) == pytest.approx(-1.0)
    assert cosine_score(np.array([[1.0, 0.0]]), np.array([0.0, 5.0])) == pytest.approx(0.0)
    # mean of the enrolment's unit vectors: (1,0) and (0,1) average to the diagonal
    E = np.array([[10.0, 0.0], [0.0, 0.1]])
    assert cosine_score(E, np.array([1.0, 1.0])) == pytest.approx(1.0)
    # centring: both vectors are the centre plus opposite offsets
    assert cosine_score(np.array([[2.0, 1.0]]), np.array([0.0, 1.0]),
                        mean=np.array([1.0, 1.0])) == pytest.approx(-1.0)
    assert cosine_score(np.zeros((1, 3)), np.ones(3)) == 0.0  # zero vector scores 0


# ------------------------------------------------------------------------ errors ---

@pytest.mark.parametrize("call, words", [
    (lambda u, X: map_adapt_means(u, X, relevance=-1.0), "relevance=-1.0"),
    (lambda u, X: map_adapt_means(u, X, relevance=float("nan")), "relevance=nan"),
    (lambda u, X: map_adapt_means(u, X, relevance=True), "relevance=True"),
    (lambda u, X: map_adapt_means(u, X[:, :2]), "X has 2 columns"),
    (lambda u, X: map_adapt_means(u, X[:0]), "X has 0 rows"),
    (lambda u, X: map_adapt_means((u[0], u[1]), X), "ubm_params"),
    (lambda u, X: map_adapt_means((u[0][:-1], u[1], u[2]), X), "ubm_params disagree"),
    (lambda u, X: map_adapt_means((u[0], u[1], -u[2]), X), "variances"),
    (lambda u, X: gmm_ubm_llr(u, u[1][:-1], X), "adapted_means has shape"),
    (lambda u, X: gmm_ubm_llr(u, u[1], X, top_k=0), "top_k=0"),
    (lambda u, X: gmm_ubm_llr(u, u[1], X, top_k=99), "top_k=99"),
    (lambda u, X: gmm_ubm_llr(u, u[1], X * np.nan), "NaN"),
    (lambda u, X: cosine_score(np.ones(3), np.ones(3)), "enrol_ivectors must be 2-D"),
    (lambda u, X: cosine_score(np.ones((2, 3)), np.ones(4)), "test_ivector has shape"),
    (lambda u, X: cosine_score(np.ones((2, 3)), np.ones(3), mean=np.ones(2)), "mean has shape"),
    (lambda u, X: cosine_score(np.ones((2, 3)), np.ones(3), projection=np.ones((2, 2))),
     "projection has shape"),
])
def test_bad_input_raises_parameter_error_naming_it(call, words):
    ubm = random_ubm()
    X = np.random.default_rng(0).normal(0, 1, (10, 3))
    with pytest.raises(ParameterError, match=words.replace("(", r"\(")) as info:
        call(ubm, X)
    assert isinstance(info.value, (VpcoreError, ValueError))
