"""Finding a finished run that already trained exactly what a recipe asks for.

Two recipes often share a stage (every paper-001 recipe starts from the same FER-2013
run), and a rerun of a recipe should not retrain what is already there. A run is the
same when its model, resolved hyperparameters (weights included), manifest and split
content hashes, fold, seed, crops and starting run all agree; the run must have finished
(its ``metrics.json`` written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ferdata.training import RunResult
from ferdata.training import runs as R


def run_key(plugin: str, hparams: dict[str, Any], manifest_hash: str, split_hash: str, fold: int | str, seed: int,
            crops: str | None, init_from: str | None) -> str:
    """A canonical text of everything that decides what a run learns."""
    return json.dumps({"plugin": plugin, "hparams": hparams, "manifest": manifest_hash, "split": split_hash,
                       "fold": fold, "seed": seed, "crops": crops,
                       "init_from": str(Path(init_from).resolve()) if init_from else None},
                      sort_keys=True, default=str)


def key_of_config(config: dict[str, Any]) -> str | None:
    """The :func:`run_key` of a run folder's ``config.json`` (``None`` for ensembles and odd files)."""
    try:
        init = config.get("init_from")
        if isinstance(init, dict):
            init = init.get("run")
        return run_key(config["plugin"], config["hparams"], config["manifest"]["content_hash"],
                       config["split"]["content_hash"], config["fold"], config["seed"], config.get("crops"), init)
    except (KeyError, TypeError):
        return None


def find_run(root: Path, key: str) -> RunResult | None:
    """The newest finished run directly under ``root`` whose config gives ``key``."""
    if not root.is_dir():
        return None
    for run_dir in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        cfg_path, metrics_path = run_dir / R.CONFIG, run_dir / R.METRICS
        if not (cfg_path.is_file() and metrics_path.is_file()):
            continue
        try:
            config = R.read_json(cfg_path)
        except Exception:  # noqa: BLE001 - a half-written or foreign file is simply not a match
            continue
        if key_of_config(_normalised(config)) != key:
            continue
        result = load_result(run_dir)
        if result is not None:
            return result
    return None


def load_result(run_dir: Path) -> RunResult | None:
    """A finished run folder as a :class:`RunResult` (its folds too); ``None`` if a fold is missing."""
    config = R.read_json(run_dir / R.CONFIG)
    metrics = R.read_json(run_dir / R.METRICS)
    if config.get("fold") != "all":
        return RunResult(run_dir, metrics)
    folds = []
    for k in config.get("folds", []):
        sub = run_dir / f"fold-{k}"
        if not (sub / R.METRICS).is_file():
            return None
        folds.append(RunResult(sub, R.read_json(sub / R.METRICS)))
    return RunResult(run_dir, metrics, folds)


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """JSON round trip of the hyperparameters, as :func:`run_key` sees freshly resolved ones."""
    return {**config, "hparams": json.loads(json.dumps(config.get("hparams"), default=str))}
