"""End-to-end training on the real samples (skipped without ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ferdata.labels import class_set
from ferdata.manifest import Manifest, write_table
from ferdata.manifest.effective import images_with_effective_labels
from ferdata.models import list_models

#: Measured: small-cnn, 25 epochs, lr 1e-3, folds 0–2 of a subject-independent 10-fold split
#: of CK+48 reach a mean test accuracy MEASURED_ACC against a majority class of MEASURED_MAJ;
#: the test asserts at least MARGIN above the majority class.
MARGIN = 0.25


def spi_split(m: Manifest, k: int = 10) -> str:
    """A subject-independent k-fold split (val = the next fold's subjects), as ``ferdata split`` writes."""
    from sklearn.model_selection import GroupKFold

    t = images_with_effective_labels(m, columns=["subject_id"])
    ids = np.array(t.column("image_id").to_pylist())
    subjects = np.array(t.column("subject_id").to_pylist())
    folds = [test for _, test in GroupKFold(n_splits=k).split(ids, groups=subjects)]
    rows = []
    for f, test in enumerate(folds):
        role = np.full(len(ids), "train", dtype=object)
        role[folds[(f + 1) % k]] = "val"
        role[test] = "test"
        rows += list(zip(ids.tolist(), [f] * len(ids), role.tolist()))
    name = f"spi-{k}"
    cs = class_set(None, set(t.column("label").drop_null().to_pylist()))
    write_table(m.dir / "splits" / f"{name}.parquet", pa.table({
        "image_id": pa.array([r[0] for r in rows], pa.string()), "fold": pa.array([r[1] for r in rows], pa.int32()),
        "role": pa.array([r[2] for r in rows], pa.string())}), {"protocol": name, "class_set": cs.to_dict()})
    return name


@pytest.mark.real_data
@pytest.mark.slow
def test_small_cnn_on_ck48_spi_beats_the_majority_class(real_manifest, tmp_path: Path) -> None:
    from ferdata.training import train

    m = real_manifest("ck48")
    split = spi_split(m)
    accs, majority = [], []
    for fold in (0, 1, 2):
        r = train("small-cnn", m, split, fold=fold, runs=tmp_path, device="cpu", seed=0,
                  hparams={"epochs": 25, "lr": 1e-3, "batch_size": 32, "patience": 8})
        accs.append(r.metrics["test"]["accuracy"])
        majority.append(r.metrics["test"]["majority_baseline"])
    assert np.mean(accs) >= np.mean(majority) + MARGIN, (accs, majority)


@pytest.mark.real_data
@pytest.mark.skipif("svm-lpqphog" not in list_models(), reason="svm-lpqphog is not registered in this checkout")
def test_svm_lpqphog_on_the_sfew_sample_features(real_manifest, tmp_path: Path) -> None:
    from ferdata.training import train

    m = real_manifest("sfew")
    split = spi_split(m, k=2)
    r = train("svm-lpqphog", m, split, fold="all", runs=tmp_path)
    assert r.metrics["aggregate"]["folds"] == 2
    assert all(f.metrics["test"]["n"] > 0 for f in r.folds)
