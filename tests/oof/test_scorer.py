"""The default out-of-fold scorer end to end, and ``ferdata flag`` without ``--model``."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.engines import InlineExecutor
from ferdata.ingest import ingest
from ferdata.manifest import read_metadata
from ferdata.oof import flag_protocol, flag_split, score_out_of_fold
from ferdata.oof.backbone import ENV_WEIGHTS, BackboneSpec
from ferdata.oof.heads import HeadSpec
from tests.oof.conftest import write_faces

runner = CliRunner()
SMALL = BackboneSpec(side=48, layers=((6, 2),))


def test_protocol_follows_the_data(faces_manifest, tmp_path):
    assert flag_protocol(faces_manifest) == ("spi", 4)  # 4 subjects: at most one fold each
    plain = ingest("folder", write_faces(tmp_path / "plain"), name="plain", manifests=tmp_path / "m",
                   executor=InlineExecutor()).manifest
    assert flag_protocol(plain) == ("kfold", 5)


def test_copies_share_a_fold(tmp_path):
    source = write_faces(tmp_path / "faces")
    first = source / "happy" / "S0_happy_0.png"
    (source / "happy" / "copy.png").write_bytes(first.read_bytes())
    m = ingest("folder", source, name="dup", manifests=tmp_path / "m", executor=InlineExecutor()).manifest
    split = flag_split(m, workers=1)
    test = split.table.filter(pc.equal(split.table.column("role"), "test"))
    fold = dict(zip(test.column("image_id").to_pylist(), test.column("fold").to_pylist()))
    ids = {r["path"]: r["image_id"] for r in m.images(columns=["image_id", "path"]).to_pylist()}
    assert fold[ids["happy/copy.png"]] == fold[ids["happy/S0_happy_0.png"]]
    assert not (m.dir / "splits").exists()  # made in memory


def test_every_image_is_scored_once_by_a_model_that_never_saw_it(faces_manifest, random_mobilenet, tmp_path):
    result = score_out_of_fold(faces_manifest, weights=random_mobilenet, spec=SMALL, runs=tmp_path / "runs", workers=1)
    oof = result.oof
    assert len(oof.image_ids) == 36 and len(set(oof.image_ids)) == 36
    assert oof.classes == ("happy", "sad", "surprise")
    assert (oof.probs.argmax(1) == oof.labels).mean() > 0.8  # the bars are easy
    assert result.protocol == "spi" and result.n_folds == 4
    table = pq.read_table(result.run_dir / "predictions.parquet")
    assert set(table.column("role").to_pylist()) == {"test"} and table.num_rows == 36
    assert sorted(set(table.column("fold").to_pylist())) == [0, 1, 2, 3]
    # a subject is held out in one fold only
    subject = {r["image_id"]: r["subject_id"] for r in faces_manifest.images().to_pylist()}
    folds_of = {}
    for i, f in zip(table.column("image_id").to_pylist(), table.column("fold").to_pylist()):
        folds_of.setdefault(subject[i], set()).add(f)
    assert all(len(f) == 1 for f in folds_of.values())
    again = score_out_of_fold(faces_manifest, weights=random_mobilenet, spec=SMALL, runs=tmp_path / "runs", workers=1)
    assert again.cached_descriptors and np.allclose(again.oof.probs, oof.probs)


def relabel(manifest, new_labels: dict) -> None:
    """Give images other labels through the audit trail, as a review would."""
    from ferdata.review.pull import append_decisions

    rows = {r["image_id"]: r["label"] for r in manifest.images(columns=["image_id", "label"]).to_pylist()}
    append_decisions(manifest, [{"image_id": i, "old_label": rows[i], "new_label": new, "annotator": "test",
                                 "time": "", "project": "test", "task_id": None, "source": "test"}
                                for i, new in new_labels.items() if new != rows[i]])


def test_a_trusted_first_pass_is_followed_by_heads_fitted_without_what_it_flagged(tmp_path, random_mobilenet,
                                                                                  monkeypatch):
    """Wrong labels planted in a learnable set: the first pass flags them, and every fold's
    head is fitted again on its training part less the flagged images."""
    from ferdata.oof import scorer

    source = write_faces(tmp_path / "faces", per_class=16)
    m = ingest("folder", source, name="planted", manifests=tmp_path / "m", executor=InlineExecutor(),
               subject_pattern=r"^(?P<subject>S\d+)_").manifest
    rows = m.images(columns=["image_id", "path"]).to_pylist()
    wrong = {r["image_id"]: "sad" for r in rows if r["path"].startswith("happy/") and r["path"].endswith(("_1.png", "_6.png"))}
    relabel(m, wrong)
    seen = []
    real = scorer.fit_predict

    def spy(head, train, *args, **kwargs):
        seen.append(len(train))
        return real(head, train, *args, **kwargs)

    monkeypatch.setattr(scorer, "fit_predict", spy)
    result = score_out_of_fold(m, weights=random_mobilenet, spec=SMALL, runs=tmp_path / "runs", workers=2)
    n_folds = result.n_folds
    assert result.clean_pass_left_out >= 1 and len(seen) == 2 * n_folds
    first, second = sorted(seen[:n_folds]), sorted(seen[n_folds:])
    assert sum(first) - sum(second) == result.clean_pass_left_out * (n_folds - 1)  # each flagged image trains k-1 folds
    import json

    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["clean_pass"] == {"ran": True, "left_out": result.clean_pass_left_out}
    assert set(wrong) & set(np.array(result.oof.image_ids)[result.oof.probs.argmax(1) != result.oof.labels])

    # The cleaned heads' list is ordered by self-confidence unless --rank-by says otherwise,
    # also when flagged again from the run folder.
    from ferdata.noise import flag, read_run_predictions

    assert config["rank_by"] == "self_confidence" and result.oof.source["rank_by"] == "self_confidence"
    assert flag(m, result.oof).rank_by == "self_confidence"
    assert flag(m, result.oof, rank_by="both").rank_by == "both"
    assert flag(m, read_run_predictions([result.run_dir])).rank_by == "self_confidence"

    seen.clear()
    once = score_out_of_fold(m, weights=random_mobilenet, spec=SMALL, runs=tmp_path / "runs", workers=1, clean=False)
    assert len(seen) == n_folds and once.clean_pass_left_out == 0
    assert "rank_by" not in once.oof.source and flag(m, once.oof).rank_by == "both"


def test_without_weights_hog_scores_and_says_so(faces_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    result = score_out_of_fold(faces_manifest, runs=tmp_path / "runs", workers=1, head=HeadSpec("logistic"))
    assert result.descriptor == "hog"
    assert len(result.notes) == 1 and "HOG" in result.notes[0] and "--weights PATH" in result.notes[0]
    assert (result.oof.probs.argmax(1) == result.oof.labels).mean() > 0.8


def test_flag_cli_default_summary(faces_manifest, random_mobilenet, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_WEIGHTS, str(random_mobilenet))
    monkeypatch.setenv("COLUMNS", "200")
    res = runner.invoke(app, ["flag", str(faces_manifest.dir), "--runs", str(tmp_path / "runs"), "-j", "1"])
    assert res.exit_code == 0, res.output
    out = res.output
    for row in ("out-of-fold accuracy", "majority baseline", "run folder", "flagged by the scorer",
                "CPU seconds", "MobileNetV2 (ImageNet) descriptors", "spi-4", "ranked by (--rank-by)"):
        assert row in out, (row, out)
    assert "warning:" not in out  # the bars are learnable: far above the baseline
    meta = read_metadata(faces_manifest.dir / "suspects.parquet")
    assert meta["out_of_fold_accuracy"] > 0.8 and meta["majority_baseline"] == pytest.approx(1 / 3)
    assert meta["source"]["kind"] == "descriptors"


def test_flag_cli_warns_at_chance_on_shuffled_labels(tmp_path, random_mobilenet, monkeypatch):
    """Labels drawn at random, independently of the pictures: nothing to learn, so the
    out-of-fold accuracy sits at the baseline and the run says the list is not trustworthy."""
    from ferdata.review.pull import append_decisions

    source = write_faces(tmp_path / "faces", per_class=16)
    m = ingest("folder", source, name="shuffled", manifests=tmp_path / "m", executor=InlineExecutor(),
               subject_pattern=r"^(?P<subject>S\d+)_").manifest
    rows = m.images(columns=["image_id", "label"]).to_pylist()
    shuffled = np.random.default_rng(1).permutation([r["label"] for r in rows])
    append_decisions(m, [{"image_id": r["image_id"], "old_label": r["label"], "new_label": str(new),
                          "annotator": "test", "time": "", "project": "shuffle", "task_id": None, "source": "test"}
                         for r, new in zip(rows, shuffled) if new != r["label"]])
    monkeypatch.setenv(ENV_WEIGHTS, str(random_mobilenet))
    monkeypatch.setenv("COLUMNS", "400")
    res = runner.invoke(app, ["flag", str(m.dir), "--runs", str(tmp_path / "runs"), "-j", "1"])
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1, res.output
    assert "within 10 points of the majority baseline" in warning[0] and "not trustworthy" in warning[0]
    assert "ferdata preprocess" in warning[0]
    assert "second pass" not in res.output  # an untrusted first pass decides nothing


@pytest.mark.parametrize("args, message", [
    (["--split", "spi-5"], "--split applies to --model only"),
    (["--epochs", "3", "--lr", "0.1"], "--epochs, --lr apply to --model only"),
    (["--model", "small-cnn", "--weights", "x.pth"], "--weights is for the default scorer"),
    (["--model", "small-cnn", "--from-runs", "r"], "give one source"),
    (["--filter-by", "by_magic"], "--filter-by 'by_magic'"),
])
def test_flag_cli_option_errors(faces_manifest, args, message, monkeypatch, random_mobilenet):
    monkeypatch.setenv(ENV_WEIGHTS, str(random_mobilenet))
    monkeypatch.setenv("COLUMNS", "300")
    res = runner.invoke(app, ["flag", str(faces_manifest.dir), "-j", "1", *args])
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
