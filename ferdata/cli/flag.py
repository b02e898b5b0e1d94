"""``ferdata flag``: likely label errors, found with confident learning."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    NoWaitOpt,
    RichProgress,
    Summary,
    command_help,
    lock_waits,
)

ORDER = 65

EXAMPLES = (
    Example("ferdata flag sfew --from-runs latest",
            "score every image with the runs of 'train --fold all' (each image by the fold that held it out)"),
    Example("ferdata flag sfew --model small-cnn --split spi-2 --epochs 1",
            "train one model per fold of a grouped split and score each fold's held-out images"),
    Example("ferdata flag jaffe", "the default scorer: frozen ImageNet MobileNetV2 descriptors and a small head "
                                  "per fold of the strictest split the data allows (no training run)"),
    Example("ferdata info sfew --suspects 10", "then: the top 10 suspects"),
)


def flag_command(
    name: Annotated[str, typer.Argument(help="Manifest name (or folder).")],
    from_runs: Annotated[list[Path] | None, typer.Option(
        "--from-runs", help="Run folders (or a folder of runs, a run id, 'latest') whose predictions.parquet "
                            "hold out-of-fold probabilities; repeatable.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Train this model once per fold of --split and score each fold's held-out images "
                        "[default: frozen MobileNetV2 descriptors and a logistic head per fold].")] = None,
    split: Annotated[str | None, typer.Option(
        "--split", "-s", help="With --model: a grouped split (spi, loso, ...) [default: the strictest the data "
                              "allows, written as splits/<protocol>-<k>].")] = None,
    image_level: Annotated[bool, typer.Option(
        "--image-level", help="With --model: accept a split that does not keep subjects apart.")] = False,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds of the split made when none is given.")] = 5,
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="Default scorer: MobileNetV2 ImageNet weights [default: $FERDATA_BACKBONE_WEIGHTS, "
                          "else torchvision's file in its cache].")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="With --model [default: the model's].")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="With --model [default: the model's].")]
        = None,
    lr: Annotated[float | None, typer.Option("--lr", help="With --model: learning rate [default: the model's].")] = None,
    val_size: Annotated[float | None, typer.Option(
        "--val-size", help="With --model and no --split: carve a validation part (this share of each fold's "
                           "training part) for early stopping and the best checkpoint.")] = None,
    patience: Annotated[int | None, typer.Option(
        "--patience", help="With --model: early-stopping patience on the validation part (0: off).")] = None,
    hp: Annotated[list[str] | None, typer.Option(
        "--hp", help="With --model: any hyperparameter as KEY=VALUE (repeatable), as in 'ferdata train'.")] = None,
    device: Annotated[str, typer.Option("--device", help="With --model: auto | cpu | cuda | cuda:N | mps")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (split, heads, training).")] = 0,
    classes: Annotated[str | None, typer.Option("--classes", help="Class set [default: every emotion present].")]
        = None,
    runs: Annotated[Path | None, typer.Option(
        "--runs", help="Folder for the run folder [default: $FERDATA_RUNS or ./runs].")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Worker processes for the descriptors, threads for the heads [default: "
                                       "number of cores].")] = None,
    rank_by: Annotated[str | None, typer.Option(
        "--rank-by", help="Order of the list: both | self_confidence | normalized_margin [default: "
                          "self_confidence after the default scorer's second pass, else both].")] = None,
    filter_by: Annotated[str | None, typer.Option(
        "--filter-by", help="Which images confident learning flags; cleanlab's names and meanings "
                            "(prune_by_noise_rate, prune_by_class, both, confident_learning, predicted_neq_given, "
                            "low_normalized_margin, low_self_confidence), low_score: as many as confident "
                            "learning estimates, highest --rank-by score first, or confident_other: where the "
                            "calibrated probability of another class is >= 0.6 [default: low_score; "
                            "confident_other when the scorer is near chance or has under 50 images per "
                            "class].")] = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="With --from-runs: flag from runs that miss folds of their split (the rest stay unscored).")]
        = False,
    manifests: ManifestsOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Find likely mislabeled images with confident learning on out-of-fold probabilities; writes suspects.parquet."""
    from ferdata.errors import FerdataError
    from ferdata.manifest import Manifest
    from ferdata.noise import flag, oof_from_model, read_run_predictions
    from ferdata.oof.scorer import cpu_seconds

    started, cpu_start = time.perf_counter(), cpu_seconds()
    manifest = Manifest.open(name, manifests)
    if from_runs and model:
        raise FerdataError("give one source of out-of-fold probabilities: --model MODEL (train one model per fold), "
                           "--from-runs RUN_DIR (existing runs), or neither (frozen MobileNetV2 descriptors)")
    model_only = {"--split": split, "--epochs": epochs, "--batch-size": batch_size, "--lr": lr, "--val-size": val_size,
                  "--patience": patience, "--hp": hp}
    stray = [k for k, v in model_only.items() if v] + (["--image-level"] if image_level else [])
    if stray and not model:
        raise FerdataError(f"{', '.join(stray)} appl{'ies' if len(stray) == 1 else 'y'} to --model only; "
                           f"e.g. 'ferdata flag {name} --model small-cnn {stray[0]} ...'")
    if weights and (model or from_runs):
        raise FerdataError("--weights is for the default scorer (MobileNetV2 descriptors); drop it with "
                           "--model or --from-runs")
    progress = RichProgress()
    source_rows: list[tuple[str, object]] = []
    notes: list[str] = []
    if model:
        from ferdata.training.hparams import parse_hp

        hparams = parse_hp(hp)
        hparams.update({k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience).items()
                        if v is not None})
        split_name, made, no_subjects = split, None, False
        if not split_name:
            split_name, made, no_subjects = _model_split(manifest, folds, seed, classes, val_size, workers, progress)
        elif val_size is not None:
            raise FerdataError(f"--val-size makes a new split; '{split_name}' already has its roles (make one with "
                               f"'ferdata split {name} --val-size {val_size}', or drop --split)")
        # Without subjects, image-level folds (copies kept together) are the strictest there are.
        oof = oof_from_model(manifest, model, split_name, allow_image_level=image_level or no_subjects, runs=runs,
                             hparams=hparams, device=device, seed=seed, classes=classes, progress=progress)
        source_rows += [("scorer", f"{model}, one model per fold"),
                        ("split", f"{split_name}" + (f" ({made})" if made else ""))]
        if oof.source.get("resumed"):
            source_rows.append(("resumed interrupted run", oof.source["run"]))
    elif from_runs:
        oof = read_run_predictions(from_runs, manifest=manifest, partial=partial)
        source_rows.append(("scorer", f"predictions of {oof.source.get('n_files', len(from_runs))} run(s)"))
    else:
        from ferdata.oof.scorer import score_out_of_fold

        scored = score_out_of_fold(manifest, weights=weights, folds=folds, seed=seed, classes=classes, runs=runs,
                                   workers=workers, progress=progress)
        oof, notes = scored.oof, scored.notes
        what = "MobileNetV2 (ImageNet)" if scored.descriptor == "mobilenet_v2" else "HOG"
        source_rows += [("scorer", f"{what} descriptors{' (cached)' if scored.cached_descriptors else ''}"
                                   f" + {scored.head['kind']} head per fold"
                                   + (f" ({scored.head['seeds']} seeds averaged)" if scored.head.get("seeds", 1) > 1
                                      else "")),
                        ("split", f"{scored.split_name} ({scored.protocol}, in memory; copies and near-copies "
                                  "share a fold)")]
        if scored.clean_pass_left_out:
            left_out = f"{scored.clean_pass_left_out:,}"
            source_rows.append(("second pass", f"heads fitted again without the {left_out} images the first pass flagged"))
    with lock_waits(no_wait):
        result = flag(manifest, oof, rank_by=rank_by, filter_by=filter_by, progress=progress)
    s = Summary(f"flag {manifest.name}")
    if result.top:
        s.table("top suspects", ("rank", "path", "given", "suggested", "score"),
                [(r["rank"], r["path"], r["given_label"], r["suggested_label"] or "",
                  "" if r["score"] is None else f"{r['score']:.3f}") for r in result.top])
    s.row("suspects", str(result.path))
    if result.run:
        s.row("run folder", result.run)
    for label, value in source_rows:
        s.row(label, value)
    s.row("images scored", result.n_scored).row("out-of-fold accuracy", round(result.accuracy, 4))
    s.row(f"majority baseline ({result.majority_class})", round(result.baseline, 4), key="majority_baseline")
    s.row("flagged by the scorer", f"{result.n_flagged:,} ({result.flagged_share:.1%} of scored)",
          key="flagged_by_the_scorer")
    s.row("ranked by (--rank-by)", result.rank_by, key="rank_by")
    s.row("rule (--filter-by)", result.rule if result.rule != "confident_other" else
          f"confident_other (confident learning estimates {result.n_estimated:,})", key="rule")
    s.row("flagged", result.n_flagged, show=False).row("flagged share", round(result.flagged_share, 4), show=False)
    s.row("questioned by the data only", result.n_data_only)
    unscored = sum(p["unscored"] for p in (oof.source.get("partial") or {}).values())
    if unscored:
        s.row("images left unscored (--partial)", unscored, key="images_left_unscored")
    for c, r in result.noise_rates.items():
        s.row(f"noise rate {c} (threshold {result.thresholds.get(c, float('nan')):.2f})", round(r, 3),
              key=f"noise_rate_{c}")
    s.row("seconds", round(time.perf_counter() - started, 1))
    s.row("CPU seconds (this process and its workers)", round(cpu_seconds() - cpu_start, 1), key="cpu_seconds")
    for note in notes:
        s.note("note: " + note)
    for warning in result.warnings:
        s.warn(warning)
    s.print(as_json)


def _model_split(manifest, folds: int, seed: int, classes: str | None, val_size: float | None,  # noqa: ANN001
                 workers: int | None, progress) -> tuple[str, str, bool]:  # noqa: ANN001
    """The strictest split the data allows, written so the engine can train on it (an
    existing split of that name is reused as it is); and whether it is image-level
    because the data has no subjects."""
    from ferdata.oof.split import flag_protocol
    from ferdata.splits import make_split, split_path

    protocol, k = flag_protocol(manifest, folds)
    name = f"{protocol}-{k}" + (f"-val{val_size:g}" if val_size else "")
    if split_path(manifest, name).exists():
        return name, "existing split", protocol == "kfold"
    make_split(manifest, protocol, folds=k, seed=seed, classes=classes, val_size=val_size, name=name,
               workers=workers, progress=progress)
    return name, f"made now: {protocol}, {k} folds", protocol == "kfold"


def register(app: typer.Typer) -> None:
    app.command("flag", **command_help("Likely label errors, by confident learning", EXAMPLES))(flag_command)
