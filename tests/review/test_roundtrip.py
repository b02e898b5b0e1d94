"""The whole loop against a real Label Studio server: flag JAFFE, push the top 10, annotate
four tasks through the API (three relabels, one keep with a note), pull, and check nothing
duplicates."""

from __future__ import annotations

import re
import shutil

import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.manifest import Manifest, read_table
from ferdata.manifest.effective import images_with_effective_labels, label_decisions
from tests.noise_helpers import cached_fold_runs

pytestmark = [pytest.mark.labelstudio, pytest.mark.real_data]
runner = CliRunner()


def ok(args: list[str], token: str) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert token not in result.output
    return result.output


def test_flag_push_annotate_pull_jaffe(real_manifest, ls_env, tmp_path, tmp_path_factory, monkeypatch):
    source = real_manifest("jaffe")
    manifest = Manifest(shutil.copytree(source.dir, tmp_path / "manifests" / "jaffe"))
    monkeypatch.setenv("FERDATA_MANIFESTS", str(manifest.dir.parent))
    runs = cached_fold_runs(source, tmp_path_factory.mktemp("jaffe-runs"))
    images_before = manifest.images_path.read_bytes()
    token = ls_env.token

    ok(["flag", "jaffe", "--from-runs", str(runs[0].parent)], token)
    suspects = read_table(manifest.table_path("suspects.parquet")).sort_by("rank").slice(0, 10).to_pylist()

    out = ok(["review", "push", "jaffe", "--top", "10"], token)
    assert "tasks imported" in out
    client = ls_env.client()
    [project] = [p for p in client.projects.list() if p.title == "ferdata jaffe"]
    full = client.projects.get(project.id)
    assert full.parsed_label_config["label"]["labels"] == sorted(
        {*read_table(runs[0] / "predictions.parquet").column("label").to_pylist()})
    tasks = list(client.tasks.list(project=project.id, fields="all"))
    assert len(tasks) == 10
    by_image = {t.data["image_id"]: t for t in tasks}
    assert set(by_image) == {s["image_id"] for s in suspects}
    for s in suspects:
        task = by_image[s["image_id"]]
        assert task.data["given_label"] == s["given_label"] and task.data["suggested_label"] == s["suggested_label"]
        assert task.data["dataset"] == "jaffe" and task.data["subject"] == s["subject_id"]
        assert task.data["image"].startswith("data:image/png;base64,")  # TIFF: embedded as PNG
        assert task.data["reasons"] and task.data["path"] == s["path"]
        given = {p.model_version: p for p in task.predictions}.pop("ferdata-given-label")
        assert given.result[0]["value"]["choices"] == [s["given_label"]]  # what the editor pre-selects
        [prediction] = [p for p in task.predictions if p.model_version != "ferdata-given-label"]
        assert prediction.result[0]["value"]["choices"] == [s["suggested_label"]]
        assert prediction.model_version.startswith("ferdata-")
        assert prediction.score == pytest.approx(s["p_suggested"])
        assert prediction.mislabeling == pytest.approx(s["score"])
    assert full.model_version == "ferdata-given-label" and full.show_collab_predictions

    # an annotator relabels three images (the first to the suggestion, the others elsewhere)
    # and keeps the fourth's label, saying why in the note
    classes = full.parsed_label_config["label"]["labels"]
    chosen = {}
    for i, s in enumerate(suspects[:4]):
        label = (s["suggested_label"] if i == 0 else s["given_label"] if i == 3
                 else next(c for c in classes if c not in (s["given_label"], s["suggested_label"])))
        note = "  the mouth\nsays it all " if i == 3 else None
        result = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
        if note:
            result.append({"from_name": "note", "to_name": "image", "type": "textarea", "value": {"text": [note]}})
        client.annotations.create(id=by_image[s["image_id"]].id, lead_time=4.2, result=result)
        chosen[s["image_id"]] = (s["given_label"], label, "the mouth says it all" if note else None)

    out = ok(["review", "pull", "jaffe", "--dry-run"], token)
    assert "not written" in out and not manifest.table_path("labels.parquet").exists()

    out = ok(["review", "pull", "jaffe"], token)
    assert re.search(r"labels changed\s*│\s*3", out) and re.search(r"labels kept\s*│\s*1", out)
    log = label_decisions(manifest).to_pylist()
    assert len(log) == 4
    for row in log:
        assert (row["old_label"], row["new_label"], row["note"]) == chosen[row["image_id"]]
        assert row["annotator"] == ls_env.username and row["project"] == "ferdata jaffe"
        assert row["source"] == "label-studio" and row["task_id"] == by_image[row["image_id"]].id and row["time"]
    effective = {r["image_id"]: r for r in images_with_effective_labels(manifest).to_pylist()}
    for image_id, (old, new, _) in chosen.items():
        assert effective[image_id]["label"] == new and effective[image_id]["label_original"] == old
    assert manifest.images_path.read_bytes() == images_before

    ok(["review", "pull", "jaffe"], token)
    assert label_decisions(manifest).num_rows == 4
    out = ok(["info", "jaffe", "--relabels"], token)
    assert "relabel decisions (4: 3 relabelled, 1 kept)" in out and "the mouth says it all" in out

    out = ok(["review", "push", "jaffe", "--top", "10"], token)
    assert len(list(client.tasks.list(project=project.id))) == 10
    out = ok(["review", "status", "jaffe"], token)
    assert "decisions pulled" in out and "to annotate" in out
    out = ok(["info", "jaffe", "--suspects", "3"], token)
    assert "relabelled (labels.parquet)" in out and "top 3 of" in out
