"""``reproduce(recipe, dataset_dir)``: rerun a paper's experiment through the library's own
calls (ingest → preprocess → split → train → evaluate) and put the figures beside the
paper's.

Each ``[[protocol]]`` row of the recipe becomes one row of the result: mean ± std of the
recipe's metric over folds and repeats (``repeats`` fold seeds; seed 0 of a row with a
``reference`` reads the shipped fold list), the spread between seeds, the majority-class
baseline, the paper's figure, and the wall and CPU time the row took. A finished run that
trained exactly the same thing (see :mod:`ferdata.recipes.reuse`) is reused, so recipes
that share a stage train it once.
"""

from __future__ import annotations

import json
import os
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ferdata.errors import FerdataError, arg
from ferdata.manifest import Manifest, manifests_root
from ferdata.manifest.tables import IMAGES_TABLE
from ferdata.progress import NullProgress, ProgressSink
from ferdata.recipes.schema import DatasetSpec, ProtocolSpec, Recipe, load_recipe_file
from ferdata.training import RunResult
from ferdata.training import runs as R

METRIC_KEYS = {"accuracy": ("accuracy",), "top2": ("top2_accuracy",), "f1_macro": ("macro", "f1")}


@dataclass
class ReproduceOptions:
    """What a caller may change about a recipe run (everything else is the recipe's)."""

    quick: bool = False
    repeats: int | None = None
    seeds: tuple[int, ...] = ()
    """Explicit fold seeds (instead of ``repeats`` seeds counted from the row's own)."""
    epochs: int | None = None
    hp: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters over the recipe's (this stage only), as ``--hp KEY=VALUE``."""
    device: str = "auto"
    weights: str | None = None
    init: str | None = None
    use: dict[str, str] = field(default_factory=dict)
    """``{recipe name: run folder}``: finished runs to take instead of training that recipe's
    model (a first stage, an ensemble member); each must be on the split the row uses."""
    data: dict[str, str] = field(default_factory=dict)
    manifests: str | os.PathLike | None = None
    runs: str | os.PathLike | None = None
    only: tuple[str, ...] = ()
    reuse: bool = True
    workers: int | None = None


@dataclass
class RowResult:
    """One protocol row: the measured figure beside the paper's."""

    label: str
    protocol: str
    leaks: str
    note: str
    metric: str
    figure: float | None
    where: str
    values: list[float] = field(default_factory=list)
    baselines: list[float] = field(default_factory=list)
    seeds: list[dict[str, Any]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    reused: int = 0
    trained: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    #: epochs each fold's run trained (a reused or given run may differ from the recipe)
    epochs: list[int] = field(default_factory=list)
    #: seconds of training the runs themselves report (also for reused runs)
    train_s: float = 0.0

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def seed_std(self) -> float | None:
        """Standard deviation of the per-seed means (the spread fold assignment alone causes)."""
        means = [s["mean"] for s in self.seeds]
        return float(np.std(means, ddof=1)) if len(means) > 1 else None

    @property
    def majority(self) -> float:
        return float(np.mean(self.baselines)) if self.baselines else float("nan")

    @property
    def gap(self) -> float | None:
        """Measured minus the paper's figure, in percentage points."""
        return None if self.figure is None or not self.values else 100 * self.mean - self.figure

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "protocol": self.protocol, "leaks": self.leaks, "note": self.note,
                "metric": self.metric, "paper": self.figure, "where": self.where,
                "mean": self.mean if self.values else None, "std": self.std if self.values else None,
                "n": len(self.values), "values": self.values, "seed_std": self.seed_std, "seeds": self.seeds,
                "majority_baseline": self.majority if self.baselines else None, "gap_points": self.gap,
                "runs": self.runs, "reused": self.reused, "trained": self.trained, "epochs_run": self.epochs,
                "train_s": round(self.train_s, 2), "wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2)}


@dataclass
class ReproduceResult:
    recipe: Recipe
    mode: str
    rows: list[RowResult]
    notes: list[str]
    wall_s: float
    cpu_s: float
    load_average: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe.name, "paper": self.recipe.paper, "title": self.recipe.title,
                "metric": self.recipe.metric, "mode": self.mode, "rows": [r.to_dict() for r in self.rows],
                "notes": self.notes, "ambiguities": list(self.recipe.ambiguities),
                "wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2),
                "load_average": {"start": self.load_average[0], "end": self.load_average[1]}}


# ---- entry point --------------------------------------------------------------------------------


def resolve_recipe(spec: str | os.PathLike | Recipe, near: Recipe | None = None) -> Recipe:
    """A recipe object, a shipped recipe's name, or a path to a TOML file. A name that ``near``
    (a recipe read from a file) refers to is looked up beside that file first, so an edited
    copy of a two-stage recipe can sit next to an edited copy of its first stage."""
    from ferdata.recipes._registry import RECIPES

    if isinstance(spec, Recipe):
        return spec
    text = str(spec)
    if near is not None and near.source is not None and "/" not in text:
        beside = near.source.parent / f"{text}.toml"
        if beside.is_file():
            return load_recipe_file(beside)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        return load_recipe_file(text)
    if text in RECIPES:
        return RECIPES.create(text)
    if Path(text).is_file():
        return load_recipe_file(text)
    RECIPES.get(text)  # the registry's error lists the names
    raise AssertionError("unreachable")


def reproduce(recipe: str | os.PathLike | Recipe, dataset_dir: str | os.PathLike, *,
              options: ReproduceOptions | None = None, progress: ProgressSink | None = None,
              log: Callable[[str], None] | None = None) -> ReproduceResult:
    """Run ``recipe`` on the dataset in ``dataset_dir`` (its first ``[[dataset]]``); other
    datasets it needs come from ``options.data`` (``{key: dir}``)."""
    opts = options or ReproduceOptions()
    runner = _Runner(resolve_recipe(recipe), Path(dataset_dir), opts, progress or NullProgress(), log or (lambda _m: None))
    return runner.run()


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


class _Runner:
    def __init__(self, recipe: Recipe, dataset_dir: Path, opts: ReproduceOptions, progress: ProgressSink,
                 log: Callable[[str], None]) -> None:
        self.recipe, self.opts, self.progress, self.log = recipe, opts, progress, log
        known = {d.key for d in recipe.datasets}
        for name in ([recipe.model.init] if recipe.model.init else []) + list(recipe.model.members):
            known |= {d.key for d in resolve_recipe(name, near=recipe).datasets}
        unknown = sorted(set(opts.data) - known)
        if unknown:
            raise FerdataError(f"{arg('data')} {', '.join(unknown)}: recipe {recipe.name} reads no such dataset; "
                               f"its datasets: {', '.join(sorted(known))}")
        self.dirs = {recipe.main.key: dataset_dir, **{k: Path(v) for k, v in opts.data.items()}}
        self.manifests: dict[str, tuple[Manifest, str | None]] = {}
        self.notes: list[str] = []
        self.runs_root = R.runs_root(opts.runs)
        #: ensemble members: recipe name → its row (each member's own figure beside the ensemble's)
        self.member_rows: dict[str, RowResult] = {}

    # -- the whole recipe --

    def run(self) -> ReproduceResult:
        t0, c0, load0 = time.perf_counter(), _cpu(), os.getloadavg()[0]
        recipe = self.recipe
        rows_wanted = [p for p in recipe.protocols if not self.opts.only or p.label in self.opts.only]
        if not rows_wanted:
            raise FerdataError(f"recipe {recipe.name} has no protocol row {', '.join(self.opts.only)}; "
                               f"its rows: {', '.join(p.label for p in recipe.protocols)}")
        init_run, init_rows = self._init_stage()
        rows = init_rows + [self._row(p, init_run) for p in rows_wanted] + list(self.member_rows.values())
        mode = "quick" if self.opts.quick else "full"
        if self.opts.epochs is not None:
            mode += f", epochs={self.opts.epochs}"
        for k, v in sorted(self.opts.hp.items()):
            mode += f", {k}={v}"
        return ReproduceResult(recipe, mode, rows, self.notes, time.perf_counter() - t0, _cpu() - c0,
                               (load0, os.getloadavg()[0]))

    # -- datasets --

    def dataset(self, key: str) -> tuple[Manifest, str | None]:
        """The manifest of dataset ``key`` (ingested once, reused while its source is the same)
        and the crops config to train on (``None``: the images as they are)."""
        if key in self.manifests:
            return self.manifests[key]
        spec = self.recipe.dataset(key)
        if key not in self.dirs:
            raise FerdataError(f"recipe {self.recipe.name} needs the {key} dataset ({spec.adapter}: {spec.layout}); "
                               f"give {arg('data')} {key}=DIR")
        m = self._ingest(spec, self.dirs[key])
        crops = self._preprocess(spec, m)
        self.manifests[key] = (m, crops)
        return m, crops

    def _ingest(self, spec: DatasetSpec, source: Path) -> Manifest:
        from ferdata.ingest import ingest

        source = source.expanduser()
        if not source.exists():
            raise FerdataError(f"{source} does not exist; give the {spec.key} dataset ({spec.adapter}: {spec.layout})")
        root = manifests_root(self.opts.manifests)
        mdir = root / spec.key
        if (mdir / IMAGES_TABLE).exists():
            m = Manifest.open(spec.key, root)
            meta = m.metadata()
            same_source = Path(str(meta.get("source_root", ""))).resolve() == source.resolve()
            stored = dict(meta.get("adapter_options") or {})
            plain = not stored.pop("label_map", None) and not stored.pop("skip_unknown", False)
            same_opts = plain and {k: v for k, v in stored.items() if v is not None} == \
                {k: v for k, v in spec.options.items() if v is not None}
            if meta.get("dataset") == spec.adapter and same_source and same_opts:
                self.log(f"{spec.key}: reusing manifest {mdir}")
                return m
            raise FerdataError(f"manifest {mdir} holds another dataset or options ({meta.get('source_root')}, "
                               f"{meta.get('adapter_options')}); give another {arg('manifests')} folder, or delete it")
        self.log(f"{spec.key}: ingesting {source} ({spec.adapter}, {spec.options or 'default options'})")
        return ingest(spec.adapter, source, name=spec.key, manifests=root, workers=self.opts.workers,
                      progress=self.progress, **spec.options).manifest

    def _preprocess(self, spec: DatasetSpec, m: Manifest) -> str | None:
        if not spec.preprocess:
            return None
        images = m.images(columns=["width", "height", "readable"]).to_pandas()
        sides = np.minimum(images.loc[images["readable"], "width"], images.loc[images["readable"], "height"])
        median = float(np.median(sides)) if len(sides) else 0.0
        if median < spec.skip_preprocess_below:
            self.notes.append(f"{spec.key}: images are face crops already (median side {median:.0f} px < "
                              f"{spec.skip_preprocess_below}): face detection skipped, images used as they are")
            return None
        from ferdata.faces.preprocess import make_config, preprocess

        cfg = dict(spec.preprocess)
        detector = cfg.pop("detector")
        config = make_config(detector, **cfg)
        self.log(f"{spec.key}: detecting and cropping faces ({detector}, {config.size} px)")
        result = preprocess(m, config=config, workers=self.opts.workers, progress=self.progress)
        self.notes.append(f"{spec.key}: {detector} found a face in {result.detection_rate:.1%} of the images "
                          f"(crops {config.size} px{', grey' if config.gray else ''}, no face: {config.fallback})")
        return result.config_hash  # the config as run: padding resolved for the manifest's layout

    # -- stages --

    def _hp(self, quick_hp: dict[str, Any] | None = None, recipe: Recipe | None = None) -> dict[str, Any]:
        recipe = recipe or self.recipe
        hp = dict(recipe.model.hp)
        if self.opts.quick:
            hp.update(quick_hp if quick_hp is not None else recipe.quick.hp)
        if recipe is self.recipe:
            hp.update(self.opts.hp)
            if self.opts.epochs is not None:
                hp["epochs"] = self.opts.epochs
        weights = recipe.model.weights
        if self.opts.weights is not None and weights == "imagenet":
            weights = self.opts.weights  # the file to use where a recipe asks for ImageNet weights
        if weights not in ("none", "imagenet", ""):
            weights = str(Path(weights).expanduser().resolve())
            if not Path(weights).is_file():
                raise FerdataError(f"weights file {weights} does not exist; give {arg('weights')} PATH or imagenet")
        hp["weights"] = weights
        return hp

    def _init_stage(self) -> tuple[str | None, list[RowResult]]:
        """The run that initialises this recipe's model: ``--init RUN``, or the ``init``
        recipe's first row trained (or reused) on its dataset."""
        init = self.recipe.model.init
        given = self.opts.init or (self.opts.use.get(init) if init else None)
        if given:
            run_dir = R.open_run(given, self.opts.runs)
            self.notes.append(f"stage 1: started from the given run {run_dir}")
            return str(_checkpoint_dir(run_dir)), []
        if init is None:
            return None, []
        stage = resolve_recipe(init, near=self.recipe)
        key = stage.main.key
        if key not in self.dirs:
            raise FerdataError(f"recipe {self.recipe.name} starts from recipe {stage.name} trained on {key} "
                               f"({stage.main.layout}): give {arg('data')} {key}=DIR, or {arg('init')} RUN (a finished run)")
        # the stage reads only its own datasets: the parent's other --data keys are not its business
        stage_keys = {d.key for d in stage.datasets}
        for name in ([stage.model.init] if stage.model.init else []) + list(stage.model.members):
            stage_keys |= {d.key for d in resolve_recipe(name, near=stage).datasets}
        data = {k: v for k, v in self.opts.data.items() if k in stage_keys}
        sub = _Runner(stage, self.dirs[key], replace(self.opts, epochs=None, hp={}, init=None, only=(), data=data),
                      self.progress, self.log)
        sub.manifests = self.manifests
        sub.notes = self.notes
        row = sub._row(stage.protocols[0], None, label="stage 1")
        row.note = f"recipe {stage.name}: {row.note}"
        if not row.runs:
            raise FerdataError(f"stage 1 ({stage.name}) produced no run")
        return str(_checkpoint_dir(Path(row.runs[0]))), [row]

    # -- one protocol row --

    def _row(self, p: ProtocolSpec, init_run: str | None, label: str | None = None) -> RowResult:
        recipe = self.recipe
        t0, c0 = time.perf_counter(), _cpu()
        row = RowResult(label or p.label, self._describe(p), p.leaks, p.note, recipe.metric, p.figure, p.where)
        repeats = self.opts.repeats or recipe.repeats
        seeds = list(self.opts.seeds) or [p.seed + r for r in range(repeats)]
        for seed in seeds:
            if p.is_cross:
                values, baselines, runs = self._cross(p, init_run, row)
            else:
                values, baselines, runs = self._folds(p, seed, init_run, row)
            row.values += values
            row.baselines += baselines
            row.runs += runs
            row.seeds.append({"seed": seed, "mean": float(np.mean(values)), "n": len(values)})
            if p.is_cross:
                break  # no folds to reshuffle
        row.wall_s, row.cpu_s = time.perf_counter() - t0, _cpu() - c0
        return row

    def _describe(self, p: ProtocolSpec) -> str:
        if p.is_cross:
            return f"train all {p.train_on} → test all {p.test_on}" + (f", classes {p.classes}" if p.classes else "")
        if p.reference:
            from ferdata.splits.reference import load_reference

            h = load_reference(p.reference).header
            text = f"{h['protocol']}-{h['n_folds']} (reference {p.reference}"
            if (h.get("options") or {}).get("group_by"):
                text += f", by {h['options']['group_by']}"
            text += ")"
        else:
            text = p.protocol + (f"-{p.folds}" if p.folds else "")
            if p.group_by:
                text += f" by {p.group_by}"
            if p.test_size:
                text += f", test {p.test_size:g}"
        if p.val_size:
            text += f", val {p.val_size:g}"
        if p.classes:
            text += f", classes {p.classes}"
        return text

    def _split(self, p: ProtocolSpec, m: Manifest, seed: int) -> str:
        """Write the row's split for ``seed`` (the reference's folds for its own seed) and
        return its name; a quick run trims it to the first folds and fewer training images."""
        from ferdata.splits import make_split
        from ferdata.splits.reference import apply_reference, load_reference

        cls = f"-c{_slug(p.classes)}" if p.classes else ""
        if p.reference:
            ref = load_reference(p.reference)
            h = ref.header
            if seed == int(h.get("seed", 0)):
                name = f"{ref.name}{cls}"
                apply_reference(m, ref, classes=p.classes, name=name, workers=self.opts.workers)
            else:
                o = h.get("options") or {}
                name = f"{ref.name}{cls}-seed{seed}"
                make_split(m, h["protocol"], folds=o.get("folds"), seed=seed, val_size=o.get("val_size"),
                           test_size=o.get("test_size"), classes=p.classes or (h["class_set"]["name"]
                                                                                if h["class_set"]["name"] != "all" else None),
                           group_by=o.get("group_by"), name=name, workers=self.opts.workers)
        else:
            parts = [p.protocol] + ([str(p.folds)] if p.folds else []) + ([f"by{p.group_by}"] if p.group_by else []) + \
                ([f"t{p.test_size:g}"] if p.test_size else []) + ([f"v{p.val_size:g}"] if p.val_size else [])
            name = "-".join(parts) + cls + (f"-seed{seed}" if seed else "")
            make_split(m, p.protocol, folds=p.folds, seed=seed, val_size=p.val_size, test_size=p.test_size,
                       classes=p.classes, group_by=p.group_by, name=name, workers=self.opts.workers)
        if self.opts.quick and (self.recipe.quick.folds or self.recipe.quick.max_train):
            name = _quick_split(m, name, self.recipe.quick.folds, self.recipe.quick.max_train, seed)
        return name

    def _folds(self, p: ProtocolSpec, seed: int, init_run: str | None, row: RowResult
               ) -> tuple[list[float], list[float], list[str]]:
        m, crops = self.dataset(p.dataset or self.recipe.main.key)
        split = self._split(p, m, seed)
        self.log(f"{row.label}: {self.recipe.model.name} on {m.name} split {split} (fold seed {seed})")
        result = self._train(m, split, crops, init_run, row)
        fold_results = [f for f in (result.folds or [result]) if f.metrics.get("test", {}).get("n")]
        if len(fold_results) < len(result.folds or [result]):
            self.notes.append(f"{row.label}: {len(result.folds or [result]) - len(fold_results)} fold(s) of {split} "
                              "have no test images (a small sample?) and are left out of the mean")
        if not fold_results:
            raise FerdataError(f"split {split} of {m.name} has no test images in any fold; is the dataset complete?")
        values = [_metric(f.metrics, self.recipe.metric) for f in fold_results]
        baselines = [f.metrics["test"]["majority_baseline"] for f in fold_results]
        _account(row, fold_results)
        return values, baselines, [str(result.run_dir)]

    def _train(self, m: Manifest, split: str, crops: str | None, init_run: str | None, row: RowResult,
               recipe: Recipe | None = None) -> RunResult:
        from ferdata.models import get_model
        from ferdata.training import train
        from ferdata.training.data import manifest_hash, read_split
        from ferdata.training.hparams import resolve

        recipe = recipe or self.recipe
        if recipe.model.name == "ensemble":
            return self._ensemble(m, split, crops, row, recipe)
        plugin = get_model(recipe.model.name)
        sp = read_split(m, split)
        if recipe.name in self.opts.use:
            return _given_run(self.opts.use[recipe.name], self.opts.runs, sp.content_hash, recipe.name, row)
        fold: int | str = "all" if len(sp.folds) > 1 else sp.folds[0]
        hp = self._hp(recipe=recipe)
        resolved = json.loads(json.dumps(resolve(plugin.defaults, hp), default=str))
        if self.opts.reuse:
            from ferdata.recipes.reuse import find_run, run_key

            key = run_key(plugin.name, resolved, manifest_hash(m), sp.content_hash, fold, recipe.seed, crops, init_run)
            found = find_run(self.runs_root, key)
            if found is not None:
                self.log(f"{row.label}: reusing finished run {found.run_dir}")
                row.reused += 1
                return found
        on_epoch = self._epoch_logger(row.label)
        result = train(plugin, m, split, fold=fold, runs=self.runs_root, hparams=hp, device=self.opts.device,
                       seed=recipe.seed, crops=crops, init_from=init_run, progress=self.progress, on_epoch=on_epoch)
        row.trained += 1
        return result

    def _epoch_logger(self, label: str) -> Callable[[dict], None]:
        def log(h: dict) -> None:
            parts = [f"{label}: fold {h.get('fold')} epoch {h.get('epoch')}"]
            for k in ("train_loss", "train_accuracy", "val_accuracy"):
                if isinstance(h.get(k), float):
                    parts.append(f"{k} {h[k]:.4f}")
            if isinstance(h.get("seconds"), float):
                parts.append(f"{h['seconds']:.0f} s")
            self.log(" ".join(parts))

        return log

    def _ensemble(self, m: Manifest, split: str, crops: str | None, row: RowResult, recipe: Recipe) -> RunResult:
        """Soft voting over the member recipes' runs on this very split (each trained or reused)."""
        from ferdata.training import train

        members = []
        for name in recipe.model.members:
            member = resolve_recipe(name, near=recipe)
            if member.model.init:
                raise FerdataError(f"ensemble member {name} starts from another run; give members that train from "
                                   "their own weights")
            t0, c0 = time.perf_counter(), _cpu()
            mrow = self.member_rows.get(name)
            if mrow is None:
                first = member.protocols[0]
                mrow = self.member_rows[name] = RowResult(f"member {member.model.name}", row.protocol, first.leaks,
                                                          f"recipe {name}", member.metric, first.figure, first.where)
            result = self._train(m, split, crops, None, mrow, recipe=member)
            for f in result.folds or [result]:
                mrow.values.append(_metric(f.metrics, member.metric))
                mrow.baselines.append(f.metrics["test"]["majority_baseline"])
            _account(mrow, result.folds or [result])
            mrow.runs.append(str(result.run_dir))
            mrow.wall_s += time.perf_counter() - t0
            mrow.cpu_s += _cpu() - c0
            members.append(result.run_dir)
        self.log(f"{row.label}: soft voting over {len(members)} runs")
        return train("ensemble", members=[str(d) for d in members], runs=self.runs_root)

    def _cross(self, p: ProtocolSpec, init_run: str | None, row: RowResult) -> tuple[list[float], list[float], list[str]]:
        from ferdata.splits import make_split
        from ferdata.training import evaluate

        src, src_crops = self.dataset(p.train_on)
        dst, _ = self.dataset(p.test_on)
        cls = f"-c{_slug(p.classes)}" if p.classes else ""
        name = f"all-train{cls}"
        make_split(src, "all-train", classes=p.classes, name=name, workers=self.opts.workers)
        test_name = f"all-test{cls}"
        make_split(dst, "all-test", classes=p.classes, name=test_name, workers=self.opts.workers)
        self.log(f"{row.label}: {self.recipe.model.name} on all of {src.name}, tested on all of {dst.name}")
        result = self._train(src, name, src_crops, init_run, row)
        _account(row, result.folds or [result])
        # the test side is read as the run was trained: its faces cropped the same way
        metrics = evaluate(result.run_dir, on=str(dst.dir), split=test_name, device=self.opts.device,
                           make_crops=True, progress=self.progress)
        return [_metric(metrics, self.recipe.metric)], [metrics["test"]["majority_baseline"]], [str(result.run_dir)]


def _account(row: RowResult, results: list[RunResult]) -> None:
    """Add the epochs and training seconds the fold runs report to ``row``."""
    for f in results:
        if f.metrics.get("epochs_run") is not None:
            row.epochs.append(int(f.metrics["epochs_run"]))
        row.train_s += float(f.metrics.get("train_seconds") or 0.0)


def _given_run(run: str, runs: Any, split_hash: str, name: str, row: RowResult) -> RunResult:
    """A finished run the caller named for recipe ``name``; it must be on the same split."""
    from ferdata.recipes.reuse import load_result

    run_dir = R.open_run(run, runs)
    config = R.read_json(run_dir / R.CONFIG)
    if config.get("split", {}).get("content_hash") != split_hash:
        raise FerdataError(f"{arg('use')} {name}={run}: that run was trained on split {config.get('split', {}).get('name')} "
                           "of another content; give a run of this recipe's split")
    row.reused += 1
    return load_result(run_dir)


def _checkpoint_dir(run_dir: Path) -> Path:
    """A run with a checkpoint: the run itself, or fold 0 of a fold-all run."""
    if (run_dir / R.BEST).exists() or (run_dir / R.LAST).exists():
        return run_dir
    fold0 = run_dir / "fold-0"
    if (fold0 / R.BEST).exists():
        return fold0
    raise FerdataError(f"{run_dir} has no checkpoint to start from (best.pt); give a finished torch run")


def _metric(metrics: dict[str, Any], metric: str) -> float:
    value: Any = metrics.get("test", {})
    for k in METRIC_KEYS[metric]:
        value = value.get(k, {}) if isinstance(value, dict) else None
    if not isinstance(value, (int, float)):
        raise FerdataError(f"the run has no test {metric} (no test role in the split?)")
    return float(value)


def _quick_split(m: Manifest, name: str, folds: int | None, max_train: int | None, seed: int) -> str:
    """``<name>-quick``: the first ``folds`` folds, at most ``max_train`` training images per
    fold (a class-stratified sample), every val and test image kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ferdata.manifest import write_table
    from ferdata.splits import load_split, split_metadata, split_path
    from ferdata.splits.make import table_hash

    table = load_split(m, name)
    meta = split_metadata(m, name)
    if folds:
        table = table.filter(pc.less(table.column("fold"), folds))
    if max_train:
        from ferdata.manifest.effective import images_with_effective_labels

        labels = dict(zip(*(images_with_effective_labels(m, columns=["label"]).column(c).to_pylist()
                            for c in ("image_id", "label"))))
        rng = np.random.default_rng(seed)
        keep = np.ones(table.num_rows, bool)
        ids, fl, roles = (table.column(c).to_numpy(zero_copy_only=False) for c in ("image_id", "fold", "role"))
        for f in np.unique(fl):
            idx = np.flatnonzero((fl == f) & (roles == "train"))
            if len(idx) <= max_train:
                continue
            by_label: dict[str, list[int]] = {}
            for i in idx:
                by_label.setdefault(str(labels.get(ids[i])), []).append(i)
            chosen: list[int] = []
            for members in by_label.values():
                k = max(1, round(max_train * len(members) / len(idx)))
                chosen += rng.choice(members, size=min(k, len(members)), replace=False).tolist()
            drop = np.setdiff1d(idx, chosen)
            keep[drop] = False
        table = table.filter(pa.array(keep))
    quick = f"{name}-quick" + (f"-f{folds}" if folds else "") + (f"-n{max_train}" if max_train else "")
    meta = {**meta, "name": quick, "n_folds": len(set(table.column("fold").to_pylist())),
            "quick_of": {"split": name, "folds": folds, "max_train": max_train}, "content_hash": table_hash(table)}
    write_table(split_path(m, quick), table, meta)
    return quick
