"""The README's "Scale out" commands use options the commands have (the commands themselves
run in test_ray_engine.py: a local Ray cluster, and two nodes started with ``ray start``)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from ferdata.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"


def scale_out_block() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Scale out"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_every_ferdata_option_in_the_scale_out_section_exists():
    lines = [line for line in scale_out_block() if "ferdata " in line]
    assert any("--engine ray" in line and "--ray-address" in line for line in lines)
    assert any(line.startswith("FERDATA_ENGINE=ray ") for line in lines)
    runner = CliRunner()
    for line in lines:
        words = shlex.split(line)
        words = words[words.index("ferdata") + 1:]
        help_text = runner.invoke(app, [words[0], "--help"], env={"COLUMNS": "200"}).output
        for option in (w for w in words if w.startswith("--")):
            assert option in help_text, f"{line}: {option} is not an option of 'ferdata {words[0]}'"


def test_the_cluster_lines_start_ray_as_the_two_node_test_does():
    lines = scale_out_block()
    assert any(line.startswith("ray start --head") for line in lines)
    assert any(re.match(r"RAY_AUTH_MODE=token ray start --address \S+", line) for line in lines)
