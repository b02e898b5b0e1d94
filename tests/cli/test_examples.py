"""The examples in ``--help`` run, as a user would paste them, on the real samples.

Every example marked runnable (``Example.runnable``) runs once, commands in pipeline order,
under a pipe (stdout and stderr not terminals, ``$COLUMNS`` unset): no value may be cut
with an ellipsis, ``--json`` prints one JSON object, and the long steps print plain progress
lines. A new command adds its examples to ``ORDER`` below (the test fails until it does).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ferdata.cli as cli_package
from ferdata.cli.app import app
from ferdata.cli.common import Example

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

#: The order examples run in, so each finds what the earlier ones made.
ORDER = ("ingest", "split", "preprocess", "features", "train", "eval", "predict", "flag", "info", "report",
         "pipeline", "review", "reproduce")
#: Steps long enough that a log must show progress lines: the example's command and a text every line has.
PROGRESS = {"ferdata ingest jaffe": "reading images: ", "ferdata preprocess jaffe": "mediapipe: jaffe: ",
            "ferdata features jaffe": "features lpq, phog: ",
            "ferdata train small-cnn --manifest jaffe --split loso --epochs 2": "fold 0 epoch 2/2: train loss"}


def all_examples() -> dict[str, list[Example]]:
    """Examples per CLI module (``EXAMPLES``, ``PUSH_EXAMPLES``, ...)."""
    out: dict[str, list[Example]] = {}
    for info in pkgutil.iter_modules(cli_package.__path__):
        module = importlib.import_module(f"ferdata.cli.{info.name}")
        found = [ex for name in dir(module) if name.endswith("EXAMPLES") for ex in getattr(module, name)]
        if found:
            out[info.name] = found
    return out


def test_every_command_with_examples_has_a_place_in_the_order():
    assert set(all_examples()) <= set(ORDER)


def argv(example: Example, data: Path) -> list[str]:
    words = shlex.split(example.command.replace("../shared/data", str(data)))
    assert words[0] == "ferdata"
    return words[1:]


def test_runnable_examples_run_under_a_pipe(real_data, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("FERDATA_PROGRESS_SECONDS", "0")  # every advance prints: the lines must be there
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    examples = all_examples()
    ran = []
    for command in ORDER:
        for example in examples.get(command, []):
            if not example.runnable:
                continue
            t0 = time.perf_counter()
            res = runner.invoke(app, argv(example, real_data))
            print(f"{time.perf_counter() - t0:7.1f} s  {example.command}")  # -s shows what each costs
            where = f"{example.command}\n{res.output}"
            assert res.exit_code == 0, where
            assert "…" not in res.stdout, where  # rich marks a cut value with an ellipsis
            assert "Traceback" not in res.output, where
            if "--json" in example.command:
                json.loads(res.stdout)
            marker = next((text for cmd, text in PROGRESS.items() if example.command.startswith(cmd)), None)
            if marker:
                assert marker in res.stderr, where
            ran.append(example.command)
    assert len(ran) >= 20
    assert not list(tmp_path.glob("*.annotated.png"))  # predict never writes into the current directory


def test_a_real_pipe_keeps_every_value(real_data, tmp_path):
    """``ferdata ingest ... | cat`` in a separate process: no terminal anywhere."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["FERDATA_MANIFESTS"] = str(tmp_path / "a-rather-long-folder-name-for-the-manifests" / ("deep" * 20))
    out = subprocess.run([sys.executable, "-m", "ferdata", "ingest", "sfew", str(real_data / "sfew_anu")],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=True).stdout
    assert str(Path(env["FERDATA_MANIFESTS"]) / "sfew" / "images.parquet") in out
    assert "…" not in out and "sample" not in out  # the ANU report's internal key is not a row
    assert "xlsx rows without image" in out and "e.g. " in out
