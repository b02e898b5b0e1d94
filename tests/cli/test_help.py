"""Every command answers --help, and the help keeps the defaults it documents."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ferdata.cli.app import app

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)


def test_the_pipeline_commands_are_registered():
    assert {"ingest", "info", "split", "preprocess", "features", "train", "eval", "report", "predict",
            "pipeline"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command):
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "Usage:" in text and "[bold]" not in text
    if "--manifests" in text:
        assert "[default: ./manifests]" in text
