"""The feature-only plugins on the real SFEW sample's LPQ/PHOG vectors (SFEW.xlsx)."""

from __future__ import annotations

import numpy as np
import pytest

from ferdata.labels import EMOTIONS
from ferdata.models import FEATURE_VECTORS, create_model


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["svm-lpqphog", "mlp-lpqphog"])
def test_fits_the_sfew_sample_features(name, real_manifest):
    images = real_manifest("sfew").images().to_pandas()
    columns = list(FEATURE_VECTORS["lpqphog"])
    rows = images.dropna(subset=columns)
    assert len(rows) >= 30  # 5 frames per class in the sample, every one in SFEW.xlsx
    X = rows[columns].to_numpy(np.float64)
    classes = sorted(rows["label"].unique())
    y = rows["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    est = create_model(name, len(classes), seed=0).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(rows), len(classes)) and np.allclose(proba.sum(1), 1.0)
    # the training fit beats the majority class (1/7 here) by a clear margin
    # (measured on the 35 frames: SVM 0.66, MLP 1.0; held out, paper 000 reports 19% and 27% under SPI)
    assert (est.predict(X) == y).mean() > 0.4
    assert set(classes) <= set(EMOTIONS)
