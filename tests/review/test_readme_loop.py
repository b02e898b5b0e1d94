"""The README's "Review loop" runs as written: its commands exist, in the issue's order, and
every option parses (the browser test runs the loop itself)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer

from ferdata.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"


def review_loop() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("### Review loop"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.startswith("ferdata ")]


def parse(args: list[str]):
    """Resolve the (sub)command and parse its options without running it."""
    command = typer.main.get_command(app)
    ctx = command.make_context("ferdata", list(args))
    while hasattr(command, "resolve_command"):  # a group (typer vendors its own click)
        rest = [*(getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", None) or []), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def test_the_review_loop_is_start_flag_push_pull_info():
    steps = [" ".join(a[:3]) for a in review_loop()]
    assert steps == ["ferdata review server", "ferdata flag jaffe", "ferdata review push", "ferdata review pull",
                     "ferdata info jaffe", "ferdata review server"]
    assert review_loop()[0][-1] == "start" and review_loop()[-1][-1] == "stop"


def test_every_command_of_the_review_loop_parses():
    for args in review_loop():
        ctx = parse(args[1:])
        assert ctx.command.callback is not None, args
    assert parse(["info", "jaffe", "--relabels"]).params["relabels"] is True
    assert parse(["review", "push", "jaffe", "--top", "20"]).params["top"] == 20
