"""Evaluation figures, cross-dataset evaluation with mapped class sets, soft-voting ensembles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferdata.training import evaluate, train
from ferdata.training.metrics import aggregate_folds, classification_metrics
from ferdata.training.runs import probabilities, read_predictions

FAST = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "patience": 0}


def test_classification_metrics_by_hand() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    targets = np.array([0, 1, 1, 2])
    m = classification_metrics(targets, probs, ["a", "b", "c"])
    assert m["accuracy"] == 0.5 and m["top2_accuracy"] == 1.0 and m["majority_baseline"] == 0.5
    assert m["confusion"] == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]
    assert m["confusion_normalized"][1] == [0.5, 0.0, 0.5]
    assert m["per_class"]["c"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["macro"]["recall"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["weighted"]["recall"] == pytest.approx((1 * 1 + 0 * 2 + 1 * 1) / 4)
    agg = aggregate_folds([{"test": {"accuracy": 0.5}}, {"test": {"accuracy": 0.7}}])
    assert agg["accuracy"]["mean"] == pytest.approx(0.6) and agg["accuracy"]["std"] == pytest.approx(0.1414, abs=1e-4)


def test_ensemble_is_exactly_the_mean_of_its_members(tiny_manifest, runs_dir: Path) -> None:
    m = tiny_manifest()
    a = train("small-cnn", m, "cv", hparams=FAST, seed=1, device="cpu")
    b = train("small-cnn", m, "cv", hparams={**FAST, "epochs": 1}, seed=2, device="cpu")
    e = train("ensemble", members=[a.run_dir, b.run_dir])
    te, classes = read_predictions(e.run_dir)
    ta, _ = read_predictions(a.run_dir)
    tb, _ = read_predictions(b.run_dir)
    assert te.column("image_id").to_pylist() == ta.column("image_id").to_pylist() == tb.column("image_id").to_pylist()
    expected = (probabilities(ta, classes) + probabilities(tb, classes)) / 2
    assert np.array_equal(probabilities(te, classes), expected)
    assert e.metrics["members"] == {str(a.run_dir): a.metrics["test"]["accuracy"],
                                    str(b.run_dir): b.metrics["test"]["accuracy"]}
    assert 0.0 <= e.metrics["test"]["accuracy"] <= 1.0
    config = json.loads((e.run_dir / "config.json").read_text())
    assert config["members"] == [str(a.run_dir), str(b.run_dir)]


def test_ensemble_refuses_different_class_sets(tiny_manifest, runs_dir: Path) -> None:
    from tests.training.conftest import write_split

    from ferdata.errors import FerdataError
    from ferdata.labels import class_set
    from ferdata.manifest import read_table

    m = tiny_manifest()
    rows = read_table(m.dir / "splits" / "cv.parquet").to_pylist()
    write_split(m, "two", [(r["image_id"], r["fold"], r["role"]) for r in rows], class_set("happy,sad"))
    a = train("small-cnn", m, "cv", hparams={**FAST, "epochs": 1}, device="cpu")
    b = train("small-cnn", m, "two", hparams={**FAST, "epochs": 1}, device="cpu")
    with pytest.raises(FerdataError, match="same class set"):
        train("ensemble", members=[a.run_dir, b.run_dir])
    with pytest.raises(FerdataError, match="at least two runs"):
        train("ensemble", members=[a.run_dir])


def test_eval_recomputes_the_run_figures(tiny_manifest, runs_dir: Path) -> None:
    r = train("small-cnn", tiny_manifest(), "cv", hparams=FAST, device="cpu")
    m = evaluate(r.run_dir)
    assert m["test"]["accuracy"] == r.metrics["test"]["accuracy"]
    assert m["test"]["confusion"] == r.metrics["test"]["confusion"]
    assert m["training"]["epochs_run"] == 2


def test_cross_dataset_eval_maps_classes_and_aggregates_folds(tiny_manifest, runs_dir: Path) -> None:
    """A fold-all run on one manifest, evaluated on another whose labels the class set maps in part."""
    import shutil

    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest

    source = tiny_manifest(name="source")
    r = train("small-cnn", source, "cv", fold="all", hparams={**FAST, "epochs": 1}, device="cpu")
    src_images = Path(source.image_root)
    other_root = src_images.parent / "other-src"
    shutil.copytree(src_images, other_root)
    (other_root / "surprise").rename(other_root / "fear")  # not in the run's class set: left out, counted
    other = ingest("folder", other_root, name="other", manifests=source.dir.parent, executor=InlineExecutor()).manifest
    m = evaluate(r.run_dir, on=str(other.dir))
    assert m["excluded"] == {"label outside class set": 6}
    assert m["n_images"] == 12 and m["test"]["n"] == 36  # three fold models × twelve images
    assert m["aggregate"]["folds"] == 3
    out = Path(m["out_dir"])
    assert {p.name for p in out.iterdir()} == {"predictions.parquet", "metrics.json", "confusion.png"}
    t, classes = read_predictions(out)
    assert classes == ["happy", "sad", "surprise"] and set(t.column("label").to_pylist()) == {"happy", "sad"}


def _other(source, name: str = "other"):
    import shutil

    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest

    root = Path(source.image_root).parent / f"{name}-src"
    shutil.copytree(source.image_root, root)
    return ingest("folder", root, name=name, manifests=source.dir.parent, executor=InlineExecutor()).manifest


def test_cross_dataset_eval_reads_the_crops_the_run_was_trained_on(tiny_manifest, runs_dir: Path) -> None:
    """Trained on face crops: the target needs crops made the same way (--make-crops makes
    them), never whole frames; trained on whole images: whole images, even where crops exist."""
    from ferdata.engines import InlineExecutor
    from ferdata.errors import FerdataError
    from ferdata.faces.preprocess import preprocess
    from ferdata.manifest.crops import crop_configs

    source = tiny_manifest(per_class=3, name="cropped")
    on_images = train("small-cnn", source, "cv", hparams={**FAST, "epochs": 1}, device="cpu")
    config = preprocess(source, detector="haar", size=32, gray=True, executor=InlineExecutor()).config_hash
    on_crops = train("small-cnn", source, "cv", hparams={**FAST, "epochs": 1}, device="cpu")
    assert json.loads((on_crops.run_dir / "config.json").read_text())["crops"] == config

    other = _other(source)
    with pytest.raises(FerdataError) as info:
        evaluate(on_crops.run_dir, on=str(other.dir))
    msg = str(info.value)
    assert "\n" not in msg and f"trained on face crops {config}" in msg and "make_crops" in msg  # the CLI shows it as --make-crops
    assert "ferdata preprocess other --detector haar --align none --size 32 --gray" in msg
    assert not crop_configs(other)  # nothing was made by the refusal

    m = evaluate(on_crops.run_dir, on=str(other.dir), make_crops=True)
    assert m["crops"] == config and m["read"] == f"face crops {config} (as trained)"
    assert config in crop_configs(other)

    whole = evaluate(on_images.run_dir, on=str(other.dir))  # other has crops now: still whole images
    assert whole["crops"] is None and whole["read"] == "whole images"
