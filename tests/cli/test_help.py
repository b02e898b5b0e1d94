"""Every command answers --help with examples, and the help keeps the defaults it documents;
``ferdata --help`` gives every command one line that fits."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ferdata.cli.app import app

runner = CliRunner()
ROOT = typer.main.get_command(app)
COMMANDS = sorted(ROOT.commands)


def leaf_commands() -> list[list[str]]:
    """Every runnable command as its argv prefix (``review push``, ...)."""
    out = []

    def walk(prefix: list[str], cmd) -> None:  # noqa: ANN001 - a click command or group
        out.append(prefix)
        for sub, child in sorted(getattr(cmd, "commands", {}).items()):
            walk([*prefix, sub], child)

    for name, cmd in sorted(ROOT.commands.items()):
        walk([name], cmd)
    return out


def test_the_pipeline_commands_are_registered():
    assert {"ingest", "info", "split", "preprocess", "features", "train", "eval", "report", "predict",
            "pipeline"} <= set(COMMANDS)


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_help_shows_examples(command, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "Usage:" in text and "[bold]" not in text
    if "--manifests" in text:
        assert "[default: ./manifests]" in text
    examples = res.output.split("Examples:", 1)[1].splitlines() if "Examples:" in res.output else []
    runs = [line.strip() for line in examples if line.strip().startswith("ferdata ")]
    own = [line for line in runs if line.startswith(f"ferdata {' '.join(command)}")]
    comments = [line for line in examples if line.strip().startswith("# ")]
    assert 2 <= len(own) and len(runs) <= 4 and len(comments) == len(runs), res.output


def test_top_level_help_gives_every_command_a_line_that_is_not_cut(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    res = runner.invoke(app, ["--help"])
    listing = res.output.split("Commands:", 1)[1].splitlines()
    lines = {line.split()[0]: line for line in listing if line.strip()}
    assert set(lines) == set(COMMANDS)
    for line in lines.values():
        assert not line.rstrip().endswith("..."), line
        assert len(line.split(None, 1)[1]) > 20, line
