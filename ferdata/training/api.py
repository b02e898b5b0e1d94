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

from ferdata.errors import FerdataError
from ferdata.manifest import Manifest
from ferdata.manifest.crops import latest_crop_config
from ferdata.models import ModelPlugin, get_model
from ferdata.progress import NullProgress, ProgressSink
from ferdata.training import runs as R
from ferdata.training.data import gather_examples, manifest_hash, read_split
from ferdata.training.hparams import resolve
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
    hp = resolve(plugin.defaults, overrides)
    root = R.runs_root(runs)

    if plugin.kind == "ensemble":
        from ferdata.training.ensemble import run_ensemble

        run_dir = R.new_run_dir(root, plugin.name, "ensemble", f"{len(members)}runs")
        config = {"plugin": plugin.name, "kind": plugin.kind, "hparams": hp, "versions": R.versions()}
        metrics = run_ensemble(plugin, members, run_dir, config, runs=runs)
        return RunResult(run_dir, metrics)

    if manifest is None or split is None:
        raise FerdataError(f"give --manifest and --split, e.g. 'ferdata train {model} --manifest ck48 --split spi-10'")
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
        raise FerdataError("--amp needs a CUDA device")
    base_config = {
        "plugin": plugin.name, "kind": plugin.kind, "paper": plugin.paper, "input_size": plugin.input_size,
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
        parent = R.new_run_dir(root, plugin.name, m.name, sp.name)
    if dist is not None:
        from ferdata.training.engine import broadcast

        parent = broadcast(parent, dist)
    assert parent is not None
    results = []
    try:
        for k in folds:
            run_dir = parent / f"fold-{k}" if fold == "all" else parent
            run_dir.mkdir(parents=True, exist_ok=True)
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
    if fold != "all":
        return results[0]
    return _aggregate(parent, {**base_config, "fold": "all", "folds": folds, "run_id": parent.name}, results, main)


def _run_one(plugin, m, sp, k, hp, run_dir, config, *, dev, amp, seed, workers, crops, init_from, dist,  # noqa: ANN001
             progress, on_epoch, resume: bool = False) -> RunResult:
    if hp.get("targets", "labels") == "votes" and plugin.kind != "torch":
        raise FerdataError(f"--targets votes needs a neural network model; {plugin.name!r} is a {plugin.kind} model")
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
    """Continue a run folder from its last checkpoint (every unfinished fold of a fold-all run)."""
    run_dir = R.open_run(run, runs)
    config = R.read_json(run_dir / R.CONFIG)
    plugin = get_model(config["plugin"])
    if plugin.kind != "torch":
        raise FerdataError(f"{run_dir} is a {plugin.kind} run; only neural network runs can be resumed")
    hp = resolve(plugin.defaults, {**config["hparams"], **dict(hparams or {})})
    m = Manifest.open(config["manifest"]["path"], manifests)
    sp = read_split(m, config["split"]["name"], None)
    if sp.content_hash != config["split"]["content_hash"]:
        raise FerdataError(f"split {sp.name!r} changed since {run_dir} started; train a new run instead of --resume")
    from ferdata.training.engine import init_distributed, pick_device

    dist = init_distributed(device)
    dev = pick_device(device)
    use_amp = bool(amp if amp is not None else config.get("amp", False)) and dev.type == "cuda"
    if config["fold"] == "all":
        results = []
        for k in config["folds"]:
            sub = run_dir / f"fold-{k}"
            sub.mkdir(exist_ok=True)
            sub_config = {**config, "fold": k, "run_id": sub.name, "hparams": hp}
            results.append(_run_one(plugin, m, sp, k, hp, sub, sub_config, dev=dev, amp=use_amp, seed=config["seed"],
                                    workers=workers, crops=config.get("crops"), init_from=None, dist=dist,
                                    progress=progress, on_epoch=on_epoch, resume=True))
        return _aggregate(run_dir, config, results, dist.main)
    config = {**config, "hparams": hp}
    return _run_one(plugin, m, sp, config["fold"], hp, run_dir, config, dev=dev, amp=use_amp, seed=config["seed"],
                    workers=workers, crops=config.get("crops"), init_from=None, dist=dist, progress=progress,
                    on_epoch=on_epoch, resume=True)
