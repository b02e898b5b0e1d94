"""``ferdata eval``: a finished run's metrics, or the run on another manifest."""

from __future__ import annotations

from typing import Annotated

import typer

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    RichProgress,
    RunsOpt,
    Summary,
    command_help,
    console,
    print_json,
    table,
)

ORDER = 55

EXAMPLES = (
    Example("ferdata eval latest", "the newest run's test metrics: per class, confusion, averages"),
    Example("ferdata eval latest --on jaffe --split all-test --make-crops",
            "the run on a manifest's every image (cross-dataset), written under the run"),
    Example("ferdata eval latest --json", "the metrics as JSON"),
)


def eval_command(
    run: Annotated[str, typer.Argument(help="Run folder, id under --runs-dir, or 'latest'.")],
    on: Annotated[str | None, typer.Option("--on", help="Evaluate on another manifest (cross-dataset).")] = None,
    split: Annotated[str, typer.Option("--split", help="With --on: a split's test role, or all-test.")] = "all-test",
    runs_dir: RunsOpt = None,
    manifests: ManifestsOpt = None,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | mps")] = "auto",
    make_crops: Annotated[bool, typer.Option(
        "--make-crops", help="With --on: make the face crops the run was trained on when the other manifest has "
                             "none made that way [default: refuse, naming the preprocess command].")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Top-1/top-2, per-class and averaged precision/recall/F1 and confusion matrix of a run."""
    # not from ferdata.training: once imported, its submodule of that name shadows the function
    from ferdata.training.evaluate import evaluate

    m = evaluate(run, on=on, split=split, runs=runs_dir, manifests=manifests, device=device, make_crops=make_crops,
                 progress=RichProgress())
    if as_json:
        print_json(m)
        return
    role = "test" if "test" in m else "val" if "val" in m else "train"
    r = m[role]
    classes = m["classes"]
    console.print(table(f"{role}: per class", ("class", "precision", "recall", "F1", "support"),
                        [(c, r["per_class"][c]["precision"], r["per_class"][c]["recall"], r["per_class"][c]["f1"],
                          r["per_class"][c]["support"]) for c in classes]))
    console.print(table(f"{role}: confusion (rows true, columns predicted)", ("", *classes),
                        [(c, *row) for c, row in zip(classes, r["confusion"])]))
    s = Summary("evaluation")
    s.row("run", m["run"]).row(f"{role} images", r["n"]).row("top-1 accuracy", r["accuracy"])
    s.row("top-2 accuracy", r["top2_accuracy"]).row("macro P / R / F1", _prf(r["macro"]))
    s.row("weighted P / R / F1", _prf(r["weighted"])).row("majority class", r["majority_baseline"])
    if "aggregate" in m:
        a = m["aggregate"]["accuracy"]
        s.row(f"accuracy over {m['aggregate']['folds']} folds", f"{a['mean']:.4f} ± {a['std']:.4f}")
    if on:
        s.row("evaluated on", f"{m['on']} ({m['split']})").row("images read as", m["read"])
        for k, v in m["excluded"].items():
            s.row(f"left out: {k}", v)
        s.row("written to", m["out_dir"])
    s.print()


def _prf(d: dict) -> str:
    return f"{d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f}"


def register(app: typer.Typer) -> None:
    app.command("eval", **command_help("A run's metrics, or the run on another manifest", EXAMPLES))(eval_command)
