"""``ferdata flag``: likely label errors, found with confident learning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import ManifestsOpt, RichProgress, console, summary_table

ORDER = 65


def flag_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    from_runs: Annotated[list[Path] | None, typer.Option(
        "--from-runs", help="Run folders (or a folder of runs) whose predictions.parquet hold out-of-fold "
                            "probabilities; repeatable.")] = None,
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
    rows = [("suspects", str(result.path)), ("images scored", result.n_scored),
            ("flagged by confident learning", result.n_flagged), ("questioned by the data only", result.n_data_only)]
    rows += [(f"noise rate {c} (threshold {result.thresholds.get(c, float('nan')):.2f})", round(r, 3))
             for c, r in result.noise_rates.items()]
    rows.append(("seconds", round(result.seconds, 2)))
    console.print(summary_table(f"flag {manifest.name}", rows))
    if result.top:
        console.print(summary_table(
            "top suspects", [(r["rank"], r["path"], r["given_label"], r["suggested_label"] or "",
                              "" if r["score"] is None else f"{r['score']:.3f}") for r in result.top],
            ("rank", "path", "given", "suggested", "score")))


def register(app: typer.Typer) -> None:
    app.command("flag")(flag_command)
