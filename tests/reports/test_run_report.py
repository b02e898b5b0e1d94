"""Run reports for a tiny real run (JAFFE), rendered in headless Chromium."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from ferdata.errors import FerdataError
from ferdata.reports import embedded_images, external_references
from tests.reports.chromium import assert_not_blank, screenshot
from tests.reports.tiny_run import shared_tiny_run

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def tiny_run(real_manifest, tmp_path_factory):
    return shared_tiny_run(real_manifest("jaffe"), tmp_path_factory)[1]


def _check_decodes(html_text: str) -> int:
    images = embedded_images(html_text)
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            assert im.size[0] > 50 and im.size[1] > 50
    return len(images)


def test_run_report_renders_and_every_image_decodes(tiny_run, tmp_path):
    from ferdata.reports.run import run_report

    result = run_report(tiny_run, tmp_path / "rep")
    text = result.html.read_text()
    assert external_references(text) == []
    n = _check_decodes(text)
    assert n == len(result.pngs) and all(p.exists() for p in result.pngs)
    names = {p.name for p in result.pngs}
    assert {"confusion_counts.png", "confusion_normalized.png", "per_class_prf.png", "training_curves.png",
            "confident_mistakes.png"} <= names
    assert sum(n.startswith("explain_") for n in names) == 7  # one Grad-CAM sheet per JAFFE class
    assert "small-cnn" in text and "spi-2" in text
    assert "± " in text and "sha256 best.pt (fold-0)" in text
    summary = dict(result.summary)
    assert summary["images"] == 213 and summary["folds"] == 2 and summary["Grad-CAM maps"] >= 7
    assert_not_blank(screenshot(result.html, tmp_path / "shot.png"))


def test_scores_match_the_predictions(tiny_run):
    from ferdata.reports.run import load_run, pm, scores

    single = scores(load_run(tiny_run / "fold-0"))
    assert single["accuracy_std"] is None and "±" not in pm(single["accuracy_mean"], single["accuracy_std"])
    run = load_run(tiny_run)
    s = scores(run)
    assert s["role"] == "test" and s["n"] == 213
    cm = s["confusion"]
    assert cm.sum() == 213 and np.trace(cm) / 213 == pytest.approx(s["pooled_accuracy"])
    accs = [f["accuracy"] for f in s["per_fold"]]
    assert s["accuracy_mean"] == pytest.approx(np.mean(accs)) and s["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert np.allclose(s["confusion_normalized"].sum(axis=1), 1.0)
    engine = json.loads((tiny_run / "metrics.json").read_text())["aggregate"]["accuracy"]
    assert s["accuracy_mean"] == pytest.approx(engine["mean"])  # the engine's own figure


def test_grad_cam_maps_have_the_input_size_and_vary(tiny_run):
    from ferdata.imageio import read_image
    from ferdata.inference import load_run_model
    from ferdata.reports.explain import grad_cam, saliency
    from ferdata.reports.run import image_files, load_run

    run = load_run(tiny_run)
    model = load_run_model(tiny_run)
    files = image_files(run.config)
    ids = run.predictions.column("image_id").to_pylist()[:4]
    assert all(f"crops/{run.config['crops']}/" in str(files[i]) for i in ids)  # the crops the run trained on
    images = [model.resize(read_image(files[i])) for i in ids]
    batch = model.tensor(images)
    predicted = model.predict_proba(batch).argmax(axis=1).tolist()
    for maps in (grad_cam(model.model, batch, predicted), saliency(model.model, batch, predicted)):
        assert maps.shape == (4, 32, 32)  # small-cnn's input
        assert maps.min() >= 0 and maps.max() <= 1 + 1e-9
        assert all(m.std() > 1e-3 for m in maps)
    assert model.predict_proba(batch).sum(axis=1) == pytest.approx(np.ones(4))


def test_comparison_report_puts_runs_side_by_side(tiny_run, tmp_path):
    import shutil

    from ferdata.reports.run import compare_report

    other = tmp_path / "other-run"
    shutil.copytree(tiny_run / "fold-1", other)
    result = compare_report([tiny_run, other], tmp_path / "cmp")
    text = result.html.read_text()
    assert text.count('class="row"') >= 3 and "other-run" in text
    _check_decodes(text)
    assert_not_blank(screenshot(result.html, tmp_path / "cmp.png"))


def test_unfinished_and_damaged_runs_fail_with_one_line(tiny_run, tmp_path):
    import shutil

    from ferdata.reports.run import load_run

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run / "fold-0", broken)
    (broken / "predictions.parquet").unlink()
    with pytest.raises(FerdataError, match="did not finish"):
        load_run(broken)
    (broken / "predictions.parquet").write_bytes(b"nope")
    with pytest.raises(FerdataError, match=r"predictions.parquet is damaged: .*; re-run .ferdata train --resume"):
        load_run(broken)
    shutil.copy(tiny_run / "fold-0" / "predictions.parquet", broken / "predictions.parquet")
    (broken / "config.json").write_text("{")
    with pytest.raises(FerdataError, match="not valid JSON"):
        load_run(broken)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FerdataError, match="not a run folder"):
        load_run(empty)
    assert json.loads((tiny_run / "fold-0" / "config.json").read_text())["plugin"]


def test_cli_reports_a_run_by_id_and_compares(tiny_run, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ferdata.cli.app import app

    from ferdata.reports.targets import resolve_run

    monkeypatch.setenv("FERDATA_RUNS", str(tiny_run.parent))
    assert resolve_run(tiny_run.name) == tiny_run.parent / tiny_run.name
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(tiny_run / "fold-0"), str(tiny_run / "fold-1"), "--out", str(tmp_path / "two")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "two" / "per_class_f1.png").exists()
    res = runner.invoke(app, ["report", str(tiny_run), "no-such-run"])
    assert res.exit_code == 2 and "'no-such-run' is not a run folder" in res.output
