"""``ferdata flag``: likely label errors, found with confident learning."""

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

ORDER = 65

EXAMPLES = (
    Example("ferdata flag sfew --from-runs latest",
            "score every image with the runs of 'train --fold all' (each image by the fold that held it out)"),
    Example("ferdata flag sfew --model small-cnn --split spi-2 --epochs 1",
            "train one model per fold of a grouped split and score each fold's held-out images"),
    Example("ferdata info sfew --suspects 10", "then: the top 10 suspects"),
)


def flag_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    from_runs: Annotated[list[Path] | None, typer.Option(
        "--from-runs", help="Run folders (or a folder of runs, a run id, 'latest') whose predictions.parquet "
                            "hold out-of-fold probabilities; repeatable.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Train this model once per fold of --split and score each fold's held-out images.")] = None,
    split: Annotated[str | None, typer.Option("--split", "-s", help="With --model: a grouped split (spi, loso, ...).")]
        = None,
    image_level: Annotated[bool, typer.Option(
        "--image-level", help="With --model: accept a split that does not keep subjects apart.")] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="With --model [default: the model's].")] = None,
    device: Annotated[str, typer.Option("--device", help="With --model: auto | cpu | cuda | cuda:N | mps")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="With --model: random seed.")] = 0,
    runs: Annotated[Path | None, typer.Option("--runs", help="With --model: runs folder [default: $FERDATA_RUNS or ./runs].")] = None,
    rank_by: Annotated[str, typer.Option("--rank-by", help="both | self_confidence | normalized_margin.")] = "both",
    filter_by: Annotated[str, typer.Option(
        "--filter-by", help="prune_by_noise_rate | both (also require an off-diagonal confident class).")]
        = "prune_by_noise_rate",
    manifests: ManifestsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find likely mislabeled images with confident learning; writes suspects.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.manifest import Manifest
    from ferdata.noise import flag, oof_from_model, read_run_predictions

    manifest = Manifest.open(name, manifests)
    if bool(from_runs) == bool(model):
        raise FerdataError(f"give one source of out-of-fold probabilities: --model MODEL --split SPLIT (train one "
                           f"model per fold) or --from-runs RUN_DIR (existing runs of every fold of a split of {name})")
    progress = RichProgress()
    if model:
        if not split:
            raise FerdataError(f"--model needs --split, e.g. 'ferdata flag {name} --model {model} --split spi-5'")
        oof = oof_from_model(manifest, model, split, allow_image_level=image_level, runs=runs,
                             hparams={"epochs": epochs} if epochs else None, device=device, seed=seed,
                             progress=progress)
    else:
        oof = read_run_predictions(from_runs)
    result = flag(manifest, oof, rank_by=rank_by, filter_by=filter_by, progress=progress)
    s = Summary(f"flag {manifest.name}")
    if result.top:
        s.table("top suspects", ("rank", "path", "given", "suggested", "score"),
                [(r["rank"], r["path"], r["given_label"], r["suggested_label"] or "",
                  "" if r["score"] is None else f"{r['score']:.3f}") for r in result.top])
    s.row("suspects", str(result.path)).row("images scored", result.n_scored)
    s.row("flagged by confident learning", result.n_flagged).row("questioned by the data only", result.n_data_only)
    for c, r in result.noise_rates.items():
        s.row(f"noise rate {c} (threshold {result.thresholds.get(c, float('nan')):.2f})", round(r, 3),
              key=f"noise_rate_{c}")
    s.row("seconds", round(result.seconds, 2))
    s.print(as_json)


def register(app: typer.Typer) -> None:
    app.command("flag", **command_help("Likely label errors, by confident learning", EXAMPLES))(flag_command)
