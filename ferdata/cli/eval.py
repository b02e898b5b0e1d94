"""``ferdata eval``: a finished run's metrics, or the run on another manifest."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ferdata.cli.common import ManifestsOpt, RichProgress, RunsOpt, console, fmt, summary_table

ORDER = 55


def eval_command(
    run: Annotated[str, typer.Argument(help="Run folder (or id under --runs-dir).")],
    on: Annotated[str | None, typer.Option("--on", help="Evaluate on another manifest (cross-dataset).")] = None,
    split: Annotated[str, typer.Option("--split", help="With --on: a split's test role, or all-test.")] = "all-test",
    runs_dir: RunsOpt = None,
    manifests: ManifestsOpt = None,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | mps")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Top-1/top-2, per-class and averaged precision/recall/F1 and confusion matrix of a run."""
    from ferdata.training import evaluate

    m = evaluate(run, on=on, split=split, runs=runs_dir, manifests=manifests, device=device, progress=RichProgress())
    if as_json:
        typer.echo(json.dumps(m, indent=2, default=str))
        return
    role = "test" if "test" in m else "val" if "val" in m else "train"
    r = m[role]
    classes = m["classes"]
    t = Table(title=f"{role}: per class", title_justify="left")
    for c in ("class", "precision", "recall", "F1", "support"):
        t.add_column(c, justify="right" if c != "class" else "left")
    for c in classes:
        pc = r["per_class"][c]
        t.add_row(c, fmt(pc["precision"]), fmt(pc["recall"]), fmt(pc["f1"]), fmt(pc["support"]))
    console.print(t)
    cm = Table(title=f"{role}: confusion (rows true, columns predicted)", title_justify="left")
    cm.add_column("")
    for c in classes:
        cm.add_column(c[:8], justify="right")
    for c, row in zip(classes, r["confusion"]):
        cm.add_row(c, *(str(v) for v in row))
    console.print(cm)
    rows = [("run", m["run"]), (f"{role} images", r["n"]), ("top-1 accuracy", r["accuracy"]),
            ("top-2 accuracy", r["top2_accuracy"]), ("macro P / R / F1", _prf(r["macro"])),
            ("weighted P / R / F1", _prf(r["weighted"])), ("majority class", r["majority_baseline"])]
    if "aggregate" in m:
        a = m["aggregate"]["accuracy"]
        rows.append((f"accuracy over {m['aggregate']['folds']} folds", f"{a['mean']:.4f} ± {a['std']:.4f}"))
    if on:
        rows.append(("evaluated on", f"{m['on']} ({m['split']})"))
        rows += [(f"left out: {k}", v) for k, v in m["excluded"].items()]
        rows.append(("written to", m["out_dir"]))
    console.print(summary_table("evaluation", rows))


def _prf(d: dict) -> str:
    return f"{d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f}"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
