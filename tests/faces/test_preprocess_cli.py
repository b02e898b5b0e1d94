"""``ferdata preprocess`` and the faces section of ``ferdata info`` through the CLI
(lives here rather than in tests/cli so the face tests stay together)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.faces.info import info_sections
from ferdata.manifest import read_metadata

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_preprocess_prints_a_summary_and_info_reports_faces(fake_faces):
    m = fake_faces.manifest
    root = str(m.dir.parent)
    res = invoke("preprocess", m.name, "--manifests", root, "--detector", "given", "--align", "spatial",
                 "--size", "48", "--gray", "--clahe", "--preview", "4", "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "detection rate" in res.output and "80.0%" in res.output  # 8 of the 10 readable images
    assert "preview" in res.output
    warnings = [ln for ln in res.output.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "80.0% of 10 readable images" in warnings[0] and "--detector none" in warnings[0]
    again = invoke("preprocess", m.name, "--manifests", root, "--detector", "given", "--align", "spatial",
                   "--size", "48", "--gray", "--clahe", "--workers", "1")
    assert again.exit_code == 0
    assert "already done (skipped)" in again.output

    info = invoke("info", m.name, "--manifests", root, "--json")
    assert info.exit_code == 0, info.output
    sections = [s for s in json.loads(info.output)["sections"] if s["title"].startswith("faces")]
    assert len(sections) == 1
    rows = dict(sections[0]["rows"])
    assert rows["detection rate"] == "80.0% (8/10)"
    assert rows["fallback: whole image"] == 2 and rows["flat frames (all black / constant)"] == 1
    assert rows["errors"] == 1 and rows["images with 0 / 1 / 2+ faces"] == "2 / 8 / 0"
    assert "faces (given, align spatial, 48px, CLAHE, grey)" in invoke("info", m.name, "--manifests", root).output
    assert "80.0% of 10 readable images" in rows["warning"]


def test_min_face_rate_fails_a_scripted_run_in_one_line(fake_faces):
    m = fake_faces.manifest
    res = invoke("preprocess", m.name, "--manifests", str(m.dir.parent), "--detector", "given", "--size", "32",
                 "--min-face-rate", "0.9", "--workers", "1")
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "below --min-face-rate 0.9" in errors[0] and "Traceback" not in res.output
    ok = invoke("preprocess", m.name, "--manifests", str(m.dir.parent), "--detector", "given", "--size", "32",
                "--min-face-rate", "0.5", "--workers", "1")
    assert ok.exit_code == 0, ok.output


def test_info_sections_without_faces_is_empty(fake_faces):
    assert info_sections(fake_faces.manifest) == []


def test_preprocess_list_and_user_errors(fake_faces):
    res = invoke("preprocess", "--list")
    assert res.exit_code == 0 and all(d in res.output for d in ("haar", "mtcnn", "mediapipe", "given", "none"))
    assert "(default)" in res.output
    root = str(fake_faces.manifest.dir.parent)
    for args, text in ((["--align", "tilt"], "--align 'tilt'"), (["--detector", "dlib"], "unknown detector 'dlib'"),
                       (["--detector-option", "oops"], "KEY=VALUE")):
        res = invoke("preprocess", fake_faces.manifest.name, "--manifests", root, *args)
        assert res.exit_code == 2, res.output
        assert text in res.output and "Traceback" not in res.output
    res = invoke("preprocess", "nosuch", "--manifests", root)
    assert res.exit_code == 2 and "no manifest 'nosuch'" in res.output


def test_pipeline_on_pre_cropped_faces_pads_them_and_prints_the_rate(tmp_path, manifests_dir):
    """CK+48's layout says its faces are pre-cropped: the pipeline searches padded copies by
    itself, prints the detection rate, warns when it is low (noise images: no faces) and
    stops before training on fallbacks when --min-face-rate asks it to."""
    from tests.datasets.fakes import write_fake

    exp = write_fake("ckplus", tmp_path / "CK+48")
    res = invoke("pipeline", str(exp.source), "--no-train", "-j", "1")
    assert res.exit_code == 0, res.output
    assert "pre-cropped" in res.output and "0/12 (0.0%)" in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("warning:")]) == 1
    m = manifests_dir / "CK+48"  # the pipeline names the manifest after the folder
    (config,) = read_metadata(m / "faces.parquet")["configs"].values()
    assert config["pad"] == "always" and config["align"] == "rotate"
    (m / "features.parquet").unlink()
    res = invoke("pipeline", str(exp.source), "--no-train", "-j", "1", "--min-face-rate", "0.9")
    assert res.exit_code == 2 and "below --min-face-rate 0.9" in res.output
    assert not (m / "features.parquet").exists()
