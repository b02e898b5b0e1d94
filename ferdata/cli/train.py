"""``ferdata train``: one fold, every fold, an ensemble, or a resumed run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from ferdata.cli.common import (
    Example,
    JsonOpt,
    ManifestsOpt,
    RichProgress,
    Summary,
    clock,
    command_help,
    console,
    fmt,
    print_broken,
    progress_seconds,
    table,
)

if TYPE_CHECKING:
    from ferdata.training.api import RunResult

ORDER = 50

EXAMPLES = (
    Example("ferdata train small-cnn --manifest jaffe --split loso --epochs 2",
            "fold 0 of a split into runs/<time>-small-cnn-jaffe-loso/"),
    Example("ferdata train small-cnn --manifest sfew --split spi-2 --fold all --epochs 1 --hp batch_size=16",
            "every fold, test accuracy as mean ± std"),
    Example("ferdata train --list", "the models, their papers and input sizes"),
)


class EpochDisplay(RichProgress):
    """Each epoch's progress bar plus a live table of finished epochs (loss, accuracy,
    throughput) on stderr; in a log, one plain line per finished epoch at most every
    :func:`~ferdata.cli.common.progress_seconds` (and always the last), then the table."""

    COLUMNS = ("fold", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_s", "lr")

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple] = []
        self.live: Live | None = None
        self._epoch_t0: float | None = None

    def _table(self) -> Table:
        return table("epochs", [*(c.replace("_", " ") for c in self.COLUMNS), "best"], self.rows)

    def epoch_done(self, row: dict[str, Any]) -> None:
        self.rows.append((*(row.get(c) for c in self.COLUMNS), "*" if row.get("best") else ""))
        if self.console.is_terminal:
            if self.live is None:
                self.live = Live(self._table(), console=self.console, transient=False, auto_refresh=False)
                self.live.start()
            self.live.update(self._table(), refresh=True)
            return
        now = time.monotonic()
        if self._epoch_t0 is None:
            self._epoch_t0 = now - float(row.get("seconds") or 0.0)
        total = row.get("epochs")
        last = total is not None and row.get("epoch") == total
        if last or now - self._last >= progress_seconds():  # one interval with the bar's lines
            self._last = now
            self.line(self.epoch_line(row, now - self._epoch_t0))

    @staticmethod
    def epoch_line(row: dict[str, Any], elapsed: float) -> str:
        """``fold 0 epoch 4/30: train loss 1.23, train acc 0.45, val acc 0.41, 120/s, 0:12 elapsed, ETA 1:10``."""
        epoch, total = row.get("epoch"), row.get("epochs")
        parts = [f"fold {row.get('fold')} epoch {epoch}{f'/{total}' if total else ''}:"]
        for key, name in (("train_loss", "train loss"), ("train_accuracy", "train acc"), ("val_loss", "val loss"),
                          ("val_accuracy", "val acc")):
            if row.get(key) is not None:
                parts.append(f"{name} {fmt(row[key])},")
        if row.get("images_per_s"):
            parts.append(f"{row['images_per_s']:.0f} images/s,")
        parts.append(f"{clock(elapsed)} elapsed")
        if total and epoch:
            parts[-1] += f", ETA {clock(elapsed / epoch * (total - epoch))}" if epoch < total else ", done"
        return " ".join(parts)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        elif self.rows:
            self.console.print(self._table())


def _list_models() -> None:
    from ferdata.models import MODELS
    from ferdata.training import list_model_rows

    rows = []
    for r in list_model_rows():
        size = f"{r['input_size']}×{r['input_size']}×{r['channels']}" if r["input_size"] else "-"
        rows.append((r["name"], r["paper"] or "", size, r["kind"], ",".join(r["features"]), r["description"]))
    console.print(table("models", ("name", "paper", "input", "kind", "features", "description"), rows,
                        justify=["left"] * 6))
    print_broken(MODELS)


def train_command(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Model name (see --list).", show_default=False)] = None,
    manifest: Annotated[str | None, typer.Option("--manifest", "-m", help="Manifest name or folder.")] = None,
    split: Annotated[str | None, typer.Option("--split", "-s", help="Split name (manifests/<name>/splits/<split>.parquet).")] = None,
    fold: Annotated[str, typer.Option("--fold", help="Fold number, or 'all' (mean ± std).")] = "0",
    list_: Annotated[bool, typer.Option("--list", help="List the registered models and exit.")] = False,
    runs: Annotated[list[str] | None, typer.Option(
        "--runs",
        help="Folder of run folders [default: ./runs]; for 'ensemble': the member runs (--runs a b c).")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="ensemble: folder for the new run.")] = None,
    manifests: ManifestsOpt = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="[default: the model's]")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="[default: the model's]")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate [default: the model's].")] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help="sgd | adam | adamw")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay")] = None,
    momentum: Annotated[float | None, typer.Option("--momentum")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="none | step | cosine | plateau")] = None,
    patience: Annotated[int | None, typer.Option("--patience", help="Early-stopping patience on val (0: off).")] = None,
    augment: Annotated[str | None, typer.Option("--augment", help="flip,crop,rotate,scale | all | none")] = None,
    class_weights: Annotated[str | None, typer.Option("--class-weights", help="none | balanced (paper 004)")] = None,
    center_loss: Annotated[bool, typer.Option("--center-loss", help="Add center loss (λ=α=0.001, paper 001).")] = False,
    regularizer: Annotated[str | None, typer.Option("--regularizer", help="cae-mlp: weight-decay | prune | dropout")] = None,
    targets: Annotated[str | None, typer.Option(
        "--targets", help="labels | votes (soft cross-entropy on the votes_<label> distribution, e.g. FER+).")] = None,
    hp: Annotated[list[str] | None, typer.Option("--hp", help="Any hyperparameter as KEY=VALUE (repeatable).")] = None,
    weights: Annotated[str | None, typer.Option("--weights", help="none | imagenet | PATH")] = None,
    init_from: Annotated[str | None, typer.Option("--init-from", help="Start from another run's checkpoint.")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this run folder from its last checkpoint.")] = None,
    classes: Annotated[str | None, typer.Option("--classes", help="Class set when the split names none.")] = None,
    crops: Annotated[str | None, typer.Option("--crops", help="Preprocessing config of the crops [default: latest].")] = None,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="Mixed precision [default: on for CUDA].")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (CPU runs repeat exactly).")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Data-loading worker processes.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train a model on a manifest split into runs/<run-id>/ (or combine runs: ensemble --runs a b)."""
    from ferdata.errors import FerdataError
    from ferdata.training import train
    from ferdata.training.hparams import parse_hp

    if list_:
        _list_models()
        return
    if model is None and resume is None:
        raise FerdataError("give a model name, e.g. 'ferdata train small-cnn --manifest ck48 --split spi-10' (see --list)")
    if fold != "all" and not fold.lstrip("-").isdigit():
        raise FerdataError(f"--fold {fold!r}: give a fold number or 'all'")
    extra = list(ctx.args)
    if model == "ensemble":
        members, root = _members((runs or []) + extra), runs_dir
    else:
        if extra or len(runs or []) > 1:
            raise FerdataError(f"unexpected arguments {' '.join(extra or runs or [])!r}; --runs takes one folder here")
        members, root = [], runs_dir or (Path(runs[0]) if runs else None)
    overrides = parse_hp(hp)
    overrides.update({k: v for k, v in dict(
        epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
        momentum=momentum, schedule=schedule, patience=patience, augment=augment, class_weights=class_weights,
        regularizer=regularizer, targets=targets).items() if v is not None})
    if center_loss:
        overrides["center_loss"] = True
    display = EpochDisplay()
    try:
        result = train(model or "", manifest, split, fold=fold if fold == "all" else int(fold), manifests=manifests,
                       runs=root, hparams=overrides, weights=weights, init_from=init_from, device=device, amp=amp,
                       seed=seed, workers=workers, classes=classes, crops=crops, resume=resume,
                       members=members, progress=display, on_epoch=display.epoch_done)
    finally:
        display.finish()
        display.close()
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only the first process reports
        train_summary(result).print(as_json)


def _members(runs: list[str] | None) -> list[str]:
    out: list[str] = []
    for r in runs or ():
        out.extend(s for s in r.replace(",", " ").split() if s)
    return out


def _started_from(run_dir: Path, folds: list) -> str | None:
    """The weights the run (its first fold, for a fold-all run) started from, in words."""
    from ferdata.training import runs as R
    from ferdata.training.weights import describe_start

    path = (run_dir / folds[0].run_dir.name if folds else run_dir) / R.CONFIG
    return describe_start(R.read_json(path)) if path.exists() else None


NO_BEST_EPOCH = "none: no validation set, the last epoch is kept"


def train_summary(result: RunResult) -> Summary:
    """The closing table of a training run (also the last stage of 'ferdata pipeline')."""
    m = result.metrics
    s = Summary("training run")
    s.row("run", str(result.run_dir))
    s.row("started from", _started_from(result.run_dir, result.folds))
    if "aggregate" in m:
        for key in ("accuracy", "top2_accuracy", "macro_f1", "majority_baseline"):
            a = m["aggregate"][key]
            s.row(f"test {key.replace('_', ' ')} (mean ± std, {m['aggregate']['folds']} folds)",
                  f"{a['mean']:.4f} ± {a['std']:.4f}", key=f"test_{key}")
            s.data[f"test_{key}_mean"], s.data[f"test_{key}_std"] = a["mean"], a["std"]
    for role in ("train", "val", "test"):
        r = m.get(role)
        if r and r.get("n"):
            s.row(f"{role} images", r["n"]).row(f"{role} accuracy", r["accuracy"])
            if role == "test":
                s.row("test top-2 accuracy", r["top2_accuracy"]).row("test macro F1", r["macro"]["f1"])
                s.row("test weighted F1", r["weighted"]["f1"]).row("majority class (test)", r["majority_baseline"])
    for member, acc in (m.get("members") or {}).items():
        s.row(f"member {Path(member).name} test accuracy", acc)
    for key in ("epochs_run", "best_epoch", "stopped_early", "train_seconds"):
        if key in m:
            unset = key == "best_epoch" and m[key] is None
            s.row(key.replace("_", " "), m[key], text=NO_BEST_EPOCH if unset else None)
    for why, n in (m.get("excluded") or {}).items():
        s.row(f"left out: {why}", n)
    if result.folds:
        s.table("folds", ("fold", "val accuracy", "test accuracy"),
                [(f.run_dir.name, f.metrics.get("val", {}).get("accuracy"), f.metrics.get("test", {}).get("accuracy"))
                 for f in result.folds])
    return s


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=False,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
                **command_help("Train a model on a split into runs/<run-id>/", EXAMPLES))(train_command)
