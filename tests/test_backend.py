"""Tests of vpcore.backend: centring, LDA, WCCN, length normalisation and the folded Backend."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from vpcore.backend import LDA, WCCN, Backend, Center, LengthNorm, within_class_scatter
from vpcore.errors import NotFittedError, ParameterError


def random_spd(dim, rng, scale=1.0):
    A = rng.standard_normal((dim, dim))
    return scale * (A @ A.T / dim + 0.1 * np.eye(dim))


def speakers(n_speakers=40, per_speaker=8, dim=10, seed=0, offset=3.0):
    """Vectors of known speakers: x = offset + y_s + e with random SPD covariances."""
    rng = np.random.default_rng(seed)
    B, W = random_spd(dim, rng, 4.0), random_spd(dim, rng)
    y = rng.multivariate_normal(np.zeros(dim), B, n_speakers)
    labels = np.repeat(np.arange(n_speakers), per_speaker)
    X = offset + y[labels] + rng.multivariate_normal(np.zeros(dim), W, len(labels))
    return X, labels


def within_cov(Z, y):
    _, inverse = np.unique(y, return_inverse=True)
    return within_class_scatter(Z, inverse, inverse.max() + 1)[0]


def between_cov(Z, y):
    _, inverse = np.unique(y, return_inverse=True)
    _, means, counts = within_class_scatter(Z, inverse, inverse.max() + 1)
    d = (means - Z.mean(0)) * np.sqrt(counts[:, None] / len(Z))
    return d.T @ d


# ---------------------------------------------------------------------------
# within_class_scatter against a direct computation


def test_within_class_scatter_matches_a_loop():
    X, y = speakers(5, 4, 3, seed=1)
    sw, means, counts = within_class_scatter(X, y, 5)
    expected = sum((X[y == s] - X[y == s].mean(0)).T @ (X[y == s] - X[y == s].mean(0))
                   for s in range(5)) / len(X)
    np.testing.assert_allclose(sw, expected)
    np.testing.assert_allclose(means, [X[y == s].mean(0) for s in range(5)])
    np.testing.assert_array_equal(counts, 4)


# ---------------------------------------------------------------------------
# Center


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 6)),
                  elements=st.floats(-1e3, 1e3)))
def test_center_gives_zero_mean_on_training_data(X):
    Z = Center().fit(X).transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-9 * max(1.0, np.abs(X).max()))


def test_center_subtracts_the_training_mean_from_new_data():
    X, _ = speakers(seed=2)
    c = Center().fit(X)
    new = np.random.default_rng(3).standard_normal((4, 10))
    np.testing.assert_allclose(c.transform(new), new - X.mean(0))


# ---------------------------------------------------------------------------
# LDA


@pytest.mark.parametrize("k", [1, 4, 10])
def test_lda_whitens_the_within_class_covariance_and_keeps_k_dims(k):
    X, y = speakers(seed=4)
    lda = LDA(n_components=k).fit(X, y)
    Z = lda.transform(X)
    assert Z.shape == (len(X), k)
    np.testing.assert_allclose(within_cov(Z, y), np.eye(k), atol=1e-4)
    # between-class covariance is diagonal with the generalised eigenvalues, largest first
    sb = between_cov(Z, y)
    np.testing.assert_allclose(sb, np.diag(lda.explained_ratio_), atol=1e-6 * sb.max())
    assert np.all(np.diff(lda.explained_ratio_) <= 1e-12)


def test_lda_keeps_the_discriminative_direction_and_drops_noise():
    # dimension 0 separates speakers; dimensions 1.. are pure within-speaker noise
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(30), 6)
    X = rng.standard_normal((len(labels), 5)) * [1.0, 5.0, 5.0, 5.0, 5.0]
    X[:, 0] += 10.0 * rng.standard_normal(30)[labels]
    direction = LDA(n_components=1).fit(X, labels).components_[:, 0]
    assert abs(direction[0]) / np.linalg.norm(direction) > 0.99


def test_lda_is_invariant_to_an_invertible_linear_map_of_the_input():
    X, y = speakers(seed=6)
    A = np.random.default_rng(7).standard_normal((10, 10)) + 3 * np.eye(10)
    # reg=0: the diagonal loading is relative to the mean eigenvalue of S_w, which a
    # linear map changes, so only the unregularised LDA is exactly invariant
    Z1 = LDA(n_components=4, reg=0.0).fit(X, y).transform(X)
    Z2 = LDA(n_components=4, reg=0.0).fit(X @ A, y).transform(X @ A)
    # the same subspace up to the sign of each (distinct-eigenvalue) direction
    np.testing.assert_allclose(np.abs(Z1 - Z1.mean(0)), np.abs(Z2 - Z2.mean(0)),
                               rtol=1e-8, atol=1e-8)


def test_lda_regularisation_changes_little():
    X, y = speakers(seed=6)
    a = LDA(n_components=4).fit(X, y)
    b = LDA(n_components=4, reg=0.0).fit(X, y)
    np.testing.assert_allclose(a.explained_ratio_, b.explained_ratio_, rtol=1e-4)


# ---------------------------------------------------------------------------
# WCCN and length normalisation


def test_wccn_gives_identity_within_class_covariance():
    X, y = speakers(seed=8)
    Z = WCCN().fit(X, y).transform(X)
    np.testing.assert_allclose(within_cov(Z, y), np.eye(10), atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 12)),
                  elements=st.floats(-1e6, 1e6)))
@example(X=np.array([[5.08081199e-159]]))  # its square is subnormal
@example(X=np.array([[1e-300, -3e-300], [1e300, 2e300]]))  # squares under/overflow
def test_length_norm_gives_norm_sqrt_r_and_keeps_direction(X):
    Z = LengthNorm().fit(X).transform(X)
    R = X.shape[1]
    for x, z in zip(X, Z):
        k = np.argmax(np.abs(x))
        if x[k] == 0:  # a zero row stays zero
            np.testing.assert_array_equal(z, 0.0)
            continue
        assert np.linalg.norm(z) == pytest.approx(np.sqrt(R), rel=1e-9)
        # same direction: z = c x with c > 0, read against the largest entry
        assert np.sign(z[k]) == np.sign(x[k])
        np.testing.assert_allclose(z / z[k], x / x[k], rtol=1e-9, atol=1e-12)


def test_length_norm_of_a_zero_row_stays_zero():
    np.testing.assert_array_equal(LengthNorm().transform(np.zeros((2, 3))), 0.0)


# ---------------------------------------------------------------------------
# Backend


def test_backend_equals_the_chain_of_its_stages():
    X, y = speakers(seed=9)
    backend = Backend(lda_dim=5).fit(X, y)
    Z = Center().fit(X).transform(X)
    expected = LengthNorm().transform(LDA(n_components=5).fit(Z, y).transform(Z))
    np.testing.assert_allclose(backend.transform(X), expected, rtol=1e-8, atol=1e-10)
    assert backend.projection_.shape == (10, 5) and backend.mean_.shape == (10,)


def test_backend_output_has_norm_sqrt_r_and_dimension_lda_dim():
    X, y = speakers(seed=10)
    out = Backend(lda_dim=6).fit(X, y).transform(X)
    assert out.shape == (len(X), 6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.sqrt(6))


def test_backend_without_length_norm_whitens_within_class_and_centres():
    X, y = speakers(seed=11)
    out = Backend(lda_dim=4, length_norm=False).fit(X, y).transform(X)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(within_cov(out, y), np.eye(4), atol=1e-4)


def test_backend_lda_dim_is_clipped_to_the_input_dimension():
    X, y = speakers(dim=5, seed=12)
    assert Backend(lda_dim=150).fit(X, y).transform(X).shape == (len(X), 5)


def test_backend_without_lda_is_centring_and_length_norm():
    X, y = speakers(seed=13)
    out = Backend(lda_dim=None).fit(X, y).transform(X)
    expected = LengthNorm().transform(X - X.mean(0))
    np.testing.assert_allclose(out, expected)


def test_wccn_after_lda_changes_nothing_but_regularisation():
    X, y = speakers(seed=14)
    a = Backend(lda_dim=5, length_norm=False).fit(X, y).transform(X)
    b = Backend(lda_dim=5, wccn=True, length_norm=False).fit(X, y).transform(X)
    np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=1e-3, atol=1e-4)


def test_backend_wccn_without_lda_whitens_within_class():
    X, y = speakers(seed=15)
    out = Backend(lda_dim=None, wccn=True, length_norm=False).fit(X, y).transform(X)
    np.testing.assert_allclose(within_cov(out, y), np.eye(10), atol=1e-4)


def test_backend_is_deterministic_and_refitting_gives_the_same_bytes():
    X, y = speakers(seed=16)
    a = Backend(lda_dim=5).fit(X, y)
    b = Backend(lda_dim=5).fit(X.copy(), y.copy())
    assert a.projection_.tobytes() == b.projection_.tobytes()
    assert a.transform(X).tobytes() == b.transform(X).tobytes()
    # one vector alone and within a batch: equal up to BLAS rounding (last bits)
    np.testing.assert_allclose(a.transform(X[:1]), a.transform(X)[:1], rtol=1e-12, atol=1e-14)


def test_string_labels_work_like_integer_labels():
    X, y = speakers(seed=17)
    names = np.array([f"spk{i:03d}" for i in y])
    np.testing.assert_array_equal(Backend(lda_dim=3).fit(X, names).transform(X),
                                  Backend(lda_dim=3).fit(X, y).transform(X))


def test_set_fitted_reproduces_the_fitted_transform():
    X, y = speakers(seed=18)
    fitted = Backend(lda_dim=4).fit(X, y)
    loaded = Backend(lda_dim=4).set_fitted(fitted.mean_, fitted.projection_)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    with pytest.raises(ParameterError, match="projection rows"):
        Backend().set_fitted(fitted.mean_[:3], fitted.projection_)


def test_stages_work_in_a_sklearn_pipeline_and_clone():
    X, y = speakers(seed=19)
    pipe = make_pipeline(Center(), LDA(n_components=3)).fit(X, y)
    expected = Backend(lda_dim=3, length_norm=False).fit(X, y).transform(X)
    np.testing.assert_allclose(pipe.transform(X), expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        make_pipeline(Center(), LDA(n_components=3), LengthNorm()).fit_transform(X, y),
        Backend(lda_dim=3).fit(X, y).transform(X), rtol=1e-8, atol=1e-10)
    cloned = clone(Backend(lda_dim=7, wccn=True))
    assert cloned.get_params() == {"lda_dim": 7, "wccn": True, "length_norm": True}


def test_pipeline_ending_in_length_norm_can_transform_after_fit():
    X, y = speakers(seed=19)
    pipe = make_pipeline(Center(), LDA(n_components=3), LengthNorm()).fit(X, y)
    np.testing.assert_allclose(pipe.transform(X), Backend(lda_dim=3).fit(X, y).transform(X),
                               rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("estimator", [LDA(n_components=2), WCCN(), Backend(lda_dim=2)],
                         ids=["lda", "wccn", "backend"])
def test_one_speaker_is_rejected(estimator):
    X = np.random.default_rng(20).standard_normal((10, 4))
    with pytest.raises(ParameterError, match="1 distinct speaker"):
        estimator.fit(X, np.zeros(10))


@pytest.mark.parametrize("estimator", [LDA(n_components=2), WCCN(), Backend(lda_dim=2)],
                         ids=["lda", "wccn", "backend"])
def test_labels_of_the_wrong_length_are_rejected(estimator):
    X = np.random.default_rng(21).standard_normal((10, 4))
    with pytest.raises(ParameterError, match="y has shape"):
        estimator.fit(X, np.arange(9) % 3)
    with pytest.raises(ParameterError, match="y has shape"):
        estimator.fit(X, (np.arange(10) % 3)[:, None])


@pytest.mark.parametrize("X", [np.zeros(10), np.zeros((1, 4)), np.full((6, 2), np.inf)])
def test_bad_training_vectors_are_rejected(X):
    with pytest.raises(ParameterError, match="X"):
        Backend(lda_dim=1).fit(X, np.arange(len(X)) % 2)


def test_lda_dimension_above_the_input_is_rejected():
    X, y = speakers(dim=4, seed=22)
    with pytest.raises(ParameterError, match="n_components=5 must be <= 4"):
        LDA(n_components=5).fit(X, y)
    with pytest.raises(ParameterError, match="n_components"):
        LDA(n_components=0).fit(X, y)


@pytest.mark.parametrize("estimator", [Center(), LDA(n_components=2), WCCN(), Backend(lda_dim=2)],
                         ids=["center", "lda", "wccn", "backend"])
def test_transform_checks_the_dimension_and_fitting(estimator):
    X, y = speakers(dim=4, seed=23)
    with pytest.raises(NotFittedError):
        estimator.transform(X)
    estimator.fit(X, y)
    with pytest.raises(ParameterError, match="columns"):
        estimator.transform(np.zeros((2, 5)))
