"""``ferdata report``: HTML reports of datasets, runs and comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    RichProgress,
    Summary,
    command_help,
)

ORDER = 80

EXAMPLES = (
    Example("ferdata report jaffe", "the dataset: counts, sample faces per class, duplicates -> manifests/jaffe/report/"),
    Example("ferdata report latest", "the newest run: curves, confusion, mistakes, Grad-CAM -> <run>/report/"),
    Example("ferdata report runs/a runs/b --out runs/compare-ab", "compare runs side by side", runnable=False),
)


def report_command(
    targets: Annotated[list[str], typer.Argument(help="A manifest name, a run folder (or 'latest'), or several "
                                                 "runs to compare.",
                                                 show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for report.html and its PNGs "
                                             "[default: <manifest>/report, <run>/report, or runs/compare-...].")] = None,
    manifests: ManifestsOpt = None,
    per_class: Annotated[int, typer.Option("--per-class", min=1, max=64, help="Sample images per class.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random samples.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write a self-contained HTML report (images embedded) and its PNGs."""
    from ferdata.reports.targets import build_report

    result = build_report(targets, out=out, manifests=manifests, per_class=per_class, seed=seed,
                          progress=RichProgress())
    s = Summary(f"report {' '.join(targets)}")
    for label, value in result.summary:
        s.row(label, value)
    if not any(label == "report" for label, _ in result.summary):
        s.row("report", str(result.html))
    s.row("pictures", [str(p) for p in result.pngs], show=False)
    s.print(as_json)


def register(app: typer.Typer) -> None:
    app.command("report", **command_help("HTML report of a dataset, a run, or runs compared", EXAMPLES))(
        report_command)
