from __future__ import annotations

import numpy as np
import pytest
import torch

from ferdata.errors import FerdataError
from ferdata.models import create_model, get_model
from ferdata_plugins import classic
from plugin_checks import check_defaults, check_forward_backward, names_from

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
def test_svm_fits_and_gives_probabilities(num_classes):
    X, y = _data(classes=num_classes)
    est = create_model("svm-lpqphog", num_classes, seed=0)
    est.fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), num_classes)
    assert np.allclose(proba.sum(1), 1.0)
    assert (proba >= 0).all()
    assert (est.predict(X) == y).mean() > 0.9  # separable clusters: the scaler + RBF find them


def test_svm_is_repeatable_with_a_seed():
    X, y = _data()
    a = create_model("svm-lpqphog", 7, seed=3).fit(X, y).predict_proba(X)
    b = create_model("svm-lpqphog", 7, seed=3).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_svm_options_reach_the_estimator():
    est = create_model("svm-lpqphog", 7, C=10.0, gamma=0.5, epochs=3, batch_size=8)
    X, y = _data()
    svm = est.fit(X, y).named_steps["svm"].calibrated_.estimator
    assert (svm.kernel, svm.C, svm.gamma) == ("rbf", 10.0, 0.5)


def test_svm_calibrates_with_few_samples_per_class():
    X, y = _data(n_per_class=2, classes=3)
    proba = create_model("svm-lpqphog", 3, seed=0).fit(X, y).predict_proba(X)
    assert np.allclose(proba.sum(1), 1.0)


def test_svm_refuses_a_class_with_one_sample():
    X, y = _data(n_per_class=3, classes=3)
    with pytest.raises(FerdataError, match="class 2 has one"):
        create_model("svm-lpqphog", 3).fit(X[:-2], y[:-2])


@pytest.mark.parametrize("num_classes", [2, 7])
def test_mlp_forward_backward(num_classes):
    check_forward_backward("mlp-lpqphog", num_classes)
    check_defaults("mlp-lpqphog")


def test_mlp_learns_separable_features():
    X, y = _data()
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    model = create_model("mlp-lpqphog", 7)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(X).argmax(1) == y).float().mean() > 0.9
