from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from ferdata.errors import FerdataError
from ferdata.models import create_model, get_model
from ferdata_plugins import classic
from tests.plugins.plugin_checks import names_from

NAMES = names_from(classic)


def _data(n_per_class=12, classes=7, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    X = rng.normal(size=(len(y), 10)) * 50 + y[:, None] * 150  # unscaled, class-dependent
    return X, y


def test_module_registers_both_baselines():
    assert set(NAMES) == {"svm-lpqphog", "mlp-lpqphog"}
    for name in NAMES:
        plugin = get_model(name)
        assert plugin.input_size == 0 and plugin.channels == 0
        assert plugin.features == ("lpqphog",)


@pytest.mark.parametrize("num_classes", [2, 7])
@pytest.mark.parametrize("name", NAMES)
def test_fits_and_gives_probabilities(name, num_classes):
    X, y = _data(classes=num_classes)
    est = create_model(name, num_classes, seed=0)
    est.fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), num_classes)
    assert np.allclose(proba.sum(1), 1.0)
    assert (proba >= 0).all()
    assert list(est.classes_) == list(range(num_classes))
    assert (est.predict(X) == y).mean() > 0.9  # separable clusters, far from unit scale: standardising finds them


@pytest.mark.parametrize("name", NAMES)
def test_repeatable_with_a_seed_and_picklable(name):
    X, y = _data()
    a = create_model(name, 7, seed=3).fit(X, y)
    b = pickle.loads(pickle.dumps(create_model(name, 7, seed=3).fit(X, y)))
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_engine_hyperparameters_do_not_leak_into_the_svm():
    """The engine's ``gamma`` (its step-schedule factor) must not become the RBF width."""
    est = create_model("svm-lpqphog", 7, C=10.0, svm_gamma=0.5, gamma=0.94, epochs=3, batch_size=8, lr=0.1)
    X, y = _data()
    svm = est.fit(X, y).named_steps["svm"].calibrated_.estimator
    assert (svm.kernel, svm.C, svm.gamma) == ("rbf", 10.0, 0.5)
    assert create_model("svm-lpqphog", 7, gamma=0.94).named_steps["svm"].gamma == "scale"


def test_svm_calibrates_with_few_samples_per_class():
    X, y = _data(n_per_class=2, classes=3)
    proba = create_model("svm-lpqphog", 3, seed=0).fit(X, y).predict_proba(X)
    assert np.allclose(proba.sum(1), 1.0)


@pytest.mark.parametrize("classes", [2, 3])
def test_svm_calibrates_in_sample_when_a_class_has_one_sample(classes):
    X, y = _data(n_per_class=1, classes=classes)
    est = create_model("svm-lpqphog", classes, seed=0).fit(X, y)
    assert est.named_steps["svm"].in_sample_calibration_
    proba = est.predict_proba(X)
    assert proba.shape == (classes, classes) and np.allclose(proba.sum(1), 1.0) and (proba >= 0).all()
    assert (est.predict(X) == y).all()
    X, y = _data(n_per_class=2, classes=3)
    assert not create_model("svm-lpqphog", 3, seed=0).fit(X, y).named_steps["svm"].in_sample_calibration_


def test_svm_refuses_a_single_class():
    X, y = _data(n_per_class=4, classes=1)
    with pytest.raises(FerdataError, match="at least two classes"):
        create_model("svm-lpqphog", 3).fit(X, y)


def test_mlp_is_the_papers_network_with_the_engines_names():
    est = create_model("mlp-lpqphog", 7, lr=0.01, epochs=7, batch_size=16, weight_decay=0.001)
    mlp = est.named_steps["mlp"]
    assert (mlp.hidden_layer_sizes, mlp.activation, mlp.solver) == ((64,), "tanh", "adam")
    assert (mlp.learning_rate_init, mlp.max_iter, mlp.batch_size, mlp.alpha) == (0.01, 7, 16, 0.001)
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, y)  # hitting the epoch cap is the budget, not a warning
