"""``train(...)``: the library call behind ``ferdata train``.

One fold → one run folder. ``fold="all"`` → a parent run folder with one ``fold-<k>/`` run
per fold, the folds' predictions concatenated (out-of-fold probabilities for the test
role) and mean ± std in its metrics.json.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ferdata import atomic
from ferdata.errors import FerdataError, Interrupted, arg
from ferdata.manifest import Manifest
from ferdata.manifest.crops import latest_crop_config
from ferdata.models import ModelPlugin, default_weights, get_model
from ferdata.progress import NullProgress, ProgressSink
from ferdata.training import runs as R
from ferdata.training.data import gather_examples, manifest_hash, read_split
from ferdata.training.hparams import input_size, resolve
from ferdata.training.metrics import aggregate_folds


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    folds: list[RunResult] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        """Test accuracy (mean over folds for a fold-all run)."""
        if "aggregate" in self.metrics:
            return self.metrics["aggregate"]["accuracy"]["mean"]
        return self.metrics.get("test", {}).get("accuracy")


def train(
    model: str | ModelPlugin,
    manifest: str | Manifest | None = None,
    split: str | None = None,
    *,
    fold: int | str = 0,
    manifests: str | os.PathLike | None = None,
    runs: str | os.PathLike | None = None,
    hparams: Mapping[str, Any] | None = None,
    weights: str | None = None,
    init_from: str | os.PathLike | None = None,
    device: str | None = "auto",
    amp: bool | None = None,
    seed: int = 0,
    workers: int = 0,
    classes: str | None = None,
    crops: str | None = None,
    resume: str | os.PathLike | None = None,
    members: Sequence[str | os.PathLike] = (),
    progress: ProgressSink | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunResult:
    """Train ``model`` (a registered name, or a :class:`ModelPlugin`) on a split of a manifest (or combine ``members`` for an ensemble).

    ``hparams`` override the plugin's defaults (lr, epochs, batch_size, optimizer, augment,
    class_weights, center_loss, patience, ... see :mod:`ferdata.training.hparams`).
    ``resume`` continues the run folder it names (its config wins; ``epochs`` may grow).
    """
    progress = progress or NullProgress()
    if resume is not None:
        return _resume(resume, runs=runs, manifests=manifests, hparams=hparams, device=device, amp=amp,
                       workers=workers, progress=progress, on_epoch=on_epoch)
    plugin = model if isinstance(model, ModelPlugin) else get_model(model)
    overrides = dict(hparams or {})
    if weights is not None:
        overrides["weights"] = weights
    # A fine-tuning recipe (ALF, LLF, last-n blocks) starts from ImageNet unless told otherwise.
    hp = resolve({"weights": default_weights(plugin), **plugin.defaults}, overrides)
    root = R.runs_root(runs)

    if plugin.kind == "ensemble":
        from ferdata.training.ensemble import run_ensemble

        run_dir = R.new_run_dir(root, plugin.name, "ensemble", f"{len(members)}runs")
        config = {"plugin": plugin.name, "kind": plugin.kind, "hparams": hp, "versions": R.versions()}
        metrics = run_ensemble(plugin, members, run_dir, config, runs=runs)
        return RunResult(run_dir, metrics)

    if manifest is None or split is None:
        raise FerdataError(f"give {arg('manifest')} and {arg('split')}, e.g. 'ferdata train {model} --manifest ck48 --split spi-10'")
    m = manifest if isinstance(manifest, Manifest) else Manifest.open(manifest, manifests)
    sp = read_split(m, split, classes)
    # Pin the crops a run reads: a later 'ferdata preprocess' must not change what this run
    # (its report, its predict) believes it was trained on.
    crops = crops or latest_crop_config(m)
    from ferdata.training.engine import init_distributed, pick_device

    dist = init_distributed(device) if plugin.kind == "torch" else None
    dev = pick_device(device) if plugin.kind == "torch" else None
    if dev is not None and dist is not None and dist.active and dev.type == "cuda":
        import torch

        dev = torch.device("cuda", dist.local_rank)
    use_amp = bool(amp if amp is not None else (dev is not None and dev.type == "cuda"))
    if use_amp and (dev is None or dev.type != "cuda"):
        raise FerdataError(f"{arg('amp')} needs a CUDA device")
    base_config = {
        "plugin": plugin.name, "kind": plugin.kind, "paper": plugin.paper, "input_size": input_size(plugin, hp),
        "channels": plugin.channels, "features": list(plugin.features), "hparams": hp,
        "manifest": {"name": m.name, "path": str(m.dir.resolve()), "content_hash": manifest_hash(m)},
        "split": {"name": sp.name, "protocol": sp.protocol, "content_hash": sp.content_hash,
                  "class_set": sp.classes.to_dict()},
        "classes": list(sp.classes.classes), "seed": seed, "versions": R.versions(),
        "device": str(dev) if dev is not None else "cpu", "amp": use_amp,
        "world_size": dist.world if dist is not None else 1,
        "init_from": str(init_from) if init_from else None, "crops": crops,
    }
    folds = sp.folds if fold == "all" else [int(fold)]
    main = dist is None or dist.main
    parent = None
    if main:
        atomic.ensure_writable(root)  # before any decoding or training
        parent = R.new_run_dir(root, plugin.name, m.name, sp.name)
    if dist is not None:
        from ferdata.training.engine import broadcast

        parent = broadcast(parent, dist)
    assert parent is not None
    group_config = {**base_config, "fold": "all", "folds": folds, "run_id": parent.name}
    if fold == "all" and main:
        R.write_json(parent / R.CONFIG, group_config)  # first, so an interrupted run can be resumed
    results = []
    try:
        for k in folds:
            run_dir = parent / f"fold-{k}" if fold == "all" else parent
            atomic.make_folder(run_dir)
            config = {**base_config, "fold": k, "run_id": run_dir.name}
            results.append(_run_one(plugin, m, sp, k, hp, run_dir, config, dev=dev, amp=use_amp, seed=seed,
                                    workers=workers, crops=crops, init_from=init_from, dist=dist, progress=progress,
                                    on_epoch=on_epoch))
    except FerdataError:
        # A run that failed before its first checkpoint (bad weights, no images) leaves no folder behind.
        if main and not any(parent.rglob(R.LAST)) and not any(parent.rglob(R.PREDICTIONS)):
            import shutil

            shutil.rmtree(parent, ignore_errors=True)
        raise
    except KeyboardInterrupt:
        raise Interrupted(_kept(parent, folds if fold == "all" else None)) from None
    if fold != "all":
        return results[0]
    return _aggregate(parent, group_config, results, main)


def _recipe(config: Mapping[str, Any]) -> str:
    """What decides a fold-all run's results, comparable across runs."""
    import json

    keys = ("plugin", "classes", "seed", "crops", "init_from")
    recipe = {k: config.get(k) for k in keys}
    recipe.update(hparams=config.get("hparams"), manifest=(config.get("manifest") or {}).get("content_hash"),
                  split=(config.get("split") or {}).get("content_hash"))
    return json.dumps(recipe, sort_keys=True, default=str)


def unfinished_run(model: str, manifest: Manifest, split: str, *, runs: str | os.PathLike | None = None,
                   hparams: Mapping[str, Any] | None = None, seed: int = 0, classes: str | None = None,
                   crops: str | None = None) -> Path | None:
    """The newest interrupted fold-all run under ``runs`` (config written, no metrics yet)
    that ``train(model, manifest, split, fold="all", ...)`` would make again, or ``None``:
    ``ferdata flag --model`` resumes it instead of starting over."""
    root = R.runs_root(runs)
    if not root.is_dir():
        return None
    plugin = get_model(model)
    sp = read_split(manifest, split, classes)
    want = _recipe({"plugin": plugin.name, "classes": list(sp.classes.classes), "seed": seed,
                    "crops": crops or latest_crop_config(manifest), "init_from": None,
                    "hparams": resolve(plugin.defaults, dict(hparams or {})),
                    "manifest": {"content_hash": manifest_hash(manifest)},
                    "split": {"content_hash": sp.content_hash}})
    for candidate in sorted(root.iterdir(), reverse=True):
        config_path = candidate / R.CONFIG
        if not config_path.is_file() or (candidate / R.METRICS).exists():
            continue
        try:
            config = R.read_json(config_path)
        except FerdataError:
            continue
        if config.get("fold") == "all" and _recipe(config) == want:
            return candidate
    return None


def _kept(run_dir: Path, folds: Sequence[int] | None) -> str:
    """What an interrupted run keeps (as found on disk), and how to go on."""
    if folds is not None:
        n_done = sum((run_dir / f"fold-{k}" / R.METRICS).is_file() for k in folds)
        return (f"{n_done} of {len(folds)} folds finished and kept in {run_dir}; continue with "
                f"'ferdata train --resume {run_dir}'")
    epochs = len([h for h in R.read_history(run_dir) if h.get("epoch") is not None]) if run_dir.is_dir() else 0
    return f"{epochs} epoch(s) kept in {run_dir}; continue with 'ferdata train --resume {run_dir}'"


def finished_fold(run_dir: Path, hp: Mapping[str, Any]) -> RunResult | None:
    """A fold run that has nothing left to do (its predictions written after its last epoch
    or an early stop), so a resumed fold-all run skips it; else ``None``."""
    if not (run_dir / R.PREDICTIONS).is_file() or not (run_dir / R.METRICS).is_file():
        return None
    metrics = R.read_json(run_dir / R.METRICS)
    if metrics.get("stopped_early") or int(metrics.get("epochs_run") or 0) >= int(hp.get("epochs") or 0):
        return RunResult(run_dir, metrics)
    return None


def _run_one(plugin, m, sp, k, hp, run_dir, config, *, dev, amp, seed, workers, crops, init_from, dist,  # noqa: ANN001
             progress, on_epoch, resume: bool = False) -> RunResult:
    if hp.get("targets", "labels") == "votes" and plugin.kind != "torch":
        raise FerdataError(f"{arg('targets')} votes needs a neural network model; {plugin.name!r} is a {plugin.kind} model")
    ex = gather_examples(m, sp, k, features=plugin.features, crops=crops, targets=hp.get("targets", "labels"))
    config = {**config, "n_images": len(ex.image_ids), "excluded": ex.excluded, "source": ex.source}
    if plugin.kind == "sklearn":
        from ferdata.training.sklearn_fit import fit_fold

        metrics = fit_fold(plugin, ex, hp, run_dir, k, config, progress=progress, seed=seed)
        if on_epoch is not None:
            on_epoch(R.read_history(run_dir)[-1])
        return RunResult(run_dir, metrics)
    if plugin.kind != "torch":
        raise FerdataError(f"model {plugin.name!r} is a {plugin.kind} model; use 'ferdata train {plugin.name} --runs ...'")
    from ferdata.training.engine import Dist, FoldJob, run_fold

    job = FoldJob(plugin=plugin, examples=ex, hp=hp, run_dir=run_dir, fold=k, config=config, device=dev, amp=amp,
                  seed=seed, workers=workers, init_from=str(init_from) if init_from else None, resume=resume,
                  dist=dist or Dist(), progress=progress, on_epoch=on_epoch)
    return RunResult(run_dir, run_fold(job))


def _aggregate(parent: Path, config: dict[str, Any], results: list[RunResult], main: bool) -> RunResult:
    metrics: dict[str, Any] = {"fold": "all", "classes": config["classes"],
                               "aggregate": aggregate_folds([r.metrics for r in results], "test"),
                               "aggregate_val": aggregate_folds([r.metrics for r in results], "val"),
                               "folds": {str(r.metrics["fold"]): {role: r.metrics.get(role, {}).get("accuracy")
                                                                   for role in ("train", "val", "test")}
                                         for r in results},
                               "train_seconds": sum(r.metrics.get("train_seconds", 0) for r in results)}
    if main:
        tables = [R.read_predictions(r.run_dir)[0] for r in results]
        R.write_predictions(parent / R.PREDICTIONS, pa.concat_tables(tables), config["classes"])
        R.write_json(parent / R.CONFIG, config)
        R.write_json(parent / R.METRICS, metrics)
    return RunResult(parent, metrics, results)


def _resume(run: str | os.PathLike, *, runs, manifests, hparams, device, amp, workers, progress, on_epoch) -> RunResult:  # noqa: ANN001
    """Continue a run folder from its last checkpoint; a fold-all run skips the folds that
    finished and continues the others (a model without checkpoints fits them again)."""
    run_dir = R.open_run(run, runs)
    config = R.read_json(run_dir / R.CONFIG)
    plugin = get_model(config["plugin"])
    if plugin.kind not in ("torch", "sklearn"):
        raise FerdataError(f"{run_dir} is a {plugin.kind} run; only trained models can be resumed")
    hp = resolve(plugin.defaults, {**config["hparams"], **dict(hparams or {})})
    m = Manifest.open(config["manifest"]["path"], manifests)
    sp = read_split(m, config["split"]["name"], None)
    if sp.content_hash != config["split"]["content_hash"]:
        raise FerdataError(f"split {sp.name!r} changed since {run_dir} started; train a new run instead of {arg('resume')}")
    dist = dev = None
    use_amp = False
    if plugin.kind == "torch":
        from ferdata.training.engine import init_distributed, pick_device

        dist = init_distributed(device)
        dev = pick_device(device)
        use_amp = bool(amp if amp is not None else config.get("amp", False)) and dev.type == "cuda"
    main = dist is None or dist.main
    atomic.ensure_writable(run_dir)
    if config["fold"] == "all":
        results = []
        try:
            for k in config["folds"]:
                sub = run_dir / f"fold-{k}"
                done = finished_fold(sub, hp)
                if done is not None:
                    results.append(done)
                    continue
                atomic.make_folder(sub)
                sub_config = {**config, "fold": k, "run_id": sub.name, "hparams": hp}
                sub_config.pop("folds", None)
                results.append(_run_one(plugin, m, sp, k, hp, sub, sub_config, dev=dev, amp=use_amp,
                                        seed=config["seed"], workers=workers, crops=config.get("crops"),
                                        init_from=None, dist=dist, progress=progress, on_epoch=on_epoch,
                                        resume=True))
        except KeyboardInterrupt:
            raise Interrupted(_kept(run_dir, config["folds"])) from None
        return _aggregate(run_dir, {**config, "hparams": hp}, results, main)
    config = {**config, "hparams": hp}
    try:
        return _run_one(plugin, m, sp, config["fold"], hp, run_dir, config, dev=dev, amp=use_amp, seed=config["seed"],
                        workers=workers, crops=config.get("crops"), init_from=None, dist=dist, progress=progress,
                        on_epoch=on_epoch, resume=True)
    except KeyboardInterrupt:
        raise Interrupted(_kept(run_dir, None)) from None
