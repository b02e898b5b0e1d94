"""Messages that point the right way: a path that does not exist says so, a missing argument
lists what exists, ingest shows what info shows, counts come with their names."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from tests.datasets.fakes import write_fake

runner = CliRunner()


def fails(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    return res.output


@pytest.fixture
def two_manifests(tmp_path, manifests_dir):
    for name in ("folder", "sfew"):
        assert runner.invoke(app, ["ingest", name, str(write_fake(name, tmp_path / name).source)]).exit_code == 0
    return manifests_dir


def test_a_path_that_does_not_exist_is_not_a_manifest_to_create(two_manifests):
    out = fails(["report", "runs/does-not-exist"])
    assert "runs/does-not-exist does not exist" in out and "--name runs/does-not-exist" not in out
    assert "folder, sfew" in out
    out = fails(["info", "manifests/nope"])
    assert "manifests/nope does not exist" in out and "--name" not in out and "folder, sfew" in out


def test_pipeline_on_a_missing_folder_says_it_does_not_exist(tmp_path):
    out = fails(["pipeline", str(tmp_path / "nonexistent")])
    assert "nonexistent does not exist" in out and "layout" in out


def test_split_without_a_name_lists_the_manifests(two_manifests):
    out = fails(["split"])
    assert "manifests under" in out and "folder, sfew" in out and "ferdata split folder --protocol loso" in out


def test_ingest_shows_subjects_duplicates_conflicts_and_no_internal_keys(tmp_path, manifests_dir, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    res = runner.invoke(app, ["ingest", "sfew", str(write_fake("sfew", tmp_path / "src").source)])
    assert res.exit_code == 0, res.output
    for row in ("subjects", "images per subject (min/median/max)", "duplicate groups (same content)",
                "label conflicts (same content, two labels)", "xlsx rows without image"):
        assert row in res.stdout
    assert "sample" not in res.stdout  # report keys ending in _sample are examples, not rows
    assert "e.g. Missing_000000000_00000001 (label 2)" in res.stdout
    assert "warning: irregular file name, read leniently" in res.stdout
    assert "e.g. Images/Surprise/IAmSam_013827920__00000004.png, " \
           "Images/Surprise/OceansTwelve-001817760_00000003.png" in res.stdout
    info = runner.invoke(app, ["info", "sfew"])
    assert "e.g. Images/Surprise/IAmSam_013827920__00000004.png" in info.stdout


def test_ingest_json_is_one_object_with_the_table_rows(tmp_path, manifests_dir):
    import json

    res = runner.invoke(app, ["ingest", "sfew", str(write_fake("sfew", tmp_path / "src").source), "--json"])
    data = json.loads(res.stdout)
    assert data["images"] == 5 and data["subjects"] == 4 and data["label_anger"] == 2  # SFEW: the character field
    assert data["warning_irregular_file_name_read_leniently_first"][0].endswith("__00000004.png")
    assert data["xlsx_rows_without_image_first"] == ["Missing_000000000_00000001 (label 2)"]


def test_library_errors_name_parameters_and_the_cli_shows_flags(tmp_path, manifests_dir):
    from ferdata.cli.common import flag_of
    from ferdata.errors import FerdataError
    from ferdata.labels import parse_label_map

    with pytest.raises(FerdataError) as err:
        parse_label_map("joy")
    assert str(err.value) == "label_map entry 'joy' is not RAW=LABEL (e.g. 'joy=happy')"
    assert err.value.render(flag_of) == "--label-map entry 'joy' is not RAW=LABEL (e.g. 'joy=happy')"
    assert flag_of("detector_opts") == "--detector-option" and flag_of("hparams") == "--hp"

    src = write_fake("folder", tmp_path / "src").source
    out = fails(["ingest", "folder", str(src), "--label-map", "joy"])
    assert "error: --label-map entry 'joy'" in out
    out = fails(["ingest", "jaffe", str(src), "--xlsx", "x.xlsx"])
    assert "--xlsx does not apply to jaffe (its options: --ratings)" in out


def test_no_library_error_quotes_a_command_line_flag():
    """Library messages name parameters with arg(); only whole 'ferdata ...' commands they
    suggest may spell flags (tokens of the error calls' string literals are checked)."""
    import io
    import re
    import tokenize
    from pathlib import Path

    import ferdata

    root = Path(ferdata.__file__).parent
    calls = re.compile(r"(Error|Interrupted)$")
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    found = []
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts:
            continue
        tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
        depth, inside, prev = 0, [], None
        for t in tokens:
            if t.type == tokenize.OP and t.string in "([{":
                depth += 1
                if t.string == "(" and prev is not None and prev.type == tokenize.NAME and calls.search(prev.string):
                    inside.append(depth)
            elif t.type == tokenize.OP and t.string in ")]}":
                if inside and inside[-1] == depth:
                    inside.pop()
                depth -= 1
            elif t.type == tokenize.STRING and inside:
                text = re.sub(r"'ferdata [^']*'?|ferdata train ensemble --runs|--enable-legacy-api-token|"
                              r"^f?\"--from-runs RUNS' first\"$", "", t.string)
                if flag.search(text):
                    found.append(f"{path.relative_to(root)}:{t.start[0]}: {t.string}")
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                prev = t
    assert not found, "\n".join(found)
