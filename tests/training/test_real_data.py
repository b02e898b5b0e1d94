"""End-to-end training on the real samples (skipped without ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferdata.manifest import Manifest
from ferdata.models import list_models

#: Measured (benchmarks and this test's settings): small-cnn, 10 epochs at lr 2e-3 from
#: scratch, fold 0 of CK+48 spi-10 reaches 0.84 test accuracy against a majority class of
#: 0.24 (a margin of about 0.6); the test asserts a margin of at least 0.35.
MARGIN = 0.35


def spi_split(m: Manifest, k: int = 10, val_size: float | None = 0.1) -> str:
    """``ferdata split NAME --protocol spi --folds k --val-size 0.1``."""
    from ferdata.engines import InlineExecutor
    from ferdata.splits import make_split

    make_split(m, "spi", folds=k, val_size=val_size, executor=InlineExecutor())
    return f"spi-{k}"


@pytest.mark.real_data
@pytest.mark.slow
def test_small_cnn_on_ck48_spi_beats_the_majority_class(fresh_real_manifest, tmp_path: Path) -> None:
    from ferdata.training import train

    m = fresh_real_manifest("ck48")
    split = spi_split(m)
    r = train("small-cnn", m, split, fold=0, runs=tmp_path, device="cpu", seed=0,
              hparams={"epochs": 10, "lr": 2e-3, "batch_size": 32, "patience": 5})
    test = r.metrics["test"]
    assert test["n"] > 50 and r.metrics["val"]["n"] > 0
    assert test["accuracy"] >= test["majority_baseline"] + MARGIN, (test["accuracy"], test["majority_baseline"])


@pytest.mark.real_data
@pytest.mark.skipif("svm-lpqphog" not in list_models(), reason="svm-lpqphog is not registered in this checkout")
def test_svm_lpqphog_on_the_sfew_sample_features(real_manifest, tmp_path: Path) -> None:
    from ferdata.training import train

    m = real_manifest("sfew")
    split = spi_split(m, k=2, val_size=None)
    r = train("svm-lpqphog", m, split, fold="all", runs=tmp_path)
    assert r.metrics["aggregate"]["folds"] == 2
    assert all(f.metrics["test"]["n"] > 0 for f in r.folds)
