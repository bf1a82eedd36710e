"""Training on a Dask cluster gives the same model as training locally."""

import numpy as np
import pytest

from vpcore.errors import ParameterError
from vpcore.model import VoiceprintModel
from vpcore.parallel import DaskExecutor, LocalExecutor, get_executor

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

OPTIONS = dict(n_components=8, tv_rank=8, lda_dim=5, asnorm_top=10, tv_iter=3, ubm_iter=3,
               calibration_folds=2, random_state=5)


@pytest.fixture(scope="module")
def cluster_client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def subset(synthetic_corpus):
    chosen = [c for c in synthetic_corpus if int(c[0][3:]) < 10]
    return [c[2] for c in chosen], [c[0] for c in chosen]


def test_cluster_training_equals_local_training(cluster_client, subset):
    waves, speakers = subset
    local = VoiceprintModel(**OPTIONS).fit(waves, speakers)
    remote = VoiceprintModel(**OPTIONS).fit(waves, speakers, scheduler=cluster_client)
    np.testing.assert_allclose(remote.ubm_.means_, local.ubm_.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(remote.tv_.T_, local.tv_.T_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(remote.plda_.between_, local.plda_.between_, rtol=1e-3,
                               atol=1e-6)
    probe = local.extract(waves[0])
    vp = local.enroll([local.extract(w) for w in waves[1:4]])
    s_local = local.verify(vp, probe)
    r_probe = remote.extract(waves[0])
    r_vp = remote.enroll([remote.extract(w) for w in waves[1:4]])
    assert remote.verify(r_vp, r_probe).llr == pytest.approx(s_local.llr, rel=1e-3, abs=1e-3)


def test_dask_executor_sums_partial_results(cluster_client):
    ex = DaskExecutor(cluster_client)
    handles = ex.scatter([np.arange(3.0), np.arange(4.0)])
    assert sum(ex.gather(ex.map(np.sum, handles))) == 3.0 + 6.0
    local = LocalExecutor()
    assert sum(local.gather(local.map(np.sum, local.scatter([np.arange(3.0)])))) == 3.0


def test_unreachable_scheduler_is_a_parameter_error():
    with pytest.raises(ParameterError, match="scheduler"):
        get_executor("tcp://127.0.0.1:1")


def test_bad_scheduler_value_is_a_parameter_error():
    with pytest.raises(ParameterError, match="scheduler"):
        get_executor(42)


def test_cluster_makes_the_same_augmented_copies(cluster_client, subset):
    pytest.importorskip("pyroomacoustics")
    pytest.importorskip("av")
    from vpcore import recipe
    from vpcore.augment import Augmenter
    from vpcore.features import FeatureOptions

    waves, speakers = subset[0][:16], subset[1][:16]
    aug = Augmenter(conditions=("noise", "babble", "mic"), n_rooms=2, random_state=4)
    local, local_spk = recipe.augmented_features(waves, speakers, FeatureOptions(), aug, 1)
    remote, remote_spk = recipe.augmented_features(waves, speakers, FeatureOptions(), aug, 1,
                                                   executor=DaskExecutor(cluster_client))
    assert remote_spk == local_spk
    for a, b in zip(local, remote):
        np.testing.assert_array_equal(a, b)


def test_cluster_training_with_copies_equals_local_training(cluster_client, subset):
    pytest.importorskip("pyroomacoustics")
    pytest.importorskip("av")
    waves, speakers = subset
    options = dict(OPTIONS, augment_copies=1, augment_conditions=("noise", "mic"))
    local = VoiceprintModel(**options).fit(waves, speakers)
    remote = VoiceprintModel(**options).fit(waves, speakers, scheduler=cluster_client)
    assert remote.training_summary_["extra_units"] == local.training_summary_["extra_units"] > 0
    np.testing.assert_allclose(remote.plda_.between_, local.plda_.between_, rtol=1e-3,
                               atol=1e-6)
