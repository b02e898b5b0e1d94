"""Classifiers on the 10-D LPQ+PHOG vector alone (no image): the SFEW baselines.

Both are scikit-learn ``Pipeline`` objects (``kind="sklearn"``): the engine hands them the
feature matrix, calls ``fit`` on the training role and ``predict_proba`` on every image,
and never decodes a pixel (``input_size`` and ``channels`` are 0). Both standardise the
vector first, as paper 000 does ("normalized on the entire dataset by subtracting the
mean and dividing by the deviation"; here on the training role only).

* ``svm-lpqphog`` — Dhall et al. (2011)'s baseline that paper 000 compares against (19.0%
  under SPI): a non-linear (RBF) SVM on the first 5 principal components of LPQ and of
  PHOG, with Platt-scaled probabilities. The papers give no C or gamma, so
  scikit-learn's defaults are ours (``C``, ``svm_gamma``; not ``gamma``, which is the
  engine's step-schedule factor).
* ``mlp-lpqphog`` — paper 000's "BaseModel_K_fold" on the LPQ-PHOG data (27.27% SPI,
  31.58% PPI): one hidden layer of tanh units, cross-entropy, Adam. The paper sizes the
  hidden layer only for its autoencoder classifier (64 units); ``lr``, ``epochs``
  (iterations over the data), ``batch_size`` and ``weight_decay`` (L2) map onto
  scikit-learn's ``MLPClassifier``.
"""

from __future__ import annotations

from typing import Any

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ferdata.errors import FerdataError
from ferdata.models import ModelPlugin, register_model

SVM_DEFAULTS: dict[str, Any] = {"C": 1.0, "svm_gamma": "scale", "svm_class_weight": None}

MLP_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",  # paper 000's shallow networks use Adam
    "lr": 1e-3,  # not given in the paper
    "weight_decay": 0.0,
    "epochs": 500,  # at most; stops when the training loss stops improving
    "batch_size": 32,  # not given in the paper
    "hidden": 64,  # paper: 64 hidden units (autoencoder classifier)
}


class PlattSVC(ClassifierMixin, BaseEstimator):
    """An RBF SVM with Platt-scaled probabilities: the sigmoid is fitted on out-of-fold
    decision values, then the SVM is refitted on all the data (what ``SVC(probability=
    True)`` did before scikit-learn deprecated it). The folds shrink to the smallest
    class; when a class has a single training sample there are no folds, and one sigmoid
    per class is fitted on the training decision values themselves, then normalised
    (``in_sample_calibration_``; over-confident, but still probabilities)."""

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
        svm = SVC(kernel="rbf", C=self.C, gamma=self.gamma, class_weight=self.class_weight,
                  random_state=self.random_state)
        self.in_sample_calibration_ = bool(counts.min() < 2)
        if self.in_sample_calibration_:
            self.svm_ = svm.fit(X, y)
            d = self._decision(X)
            targets = [y == c for c in (classes[1:] if len(classes) == 2 else classes)]
            self.sigmoids_ = [LogisticRegression().fit(d[:, [k]], t) for k, t in enumerate(targets)]
            self.classes_ = self.svm_.classes_
        else:
            folds = StratifiedKFold(min(self.folds, int(counts.min())), shuffle=True, random_state=self.random_state)
            self.calibrated_ = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False).fit(X, y)
            self.classes_ = self.calibrated_.classes_
        return self

    def _decision(self, X: Any) -> np.ndarray:
        d = np.asarray(self.svm_.decision_function(X), np.float64)
        return d[:, None] if d.ndim == 1 else d

    def predict_proba(self, X: Any) -> np.ndarray:
        if not self.in_sample_calibration_:
            return self.calibrated_.predict_proba(X)
        d = self._decision(X)
        p = np.column_stack([s.predict_proba(d[:, [k]])[:, 1] for k, s in enumerate(self.sigmoids_)])
        if len(self.classes_) == 2:
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])

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
                    gamma=hp.get("svm_gamma", SVM_DEFAULTS["svm_gamma"]),
                    class_weight=hp.get("svm_class_weight", SVM_DEFAULTS["svm_class_weight"]),
                    random_state=None if seed is None else int(seed),
                ),
            ),
        ]
    )


class QuietMLPClassifier(MLPClassifier):
    """``MLPClassifier`` that keeps two warnings to itself: "maximum iterations reached" (the
    cap is the ``epochs`` hyperparameter, an intended budget) and "batch size clipped" (a
    fold smaller than one batch is simply one batch)."""

    def fit(self, X: Any, y: Any) -> "QuietMLPClassifier":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Got `batch_size`", category=UserWarning)
            return super().fit(X, y)


def build_mlp(num_classes: int, **hp: Any) -> Pipeline:
    """Standardise, then one hidden layer of tanh units trained with Adam."""
    seed = hp.get("seed")
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "mlp",
                QuietMLPClassifier(
                    hidden_layer_sizes=(int(hp.get("hidden", MLP_DEFAULTS["hidden"])),),
                    activation="tanh",
                    solver="adam",
                    learning_rate_init=float(hp.get("lr", MLP_DEFAULTS["lr"])),
                    alpha=float(hp.get("weight_decay", MLP_DEFAULTS["weight_decay"])),
                    batch_size=int(hp.get("batch_size", MLP_DEFAULTS["batch_size"])),
                    max_iter=int(hp.get("epochs", MLP_DEFAULTS["epochs"])),
                    random_state=None if seed is None else int(seed),
                ),
            ),
        ]
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
        description="one-hidden-layer tanh MLP (Adam) on the standardised 10-D LPQ+PHOG vector",
        paper="000",
        input_size=0,
        channels=0,
        build=build_mlp,
        kind="sklearn",
        defaults=dict(MLP_DEFAULTS),
        features=("lpqphog",),
        tags=("sfew", "features-only"),
    )
)
