"""Classifiers on the 10-D LPQ+PHOG vector alone (no image): the SFEW baselines.

* ``svm-lpqphog`` — Dhall et al. (2011)'s baseline that paper 000 compares against (19.0%
  under SPI): a non-linear (RBF) SVM on the standardised vector of the first 5 principal
  components of LPQ and of PHOG. A scikit-learn ``Pipeline`` (StandardScaler → RBF SVC
  with Platt-scaled probabilities); the paper gives no C or gamma, so scikit-learn's
  defaults are ours.
* ``mlp-lpqphog`` — paper 000's "BaseModel_K_fold" on the LPQ-PHOG data (27.27% SPI,
  31.58% PPI): a one-hidden-layer network with tanh hidden units. Its input is
  standardised with the running statistics of the training samples (the paper
  standardises over the dataset). The
  paper sizes the hidden layer only for the autoencoder classifier (64 units), trains the
  shallow networks with cross-entropy and Adam; learning rate and epochs are ours.

Both read no pixels: ``input_size`` and ``channels`` are 0, and the torch model is called
as ``model(features)`` (see :mod:`ferdata.models`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

from ferdata.errors import FerdataError
from ferdata.models import FEATURE_VECTORS, ModelPlugin, register_model
from ferdata_plugins.layers import RunningStandardize

FEATURE_DIM = len(FEATURE_VECTORS["lpqphog"])

SVM_DEFAULTS: dict[str, Any] = {"C": 1.0, "gamma": "scale", "class_weight": None}

MLP_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",  # paper 000's shallow networks use Adam
    "lr": 1e-3,
    "weight_decay": 0.0,
    "epochs": 100,
    "batch_size": 32,
    "scheduler": None,
    "hidden": 64,  # paper: 64 hidden units (autoencoder classifier)
    "dropout": 0.0,
}


class PlattSVC(ClassifierMixin, BaseEstimator):
    """An RBF SVM with Platt-scaled probabilities: the sigmoid is fitted on out-of-fold
    decision values, then the SVM is refitted on all the data (what ``SVC(probability=
    True)`` did before scikit-learn deprecated it). The folds shrink to the smallest
    class, so a class with a few training samples still works."""

    def __init__(self, C: float = 1.0, gamma: Any = "scale", class_weight: Any = None,
                 folds: int = 5, random_state: int | None = None) -> None:
        self.C = C
        self.gamma = gamma
        self.class_weight = class_weight
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> "PlattSVC":
        y = np.asarray(y)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise FerdataError(f"svm-lpqphog needs at least two classes in the training data, got {len(classes)}")
        if counts.min() < 2:
            rare = ", ".join(str(c) for c in classes[counts < 2])
            raise FerdataError(f"svm-lpqphog needs two training samples of every class to calibrate "
                               f"probabilities; class {rare} has one")
        folds = StratifiedKFold(min(self.folds, int(counts.min())), shuffle=True, random_state=self.random_state)
        svm = SVC(kernel="rbf", C=self.C, gamma=self.gamma, class_weight=self.class_weight,
                  random_state=self.random_state)
        self.calibrated_ = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.calibrated_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def build_svm(num_classes: int, **hp: Any) -> Pipeline:
    """Standardise, then an RBF SVM with Platt-scaled probabilities (``predict_proba``)."""
    seed = hp.get("seed")
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "svm",
                PlattSVC(
                    C=float(hp.get("C", SVM_DEFAULTS["C"])),
                    gamma=hp.get("gamma", SVM_DEFAULTS["gamma"]),
                    class_weight=hp.get("class_weight", SVM_DEFAULTS["class_weight"]),
                    random_state=None if seed is None else int(seed),
                ),
            ),
        ]
    )


class FeatureMlp(nn.Module):
    """Standardise → Linear → tanh → (dropout) → Linear."""

    def __init__(self, num_classes: int, in_dim: int = FEATURE_DIM, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.standardise = RunningStandardize(in_dim)
        self.hidden = nn.Linear(in_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def forward(self, features: torch.Tensor, return_features: bool = False) -> Any:
        h = torch.tanh(self.hidden(self.standardise(features.float())))
        scores = self.out(self.dropout(h))
        return (scores, h) if return_features else scores


def build_mlp(num_classes: int, **hp: Any) -> FeatureMlp:
    return FeatureMlp(
        num_classes,
        hidden=int(hp.get("hidden", MLP_DEFAULTS["hidden"])),
        dropout=float(hp.get("dropout", MLP_DEFAULTS["dropout"])),
    )


SVM_LPQPHOG = register_model(
    ModelPlugin(
        name="svm-lpqphog",
        description="RBF SVM on the standardised 10-D LPQ+PHOG vector (the SFEW baseline)",
        paper="000",
        input_size=0,
        channels=0,
        build=build_svm,
        kind="sklearn",
        defaults=dict(SVM_DEFAULTS),
        features=("lpqphog",),
        tags=("sfew", "features-only", "baseline"),
    )
)

MLP_LPQPHOG = register_model(
    ModelPlugin(
        name="mlp-lpqphog",
        description="one-hidden-layer tanh MLP on the 10-D LPQ+PHOG vector (no image)",
        paper="000",
        input_size=0,
        channels=0,
        build=build_mlp,
        defaults=dict(MLP_DEFAULTS),
        features=("lpqphog",),
        tags=("sfew", "features-only"),
    )
)
