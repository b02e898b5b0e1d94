"""PCA + standardisation: same numbers as scikit-learn, stored and re-applied exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from ferdata.errors import FerdataError
from ferdata.features.fitset import parse_fit_on
from ferdata.features.reduction import Reduction, fit_reduction, parse_reduce


@pytest.mark.parametrize(("spec", "k"), [("pca:5", 5), ("PCA:3", 3), (" pca : 10 ", 10), ("none", None), (None, None)])
def test_parse_reduce(spec, k):
    assert parse_reduce(spec) == k


@pytest.mark.parametrize("spec", ["pca", "pca:0", "lda:5", "pca:x"])
def test_parse_reduce_rejects(spec):
    with pytest.raises(FerdataError, match=r"^reduce '.*': use pca:K"):
        parse_reduce(spec)


@pytest.mark.parametrize(("spec", "expected"), [
    ("all", (None, None, None)), ("spi-2", ("spi-2", "train", 0)), ("spi-2:val", ("spi-2", "val", 0)),
    ("kf:train:3", ("kf", "train", 3)), ("kf::2", ("kf", "train", 2)),
])
def test_parse_fit_on(spec, expected):
    f = parse_fit_on(spec)
    assert (f.split, f.role, f.fold) == expected


@pytest.mark.parametrize("spec", ["spi:holdout", "spi:train:x", ":train", "a:b:c:d"])
def test_parse_fit_on_rejects(spec):
    with pytest.raises(FerdataError, match="fit_on"):
        parse_fit_on(spec)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    lpq = rng.dirichlet(np.ones(256), size=n)
    phog = rng.dirichlet(np.ones(680) * 0.5, size=n)
    return {"lpq": lpq, "phog": phog}


def test_fit_matches_sklearn_and_round_trips_through_json():
    data = _data()
    red = fit_reduction(data, 5, fitted_on={"spec": "all"})
    out = red.transform(data)
    assert set(out) == {"lpq_pca", "phog_pca", "lpqphog"}
    for name in ("lpq", "phog"):
        ref = PCA(n_components=5, svd_solver="full").fit(data[name])
        np.testing.assert_allclose(out[f"{name}_pca"], ref.transform(data[name]), atol=1e-12)
    fused = np.concatenate([out["lpq_pca"], out["phog_pca"]], axis=1)
    np.testing.assert_allclose(out["lpqphog"], StandardScaler().fit_transform(fused), atol=1e-10)
    assert out["lpqphog"].shape == (40, 10)
    np.testing.assert_allclose(out["lpqphog"].mean(axis=0), 0, atol=1e-12)

    again = Reduction.from_metadata(json.loads(json.dumps(red.to_metadata())))
    new = _data(7, seed=1)
    for col, values in red.transform(new).items():
        np.testing.assert_array_equal(again.transform(new)[col], values)


def test_single_descriptor_gets_its_own_fused_name():
    data = {"lpq": _data()["lpq"]}
    assert set(fit_reduction(data, 3).transform(data)) == {"lpq_pca", "lpq_pca_std"}


def test_too_few_images_for_k():
    with pytest.raises(FerdataError, match="pca:5 needs at least 5"):
        fit_reduction({n: x[:3] for n, x in _data().items()}, 5)


def test_transform_refuses_other_lengths():
    red = fit_reduction(_data(), 2)
    with pytest.raises(FerdataError, match="fitted on 680"):
        red.transform({"lpq": _data()["lpq"], "phog": np.zeros((2, 888))})
