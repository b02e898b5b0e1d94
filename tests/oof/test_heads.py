"""Per-fold heads on descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from ferdata.errors import FerdataError
from ferdata.oof.heads import HEADS, MLP_MIN_IMAGES, MLP_SEEDS, HeadSpec, fit_predict, resolve


def blobs(n: int = 240, d: int = 20, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.normal(0, 3, (k, d))
    x = (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32)
    mirror = (x + rng.normal(0, 0.1, x.shape)).astype(np.float32)
    return x, mirror, y


@pytest.mark.parametrize("kind", HEADS)
def test_heads_learn_separable_classes(kind):
    x, mirror, y = blobs()
    options = {"epochs": 40, "hidden": 32} if kind == "mlp" else {}
    probs = fit_predict(HeadSpec(kind, options), x[:180], mirror[:180], y[:180], x[180:], mirror[180:], 3)
    assert probs.shape == (60, 3) and np.allclose(probs.sum(1), 1.0)
    assert (probs.argmax(1) == y[180:]).mean() > 0.9
    again = fit_predict(HeadSpec(kind, options), x[:180], mirror[:180], y[:180], x[180:], mirror[180:], 3)
    assert np.allclose(probs, again)  # seeded


def test_a_class_missing_from_training_gets_zero_probability():
    x, mirror, y = blobs(k=3)
    keep = y[:180] != 2
    probs = fit_predict(HeadSpec(), x[:180][keep], None, y[:180][keep], x[180:], None, 4)
    assert probs.shape == (60, 4) and np.allclose(probs[:, 2:], 0.0)


def test_bad_head_and_single_class_fold():
    with pytest.raises(FerdataError, match="head 'forest'"):
        HeadSpec("forest")
    x, _, _ = blobs(n=10)
    with pytest.raises(FerdataError, match="single class"):
        fit_predict(HeadSpec(), x, None, np.zeros(10, np.int64), x, None, 2)


def test_auto_head_is_linear_on_small_data_and_a_seed_averaged_mlp_on_large():
    assert resolve(HeadSpec(), MLP_MIN_IMAGES - 1) == HeadSpec("logistic")
    assert resolve(HeadSpec(), MLP_MIN_IMAGES) == HeadSpec("mlp", {"seeds": MLP_SEEDS})
    assert resolve(HeadSpec("mlp", {"hidden": 8}), 10) == HeadSpec("mlp", {"hidden": 8})


def test_mlp_seeds_are_averaged():
    x, mirror, y = blobs()
    opts = {"epochs": 5, "hidden": 16}
    one = [fit_predict(HeadSpec("mlp", opts), x[:180], mirror[:180], y[:180], x[180:], mirror[180:], 3, seed=s)
           for s in (0, 1000)]
    two = fit_predict(HeadSpec("mlp", {**opts, "seeds": 2}), x[:180], mirror[:180], y[:180], x[180:], mirror[180:], 3)
    assert np.allclose(two, (one[0] + one[1]) / 2)


def test_folds_fitted_side_by_side_equal_folds_fitted_one_after_another():
    """Each MLP draws from its own generator, so two threads give what one gives, and the
    process's torch thread count is as it was."""
    import torch

    from ferdata.oof.backbone import BackboneSpec, Descriptors
    from ferdata.oof.scorer import fit_folds

    x, mirror, y = blobs(n=300)
    fold = np.arange(300) % 3
    desc = Descriptors([str(i) for i in range(300)], x, mirror, BackboneSpec(), "test")
    spec = HeadSpec("mlp", {"epochs": 40, "hidden": 16, "seeds": 2})
    threads = torch.get_num_threads()
    one = fit_folds(spec, desc, y, fold, 3, 3, workers=1)
    two = fit_folds(spec, desc, y, fold, 3, 3, workers=2)
    assert np.array_equal(one, two)
    assert (one.argmax(1) == y).mean() > 0.9
    assert torch.get_num_threads() == threads
    left_out = np.zeros(300, bool)
    left_out[:30] = True
    assert not np.array_equal(fit_folds(spec, desc, y, fold, 3, 3, workers=2, leave_out=left_out), one)
    whole_class = y == 2  # leaving out a whole class would make it unpredictable: it is kept
    assert np.array_equal(fit_folds(spec, desc, y, fold, 3, 3, workers=2, leave_out=left_out | whole_class),
                          fit_folds(spec, desc, y, fold, 3, 3, workers=2, leave_out=left_out & ~whole_class))


def test_ctrl_c_while_folds_are_fitted_stops_every_fold_at_once(monkeypatch):
    """The folds run in threads; a Ctrl-C in the main thread must not wait for them to end."""
    import os
    import signal
    import threading
    import time

    from ferdata.oof import scorer
    from ferdata.oof.backbone import BackboneSpec, Descriptors

    x, mirror, y = blobs(n=600)
    desc = Descriptors([str(i) for i in range(600)], x, mirror, BackboneSpec(), "test")
    endless = HeadSpec("mlp", {"epochs": 100_000, "hidden": 16, "batch_size": 8})  # hours
    started, real = [], scorer.fit_predict

    def fit_then_ctrl_c(*args, **kwargs):  # Ctrl-C once both folds are being fitted
        started.append(1)
        if len(started) == 2:
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        return real(*args, **kwargs)

    monkeypatch.setattr(scorer, "fit_predict", fit_then_ctrl_c)
    began = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        scorer.fit_folds(endless, desc, y, np.arange(600) % 2, 2, 3, workers=2)
    assert len(started) == 2 and time.perf_counter() - began < 20
    assert not [t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")]
