"""Confident learning, out-of-fold predictions from runs, data reasons, suspects and ``ferdata flag``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.errors import FerdataError
from ferdata.manifest import Manifest, read_metadata, read_table, write_table
from ferdata.manifest.schema import SUSPECTS_SCHEMA
from ferdata.noise import (
    FILTER_BY,
    OutOfFold,
    confident_joint,
    data_reasons,
    find_label_issues,
    fit_temperature,
    flag,
    info_sections,
    per_class_thresholds,
    rank_scores,
    read_run_predictions,
    scorer_doubts,
    temperature_scale,
)
from tests.noise_helpers import cached_fold_runs, fake_manifest, synthetic_runs

runner = CliRunner()


# ---- confident learning on hand-made and synthetic probabilities ----------------------------


def test_thresholds_and_confident_joint_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9],   # the third "0" looks like a 1
                      [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    t = per_class_thresholds(labels, probs)
    assert t == pytest.approx([(0.9 + 0.8 + 0.1) / 3, (0.7 + 0.8 + 0.6) / 3])
    raw, guess = confident_joint(labels, probs, t, calibrate=False)
    # t0 = 0.6, t1 = 0.7: rows 0,1 -> class 0; row 2 -> 1; row 3 (0.7 >= 0.7) -> 1; row 4 -> 1; row 5 none
    assert guess.tolist() == [0, 0, 1, 1, 1, -1]
    assert raw.tolist() == [[2, 1], [0, 2]]
    calibrated, _ = confident_joint(labels, probs, t)
    assert calibrated.sum(axis=1) == pytest.approx([3, 3])  # rows rescaled to the class sizes
    assert calibrated[0] == pytest.approx([2, 1])
    result = find_label_issues(labels, probs)
    assert result.is_issue.tolist() == [False, False, True, False, False, False]
    assert result.suggested[2] == 1
    assert result.noise_rates == pytest.approx([1 / 3, 0])


def test_a_class_with_no_confident_hit_is_left_alone():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    result = find_label_issues(labels, probs)
    assert not result.is_issue.any()


def synthetic(n: int = 900, k: int = 5, noise: float = 0.1, seed: int = 0):
    """A decent model's out-of-fold probabilities on data with ``noise`` symmetric label flips."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), true] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    given = true.copy()
    flip = rng.random(n) < noise
    given[flip] = (true[flip] + rng.integers(1, k, flip.sum())) % k
    return given, probs, flip


@pytest.mark.parametrize("filter_by", FILTER_BY)
def test_finds_injected_flips(filter_by):
    given, probs, flip = synthetic()
    result = find_label_issues(given, probs, filter_by=filter_by)
    tp = (result.is_issue & flip).sum()
    precision, recall = tp / result.is_issue.sum(), tp / flip.sum()
    # the trivial rule flags every disputed image: the most recall, the least precision
    low_p, low_r = (0.6, 0.9) if filter_by == "predicted_neq_given" else (0.75, 0.6)
    assert precision > low_p and recall > low_r, (precision, recall)
    # the model's most probable class is never the flagged image's given label
    assert (probs[result.is_issue].argmax(1) != given[result.is_issue]).all()
    # flips score higher than clean images on average
    assert result.score[flip].mean() > result.score[~flip].mean() + 0.3


def test_keeps_at_least_min_examples_per_class():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.1, 0.9]] * 3 + [[0.1, 0.9]] * 3)  # everything looks like class 1
    result = find_label_issues(labels, probs, min_examples_per_class=1)
    assert result.is_issue[:3].sum() <= 2


@pytest.mark.parametrize("rank_by", ["both", "self_confidence", "normalized_margin"])
def test_rank_scores(rank_by):
    labels = np.array([0, 0, 0])
    probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.1, 0.8, 0.1]])
    self_conf, margin, score = rank_scores(labels, probs, rank_by)
    assert self_conf == pytest.approx([0.9, 0.4, 0.1])
    assert margin == pytest.approx([(0.9 - 0.05 + 1) / 2, (0.4 - 0.5 + 1) / 2, (0.1 - 0.8 + 1) / 2])
    assert list(np.argsort(-score)) == [2, 1, 0]
    assert ((0 <= score) & (score <= 1)).all()


def test_rank_by_unknown_is_a_user_error():
    with pytest.raises(FerdataError, match="rank_by"):
        rank_scores(np.array([0]), np.array([[1.0]]), "loss")


def test_out_of_fold_shape_is_checked():
    with pytest.raises(FerdataError, match="one row per image"):
        OutOfFold(["a", "b"], [0, 1], np.ones((2, 3)) / 3, ("x", "y"))
    with pytest.raises(FerdataError, match="NaN"):
        OutOfFold(["a"], [0], np.array([[np.nan, 1.0]]), ("x", "y"))


# ---- predictions files ------------------------------------------------------------------------


def write_predictions(path: Path, rows: list[tuple], classes: list[str], meta: bool = True) -> None:
    columns = {"image_id": pa.array([r[0] for r in rows], pa.string()),
               "fold": pa.array([0] * len(rows), pa.int32()),
               "role": pa.array([r[1] for r in rows], pa.string()),
               "label": pa.array([r[2] for r in rows], pa.string()),
               "pred": pa.array([classes[int(np.argmax(r[3]))] for r in rows], pa.string())}
    for j, c in enumerate(classes):
        columns[f"prob_{c}"] = pa.array([float(r[3][j]) for r in rows], pa.float64())
    write_table(path / "predictions.parquet", pa.table(columns), {"classes": classes} if meta else None)


def test_read_run_predictions_keeps_held_out_rows_and_averages_repeats(tmp_path):
    classes = ["happy", "sad"]
    write_predictions(tmp_path / "r0", [("a", "test", "happy", [0.8, 0.2]), ("b", "train", "sad", [0.5, 0.5])],
                      classes)
    write_predictions(tmp_path / "r1", [("b", "test", "sad", [0.3, 0.7]), ("a", "test", "happy", [0.6, 0.4])],
                      classes)
    oof = read_run_predictions([tmp_path])  # a folder of runs
    assert oof.image_ids == ["a", "b"] and oof.classes == ("happy", "sad")
    assert np.allclose(oof.probs, [[0.7, 0.3], [0.3, 0.7]])
    assert oof.labels.tolist() == [0, 1]
    assert read_run_predictions([tmp_path / "r1"]).image_ids == ["a", "b"]


def test_classes_from_columns_when_metadata_is_absent(tmp_path):
    write_predictions(tmp_path / "r", [("a", "test", "sad", [0.1, 0.9])], ["happy", "sad"], meta=False)
    assert read_run_predictions([tmp_path / "r"]).classes == ("happy", "sad")


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty", "no predictions.parquet"),
    ("no_test", "no held-out"),
    ("classes", "earlier run predicts"),
    ("columns", "not a ferdata predictions table"),
    ("label", "not one of"),
    ("relabelled", "labelled 'happy' in one run"),
])
def test_bad_runs_are_one_line_errors(tmp_path, case, message):
    runs = [tmp_path / "r0"]
    if case == "missing":
        runs = [tmp_path / "nope"]
    elif case == "empty":
        (tmp_path / "r0").mkdir()
    elif case == "no_test":
        write_predictions(tmp_path / "r0", [("a", "train", "happy", [0.5, 0.5])], ["happy", "sad"])
    elif case == "classes":
        write_predictions(tmp_path / "r0", [("a", "test", "happy", [0.5, 0.5])], ["happy", "sad"])
        write_predictions(tmp_path / "r1", [("b", "test", "happy", [0.5, 0.5])], ["anger", "happy"])
        runs.append(tmp_path / "r1")
    elif case == "columns":
        write_table(tmp_path / "r0" / "predictions.parquet", pa.table({"image_id": ["a"]}), {"classes": ["x"]})
    elif case == "label":
        write_predictions(tmp_path / "r0", [("a", "test", "fear", [0.5, 0.5])], ["happy", "sad"])
    elif case == "relabelled":
        write_predictions(tmp_path / "r0", [("a", "test", "happy", [0.5, 0.5])], ["happy", "sad"])
        write_predictions(tmp_path / "r1", [("a", "test", "sad", [0.5, 0.5])], ["happy", "sad"])
        runs.append(tmp_path / "r1")
    with pytest.raises(FerdataError, match=message):
        read_run_predictions(runs)


# ---- reasons from the data --------------------------------------------------------------------


def test_data_reasons_from_ratings_and_duplicate_conflicts():
    table = pa.table({
        "image_id": ["a", "b", "c", "d", "e"],
        "path": ["a.tiff", "b.tiff", "c.tiff", "d.tiff", "e.tiff"],
        "label": ["fear", "happy", "neutral", "sad", "anger"],
        "content_hash": ["h1", "h2", "h3", "h4", "h4"],
        "rating_happy": [1.0, 4.5, 3.0, 1.0, 1.0],
        "rating_fear": [2.5, 1.0, 1.0, 1.0, 1.0],
        "rating_surprise": [3.9, 1.0, 1.0, 1.0, 1.0],
        "rating_sad": [1.0, 1.0, 1.0, 4.0, 1.0],
        "rating_anger": [1.0, 1.0, 1.0, 1.0, 3.0],
        "rating_top": ["surprise", "happy", "happy", "sad", "anger"],
    })
    reasons = data_reasons(table)
    assert set(reasons) == {"a", "d", "e"}  # neutral is not rated, so c is not judged
    assert reasons["a"][1] == "surprise" and "surprise (3.90 vs fear 2.50)" in reasons["a"][0][0]
    assert reasons["d"] == (["duplicate of e.tiff labelled anger"], "anger")
    assert reasons["e"] == (["duplicate of d.tiff labelled sad"], "sad")


# ---- flag: suspects.parquet, info, CLI ----------------------------------------------------------


def test_flag_writes_ranked_suspects(tmp_path):
    manifest = fake_manifest(tmp_path)
    runs, disputed = synthetic_runs(manifest, tmp_path / "runs")
    images_before = manifest.images_path.read_bytes()
    result = flag(manifest, read_run_predictions(runs), filter_by="low_score")  # tiny data: count by confident learning
    table = read_table(result.path)
    assert table.schema.remove_metadata().equals(SUSPECTS_SCHEMA)
    assert set(table.column("image_id").to_pylist()) == disputed
    assert result.n_flagged == len(disputed) and result.n_scored == manifest.images().num_rows
    rows = table.to_pylist()
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    for r in rows:
        assert r["suggested_label"] != r["given_label"] and r["flagged_by"] == "model"
        assert r["reasons"][0].startswith(f"model: p({r['given_label']})=")
    meta = read_metadata(result.path)
    assert meta["classes"] == ["anger", "happy", "sad"] and meta["source"]["kind"] == "runs"
    assert len(meta["confident_joint"]) == 3
    assert manifest.images_path.read_bytes() == images_before

    [section] = info_sections(manifest, suspects=3)
    assert len(section["rows"]) == 3 and section["rows"][0][0] == 1
    assert info_sections(manifest) == []


def test_flag_adds_data_only_suspects(tmp_path):
    labels = ["anger"] * 12 + ["happy"] * 12 + ["sad"] * 12
    tops = list(labels)
    tops[5] = "sad"  # raters disagree with one anger image the model is sure about
    manifest = fake_manifest(tmp_path, extra={"rating_anger": [3.0] * 36, "rating_happy": [3.0] * 36,
                                              "rating_sad": [3.5 if i == 5 else 1.0 for i in range(36)],
                                              "rating_top": tops})
    runs, disputed = synthetic_runs(manifest, tmp_path / "runs")
    flag(manifest, read_run_predictions(runs), filter_by="low_score")  # tiny data: count by confident learning
    table, = [read_table(manifest.table_path("suspects.parquet"))]
    by_id = {r["image_id"]: r for r in table.to_pylist()}
    fifth = manifest.images().to_pylist()[5]["image_id"]
    assert fifth not in disputed
    assert by_id[fifth]["flagged_by"] == "data" and by_id[fifth]["suggested_label"] == "sad"
    assert by_id[fifth]["reasons"][0].startswith("ratings: raters' top is sad")


def test_temperature_undoes_overconfidence():
    given, probs, _ = synthetic(n=3000, noise=0.0)
    sharp = temperature_scale(probs, 0.5)  # the same model, twice as sure of itself
    assert fit_temperature(given, sharp) == pytest.approx(2 * fit_temperature(given, probs), rel=0.05)
    assert np.allclose(temperature_scale(sharp, 2.0), probs)


def test_scorer_doubts():
    given, probs, _ = synthetic(n=900, k=5)  # 180 per class, accuracy far above the baseline
    assert scorer_doubts("x", given, probs, "abcde") == []
    small = scorer_doubts("tiny", given[:100], probs[:100], "abcde")
    assert small == []  # few images, but a scorer this accurate is believed
    weak = probs[:100].copy()
    weak[:40] = probs[100:140]  # 40 images scored as if they were others: accuracy about 0.6
    weak = scorer_doubts("tiny", given[:100], weak, "abcde")
    assert len(weak) == 1 and "images per class (median), under 50" in weak[0]
    shuffled = np.random.default_rng(0).permutation(given)
    assert "within 10 points of the majority baseline" in scorer_doubts("x", shuffled, probs, "abcde")[0]


def test_flag_counts_only_confident_disagreements_when_it_cannot_trust_the_scorer(tmp_path):
    """12 images per class: confident learning would read the scorer's own mistakes as label
    errors, so flag keeps only the images it confidently puts in another class and says so."""
    manifest = fake_manifest(tmp_path)
    runs, _ = synthetic_runs(manifest, tmp_path / "runs")
    oof = read_run_predictions(runs)
    result = flag(manifest, oof)
    assert result.rule == "confident_other"
    calibrated = temperature_scale(oof.probs, fit_temperature(oof.labels, oof.probs))
    calibrated[np.arange(len(oof.labels)), oof.labels] = 0
    assert result.n_flagged == int((calibrated.max(1) >= 0.6).sum())
    [warning] = result.warnings
    assert "12 images per class (median), under 50" in warning and "not trustworthy" in warning
    assert f"only the {result.n_flagged} images" in warning and "--filter-by low_score" in warning
    assert read_metadata(result.path)["filter_by"] == "confident_other"
    chosen = flag(manifest, oof, filter_by="low_score")
    assert chosen.rule == "low_score" and chosen.n_flagged == result.n_estimated
    assert "not trustworthy" in chosen.warnings[0] and "only the" not in chosen.warnings[0]


def test_flag_rejects_predictions_of_another_manifest(tmp_path):
    manifest = fake_manifest(tmp_path)
    classes = ["anger", "happy"]
    write_predictions(tmp_path / "r", [("zzz", "test", "happy", [0.5, 0.5])], classes)
    with pytest.raises(FerdataError, match="not in manifest"):
        flag(manifest, read_run_predictions([tmp_path / "r"]))
    write_predictions(tmp_path / "g", [("zzz", "test", "positive", [0.5, 0.5])], ["negative", "positive"])
    with pytest.raises(FerdataError, match="grouped classes"):
        flag(manifest, read_run_predictions([tmp_path / "g"]))
    assert not manifest.table_path("suspects.parquet").exists()


def test_flag_and_info_cli(tmp_path, monkeypatch):
    manifest = fake_manifest(tmp_path)
    runs, _ = synthetic_runs(manifest, tmp_path / "runs")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    result = runner.invoke(app, ["info", "fake", "--suspects", "4"])
    assert result.exit_code == 0 and "none yet" in result.output
    result = runner.invoke(app, ["flag", "fake", "--from-runs", str(runs[0]), "--from-runs", str(runs[1]),
                                     "--filter-by", "low_score"])
    assert result.exit_code == 0, result.output
    assert "flagged by the scorer" in result.output and "top suspects" in result.output
    result = runner.invoke(app, ["info", "fake", "--suspects", "4"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "top 4 of 9 suspects" in result.output
    for args, message in ((["flag", "fake", "--from-runs", str(tmp_path / "nope")], "does not exist"),
                          (["flag", "fake", "--from-runs", str(runs[0]), "--rank-by", "x"], "--rank-by")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.mark.real_data
def test_flag_real_jaffe_from_a_quick_fit(real_manifest, tmp_path, tmp_path_factory):
    source = real_manifest("jaffe")
    manifest = Manifest(shutil.copytree(source.dir, tmp_path / "manifests" / "jaffe"))
    runs = cached_fold_runs(source, tmp_path_factory.mktemp("jaffe-runs"))
    oof = read_run_predictions(runs)
    assert len(oof.image_ids) == 213 and len(oof.classes) == 7
    result = flag(manifest, oof)
    table = read_table(result.path).to_pylist()
    assert result.n_flagged > 0 and result.n_flagged < 213
    # every flagged image has a model reason; JAFFE's ratings question some fear images
    assert all(r["reasons"] for r in table)
    rated = [r for r in table if any(x.startswith("ratings:") for x in r["reasons"])]
    assert rated and any(r["given_label"] == "fear" for r in rated)
    assert not any(r["given_label"] == "neutral" and "ratings" in " ".join(r["reasons"]) for r in table)


def test_an_image_relabelled_since_training_is_no_model_suspect(tmp_path):
    from ferdata.review.pull import append_decisions

    manifest = fake_manifest(tmp_path)
    runs, disputed = synthetic_runs(manifest, tmp_path / "runs")
    oof = read_run_predictions(runs)
    first = read_table(flag(manifest, oof, filter_by="low_score").path).to_pylist()[0]
    append_decisions(manifest, [{"image_id": first["image_id"], "old_label": first["given_label"],
                                 "new_label": first["suggested_label"], "annotator": "a", "time": "t",
                                 "project": "p", "task_id": 1, "source": "label-studio"}])
    again = flag(manifest, oof, filter_by="low_score")
    ids = read_table(again.path).column("image_id").to_pylist()
    assert first["image_id"] not in ids and set(ids) == disputed - {first["image_id"]}
    assert again.n_flagged == len(disputed) - 1


def test_flag_with_model_trains_one_model_per_fold(tmp_path, monkeypatch):
    from ferdata.splits import make_split

    manifest = fake_manifest(tmp_path, "trained")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    grouped = make_split(manifest, "spi", folds=2, name="spi-2").metadata
    make_split(manifest, "ppi", folds=2, name="ppi-2")
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["flag", "trained", "--model", "small-cnn", "--split", "spi-2", "--epochs", "1",
                                 "--device", "cpu", "--runs", str(runs)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    meta = read_metadata(manifest.table_path("suspects.parquet"))
    assert meta["source"]["kind"] == "model" and meta["source"]["model"] == "small-cnn"
    assert meta["n_scored"] == grouped["n_images"] == 36  # every image, each by the fold that held it out
    parent = Path(meta["source"]["run"])
    assert parent.parent == runs and sorted(p.name for p in parent.glob("fold-*")) == ["fold-0", "fold-1"]

    for args, message in ((["--model", "small-cnn", "--split", "ppi-2"], "does not keep subjects apart"),
                          (["--model", "small-cnn", "--split", "spi-2", "--val-size", "0.2"], "makes a new split"),
                          (["--model", "small-cnn", "--split", "spi-2", "--from-runs", str(parent)], "one source")):
        out = runner.invoke(app, ["flag", "trained", *args], env={"COLUMNS": "200"})
        assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output

    # no --split: the strictest split the data allows is made (with a validation part) and
    # the training options reach the engine
    result = runner.invoke(app, ["flag", "trained", "--model", "small-cnn", "--epochs", "1", "--device", "cpu",
                                 "--batch-size", "8", "--lr", "0.01", "--val-size", "0.25", "--patience", "3",
                                 "--hp", "weight_decay=0.001", "--folds", "2", "--runs", str(runs)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "spi-2-val0.25 (made now: spi, 2 folds)" in result.output
    meta = read_metadata(manifest.table_path("suspects.parquet"))
    config = json.loads((Path(meta["source"]["run"]) / "fold-0" / "config.json").read_text())
    assert {k: config["hparams"][k] for k in ("epochs", "batch_size", "lr", "patience", "weight_decay")} == \
        {"epochs": 1, "batch_size": 8, "lr": 0.01, "patience": 3, "weight_decay": 0.001}
    roles = read_table(manifest.dir / "splits" / "spi-2-val0.25.parquet").column("role").to_pylist()
    assert "val" in roles


def test_prediction_files_of_a_fold_group_leave_out_eval_on_folders(tmp_path):
    """``eval RUN --on OTHER`` writes OTHER's predictions inside the run: they are no fold's."""
    from ferdata.noise import find_prediction_files

    group = tmp_path / "run"
    for sub in ("fold-0", "fold-1", "eval-other-all-test"):
        (group / sub).mkdir(parents=True)
        (group / sub / "predictions.parquet").write_bytes(b"")
    assert find_prediction_files([group]) == [group / "fold-0" / "predictions.parquet",
                                              group / "fold-1" / "predictions.parquet"]


def test_a_reason_names_the_pair_share_only_when_the_joint_puts_images_there():
    from ferdata.noise import _pair_share

    joint = np.array([[8.0, 2.0], [0.01, 9.99]])
    assert _pair_share(joint, 0, 1, "sad", "neutral") == "; an estimated 20% of sad images are neutral"
    assert _pair_share(joint, 1, 0, "neutral", "sad") == ""  # 0.1 %: flagged on its score, not "0%"
