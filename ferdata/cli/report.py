"""``ferdata report``: HTML reports of datasets, runs and comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ORDER = 80

from ferdata.cli.common import ManifestsOpt, RichProgress, console, summary_table


def report_command(
    targets: Annotated[list[str], typer.Argument(help="A manifest name, a run folder, or several runs to compare.",
                                                 show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for report.html and its PNGs "
                                             "[default: <manifest>/report, <run>/report, or runs/compare-...].")] = None,
    manifests: ManifestsOpt = None,
    per_class: Annotated[int, typer.Option("--per-class", min=1, max=64, help="Sample images per class.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random samples.")] = 0,
) -> None:
    """Write a self-contained HTML report (images embedded) and its PNGs."""
    from ferdata.reports.targets import build_report

    result = build_report(targets, out=out, manifests=manifests, per_class=per_class, seed=seed,
                          progress=RichProgress())
    console.print(summary_table(f"report {' '.join(targets)}", result.summary))
    console.print(f"wrote {result.html}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
