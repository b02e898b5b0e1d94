"""Cheap classifiers fitted per fold on stored face descriptors.

Each head sees a fold's training images twice, as they are and mirrored (a mirrored face
shows the same expression), and scores a held-out image by the mean of its two
probability vectors (test-time flip). ``logistic`` is scikit-learn's multinomial logistic
regression on standardised descriptors; ``mlp`` a one-hidden-layer network in torch
(``seeds`` of them averaged); ``auto``, the default, the MLP with three seeds from
:data:`MLP_MIN_IMAGES` training images on, else logistic regression. On FER-2013 the MLP
scores far better than the linear head (``benchmarks/label_noise.py --real``: out-of-fold
accuracy 0.616 against 0.577, against FER+ precision in the top 1 % 0.917 against 0.853 and
average precision 0.658 against 0.629).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferdata.errors import FerdataError

HEADS = ("auto", "logistic", "mlp")
#: ``auto``: the MLP (averaged over seeds) from this many training images on, else logistic
#: regression; a small network needs thousands of images (10 epochs are a few dozen steps on
#: JAFFE), a linear head does not.
MLP_MIN_IMAGES = 2000
MLP_SEEDS = 3


class Stopped(Exception):
    """A head gave up because its ``stop`` event was set."""


@dataclass(frozen=True)
class HeadSpec:
    kind: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in HEADS:
            raise FerdataError(f"head {self.kind!r}: use one of {', '.join(HEADS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.options}


def resolve(spec: HeadSpec, n_train: int) -> HeadSpec:
    """``auto`` made concrete for a training part of ``n_train`` images."""
    if spec.kind != "auto":
        return spec
    if n_train >= MLP_MIN_IMAGES:
        return HeadSpec("mlp", {"seeds": MLP_SEEDS, **spec.options})
    return HeadSpec("logistic")


def fit_predict(spec: HeadSpec, train: np.ndarray, train_mirror: np.ndarray | None, labels: np.ndarray,
                test: np.ndarray, test_mirror: np.ndarray | None, n_classes: int, *, seed: int = 0,
                stop: threading.Event | None = None) -> np.ndarray:
    """Fit on one fold's training rows, return (n_test, n_classes) probabilities. An MLP
    checks ``stop`` at every step and raises :class:`Stopped` once it is set (a Ctrl-C in
    the thread that started the folds must not wait for the others to finish)."""
    from threadpoolctl import threadpool_limits

    if len(np.unique(labels)) < 2:
        raise FerdataError("a fold's training part holds a single class; use fewer folds or more images")
    # One BLAS thread: on a busy machine competing BLAS threads spin and wait, 5-25x slower.
    with threadpool_limits(limits=1):
        spec = resolve(spec, len(labels))
        if spec.kind == "logistic":
            return _logistic(train, train_mirror, labels, test, test_mirror, n_classes, seed=seed, **spec.options)
        return _mlp(train, train_mirror, labels, test, test_mirror, n_classes, seed=seed, stop=stop, **spec.options)


def _stack(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    return a if b is None else np.concatenate([a, b])


def _logistic(train, train_mirror, labels, test, test_mirror, n_classes, *, seed: int = 0, C: float = 0.003,  # noqa: ANN001
              max_iter: int = 300) -> np.ndarray:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = _stack(train, train_mirror)
    y = labels if train_mirror is None else np.concatenate([labels, labels])
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(x), y)
    out = np.zeros((len(test), n_classes))
    views = [test] if test_mirror is None else [test, test_mirror]
    for view in views:
        out[:, model.classes_] += model.predict_proba(scaler.transform(view))
    return out / len(views)


def _mlp(train, train_mirror, labels, test, test_mirror, n_classes, *, seed: int = 0, hidden: int = 512,  # noqa: ANN001
         epochs: int = 10, dropout: float = 0.5, input_dropout: float = 0.2, lr: float = 1e-3,
         weight_decay: float = 1e-4, batch_size: int = 128, seeds: int = 1,
         stop: threading.Event | None = None) -> np.ndarray:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: a second thread only waits (badly so on a busy machine)
    try:  # several seeds averaged: a steadier ranking of the doubtful images
        return np.mean([_train_mlp(torch, train, train_mirror, labels, test, test_mirror, n_classes, seed + 1000 * s,
                                   hidden, epochs, dropout, input_dropout, lr, weight_decay, batch_size, stop)
                        for s in range(max(1, int(seeds)))], axis=0)
    finally:
        torch.set_num_threads(threads)


def _train_mlp(torch, train, train_mirror, labels, test, test_mirror, n_classes, seed, hidden, epochs,  # noqa: ANN001
               dropout, input_dropout, lr, weight_decay, batch_size, stop) -> np.ndarray:  # noqa: ANN001
    # Every random draw comes from this head's own generator (initial weights, batches,
    # flips, dropout masks), never torch's global one: heads fitted side by side in threads
    # (:func:`ferdata.oof.scorer.fit_folds`) then give what they give one after another.
    generator = torch.Generator().manual_seed(seed)
    mean = train.mean(0, keepdims=True)
    std = train.std(0, keepdims=True) + 1e-5
    plain = torch.from_numpy(((train - mean) / std).astype(np.float32))
    mirror = torch.from_numpy(((train_mirror - mean) / std).astype(np.float32)) if train_mirror is not None else None
    y = torch.from_numpy(np.asarray(labels, np.int64))
    first, last = torch.nn.Linear(train.shape[1], hidden), torch.nn.Linear(hidden, n_classes)
    with torch.no_grad():  # torch's default Linear initialisation, drawn from the generator
        for layer in (first, last):
            bound = 1.0 / float(np.sqrt(layer.in_features))
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)

    def drop(x, p: float):  # noqa: ANN001, ANN202 - inverted dropout with the head's generator
        if not net.training or p <= 0:
            return x
        return x * (torch.rand(x.shape, generator=generator) >= p) / (1.0 - p)

    net = torch.nn.ModuleList([first, last])
    forward = lambda x: last(drop(torch.relu(first(drop(x, input_dropout))), dropout))  # noqa: E731
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(y) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(order), batch_size):
            if stop is not None and stop.is_set():
                raise Stopped("stopped before the head was fitted")
            rows = order[start:start + batch_size]
            x = plain[rows]
            if mirror is not None:  # each image as it is or mirrored, at random
                flip = torch.rand(len(rows), generator=generator) < 0.5
                x = torch.where(flip[:, None], mirror[rows], x)
            loss = torch.nn.functional.cross_entropy(forward(x), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    views = [test] if test_mirror is None else [test, test_mirror]
    out = np.zeros((len(test), n_classes))
    with torch.no_grad():
        for view in views:
            x = torch.from_numpy(((view - mean) / std).astype(np.float32))
            out += torch.softmax(forward(x), dim=1).double().numpy()
    return out / len(views)
