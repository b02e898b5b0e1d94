"""``ferdata reproduce RECIPE DATASET_DIR``: rerun a paper's experiment, figures beside the paper's."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ferdata.cli.common import (
    Example,
    ManifestsOpt,
    RichProgress,
    WorkersOpt,
    command_help,
    console,
    err_console,
)

ORDER = 65

EXAMPLES = (
    Example("ferdata reproduce --list", "the recipes: paper, data, model, protocols and the papers' figures"),
    Example("ferdata reproduce p001-mobilenet-jaffe --show", "a recipe as TOML, to copy and edit"),
    Example("ferdata reproduce p000-cnn-base-sfew ../shared/data/sfew_anu --quick",
            "a paper's SFEW experiment, few epochs: measured beside the paper's figure", runnable=False),
)


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    from ferdata.errors import FerdataError

    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise FerdataError(f"{option} {item!r} is not KEY=VALUE (e.g. {option} fer2013=../shared/data/fer2013_full)")
        out[key.strip()] = value.strip()
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def reproduce_command(
    recipe: Annotated[str | None, typer.Argument(help="A recipe name (see --list) or a recipe .toml file.", show_default=False)] = None,
    dataset: Annotated[Path | None, typer.Argument(help="Folder of the recipe's (first) dataset.", show_default=False)] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="KEY=DIR for another dataset the recipe names (a first stage, cross-dataset).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="The recipe's quick variant: few epochs, fewer folds and images.")] = False,
    repeats: Annotated[int | None, typer.Option("--repeats", min=1, help="Fold seeds per protocol row [default: the recipe's].")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Fold seeds as a comma list (e.g. 0,1,2) instead of --repeats.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Override the recipe's epochs (this stage only).")] = None,
    hp: Annotated[list[str] | None, typer.Option("--hp", help="KEY=VALUE over the recipe's hyperparameters (this stage only; repeatable).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    weights: Annotated[str | None, typer.Option("--weights", help="File to use where the recipe asks for ImageNet weights.")] = None,
    init: Annotated[str | None, typer.Option("--init", help="A finished run to start from instead of the recipe's first stage.")] = None,
    use: Annotated[list[str] | None, typer.Option("--use", help="RECIPE=RUN: take this finished run for that recipe (stage, ensemble member).")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only the protocol row with this label (repeatable).")] = None,
    runs: Annotated[Path | None, typer.Option("--runs", envvar="FERDATA_RUNS", help="Folder of run folders [default: ./runs].")] = None,
    no_reuse: Annotated[bool, typer.Option("--no-reuse", help="Train again even where a finished run matches exactly.")] = False,
    manifests: ManifestsOpt = None,
    workers: WorkersOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the recipes with the papers' figures and exit.")] = False,
    show: Annotated[bool, typer.Option("--show", help="Print the recipe's TOML (to copy and edit) and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Rerun a paper's experiment: ingest → preprocess → split → train → evaluate, measured figures beside the paper's."""
    from ferdata.errors import FerdataError
    from ferdata.recipes import ReproduceOptions, list_recipes, reproduce, resolve_recipe

    if list_:
        _list(list_recipes(), resolve_recipe, as_json)
        return
    if recipe is None:
        raise FerdataError("give a recipe and its dataset folder, e.g. 'ferdata reproduce p001-mobilenet-jaffe "
                           "../shared/data/jaffe' (see --list)")
    if show:
        typer.echo(resolve_recipe(recipe).text, nl=False)
        return
    if dataset is None:
        r = resolve_recipe(recipe)
        raise FerdataError(f"give the {r.main.key} dataset folder ({r.main.adapter}: {r.main.layout}) after the recipe")
    from ferdata.training.hparams import parse_hp

    try:
        seed_list = tuple(int(x) for x in seeds.split(",") if x.strip()) if seeds else ()
    except ValueError:
        raise FerdataError(f"--seeds {seeds!r}: give whole numbers separated by commas, e.g. --seeds 0,1,2") from None
    opts = ReproduceOptions(quick=quick, repeats=repeats, seeds=seed_list, epochs=epochs, hp=parse_hp(hp), device=device, weights=weights, init=init,
                            use=_pairs(use, "--use"), data=_pairs(data, "--data"), manifests=manifests, runs=runs,
                            only=tuple(only or ()), reuse=not no_reuse, workers=workers)
    log = (lambda _m: None) if as_json else (lambda m: err_console.print(f"[dim]reproduce:[/] {m}", highlight=False,
                                                                         soft_wrap=True))
    result = reproduce(recipe, dataset, options=opts, progress=RichProgress(), log=log)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
        return
    render(result)


def _list(names: list[str], resolve, as_json: bool) -> None:  # noqa: ANN001
    rows = []
    for name in names:
        r = resolve(name)
        figures = [f"{p.label}: {p.figure:.2f}" for p in r.protocols if p.figure is not None]
        rows.append({"name": name, "paper": r.paper, "dataset": ", ".join(d.key for d in r.datasets),
                     "model": r.model.name + (f" ← {r.model.init}" if r.model.init else ""),
                     "protocols": [p.label for p in r.protocols], "figures": figures, "title": r.title})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="paper recipes (ferdata reproduce NAME DATASET_DIR)", title_justify="left")
    table.add_column("name", no_wrap=True)
    for col in ("dataset", "model", "rows: paper's figure %"):
        table.add_column(col, overflow="fold")
    for row in rows:
        figures = [f"{p}: {next((f.split(': ')[1] for f in row['figures'] if f.startswith(p + ':')), '—')}"
                   for p in row["protocols"]]
        table.add_row(row["name"], row["dataset"], row["model"], "; ".join(figures))
    console.print(table)


def render(result) -> None:  # noqa: ANN001
    """The result table (each protocol row's measured figure beside the paper's), then one
    line per row saying what the protocol is and whether subjects leak."""
    r = result.recipe
    table = Table(title=f"{r.name} ({result.mode}): {r.metric} in %", title_justify="left")
    table.add_column("row", no_wrap=True)
    for col in ("measured (mean ± std, n)", "paper", "Δ", "majority", "seed sd", "wall", "CPU"):
        table.add_column(col, justify="right", overflow="fold")
    for row in result.rows:
        measured = f"{_pct(row.mean)} ± {_pct(row.std)} (n={len(row.values)})" if row.values else "—"
        spread = f"{100 * row.seed_std:.2f} ({len(row.seeds)})" if row.seed_std is not None else "—"
        gap = f"{row.gap:+.2f}" if row.gap is not None else "—"
        table.add_row(row.label, measured, f"{row.figure:.2f}" if row.figure is not None else "—", gap,
                      _pct(row.majority if row.baselines else None), spread, _duration(row.wall_s),
                      _duration(row.cpu_s))
    console.print(table)
    for row in result.rows:
        leak = "subjects leak" if row.leaks == "subjects" else "movies shared" if row.leaks == "movies" else \
            f"{row.leaks} leak" if row.leaks != "none" else "no subject leaks"
        where = f"; paper: {row.where}" if row.where else ""
        epochs = sorted(set(row.epochs))
        trained = (f"; epochs run {'/'.join(map(str, epochs))}" if epochs else "") + \
            (f", {_duration(row.train_s)} of training by the runs' own clocks" if row.train_s else "")
        console.print(f"{row.label}: {row.protocol} ({leak}); {row.note}{where}. "
                      f"{row.trained} trained, {row.reused} reused{trained}: {', '.join(row.runs)}", highlight=False,
                      soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    console.print(f"total {_duration(result.wall_s)} wall, {_duration(result.cpu_s)} CPU; load average "
                  f"{result.load_average[0]:.2f} → {result.load_average[1]:.2f}. Where the paper is ambiguous and "
                  f"what the recipe chose: ferdata reproduce {r.name} --show", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("reproduce", **command_help("Rerun a paper's experiment beside its figures", EXAMPLES))(
        reproduce_command)
