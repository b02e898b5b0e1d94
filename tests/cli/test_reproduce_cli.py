"""``ferdata reproduce``: the list, a recipe's TOML, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.recipes import list_recipes, parse_recipe

runner = CliRunner()


def test_list_shows_every_recipe_with_the_papers_figures() -> None:
    res = runner.invoke(app, ["reproduce", "--list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in list_recipes():
        assert name in res.output
    assert "96.92" in res.output and "68.39" in res.output and "57.43" in res.output
    rows = json.loads(runner.invoke(app, ["reproduce", "--list", "--json"]).output)
    assert {r["name"] for r in rows} == set(list_recipes())


def test_show_prints_a_recipe_that_parses_and_runs_from_a_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["reproduce", "p001-mobilenet-jaffe", "--show"])
    assert res.exit_code == 0
    mine = tmp_path / "mine.toml"
    mine.write_text(res.output.replace('name = "p001-mobilenet-jaffe"', 'name = "mine"', 1))
    assert parse_recipe(mine.read_text()).name == "mine"
    res = runner.invoke(app, ["reproduce", str(mine), "--show"])
    assert res.exit_code == 0 and 'name = "mine"' in res.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["reproduce", "no-such-recipe", str(tmp_path)])
    assert res.exit_code != 0 and "unknown recipe 'no-such-recipe'" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["reproduce", "p001-mobilenet-jaffe"])
    assert res.exit_code != 0 and "give the jaffe dataset folder" in res.output
    res = runner.invoke(app, ["reproduce", "p001-mobilenet-jaffe", str(tmp_path / "missing"),
                              "--manifests", str(tmp_path / "m"), "--init", str(tmp_path)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    res = runner.invoke(app, ["reproduce", "p001-mobilenet-jaffe", str(tmp_path), "--data", "fer2013"])
    assert res.exit_code != 0 and "is not KEY=VALUE" in res.output
    res = runner.invoke(app, ["reproduce", "p001-mobilenet-jaffe", str(tmp_path), "--data", "ck=/x"])
    assert res.exit_code != 0 and "--data ck: recipe p001-mobilenet-jaffe reads no such dataset" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n')
    res = runner.invoke(app, ["reproduce", str(bad), str(tmp_path)])
    assert res.exit_code != 0 and "bad.toml: missing paper" in res.output
