"""What a recipe file says, checked: one paper experiment as a small TOML file.

A recipe names the dataset(s) and how to ingest them, the face preprocessing, the model,
its starting weights, hyperparameters and schedule, what a ``--quick`` run changes, and
one ``[[protocol]]`` table per way of evaluating it: the paper's protocol with the paper's
figure, and beside it the strictly person-independent one where the paper's leaks
subjects. ``ambiguities`` lists where the paper is unclear and what the recipe chose.
Every field is explicit, so a recipe does not move when a library default changes.

Copy one (``ferdata reproduce --show NAME > mine.toml``), edit it, and run the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferdata.errors import FerdataError

#: Protocols a recipe row may name: ferdata's split protocols plus ``cross`` (train on all
#: of one dataset, test on all of another).
CROSS = "cross"
METRICS = ("accuracy", "f1_macro", "top2")
LEAKS = ("none", "subjects", "sequences", "movies")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset a recipe reads: ``key`` is the manifest name and the ``--data KEY=DIR`` key."""

    key: str
    adapter: str
    layout: str
    options: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None
    #: Images whose median shorter side is below this many pixels are taken as face crops
    #: already (CK+48, FER-2013): preprocessing is skipped and the table says so.
    skip_preprocess_below: int = 0
    sample: str | None = None
    """A folder under the shared test data holding this dataset (tests, documentation)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weights: str = "none"
    init: str | None = None
    """A recipe whose finished run initialises this model (two-stage fine-tuning)."""
    members: tuple[str, ...] = ()
    """Recipes whose runs an ensemble combines (soft voting)."""
    hp: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolSpec:
    """One row of the result table: how to split and what the paper reported for it."""

    label: str
    protocol: str | None = None
    reference: str | None = None
    folds: int | None = None
    test_size: float | None = None
    val_size: float | None = None
    group_by: str | None = None
    classes: str | None = None
    seed: int = 0
    dataset: str | None = None
    train_on: str | None = None
    test_on: str | None = None
    figure: float | None = None
    where: str = ""
    leaks: str = "none"
    note: str = ""

    @property
    def is_cross(self) -> bool:
        return self.protocol == CROSS


@dataclass(frozen=True)
class QuickSpec:
    hp: dict[str, Any] = field(default_factory=dict)
    folds: int | None = None
    max_train: int | None = None
    """At most this many training images per fold (stratified sample) in a quick run."""


@dataclass(frozen=True)
class Recipe:
    name: str
    paper: str
    title: str
    metric: str
    datasets: tuple[DatasetSpec, ...]
    model: ModelSpec
    protocols: tuple[ProtocolSpec, ...]
    quick: QuickSpec
    ambiguities: tuple[str, ...]
    repeats: int = 1
    seed: int = 0
    source: Path | None = None
    text: str = ""

    @property
    def main(self) -> DatasetSpec:
        return self.datasets[0]

    def dataset(self, key: str) -> DatasetSpec:
        for d in self.datasets:
            if d.key == key:
                return d
        raise FerdataError(f"recipe {self.name}: no dataset {key!r} (it has {', '.join(d.key for d in self.datasets)})")

    @property
    def figures(self) -> list[float]:
        return [p.figure for p in self.protocols if p.figure is not None]


# ---- parsing ------------------------------------------------------------------------------------


def parse_recipe(text: str, source: Path | None = None) -> Recipe:
    """A :class:`Recipe` from TOML text; every mistake is one line naming the file and the key."""
    where = str(source) if source else "recipe"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FerdataError(f"{where}: not valid TOML ({exc})") from None
    r = _Reader(data, where)
    name, paper, title = r.str("name"), r.str("paper"), r.str("title")
    datasets = tuple(_dataset(_Reader(d, f"{where} dataset table {i + 1}")) for i, d in enumerate(r.tables("dataset")))
    if not datasets:
        raise FerdataError(f"{where}: give at least one dataset table (key, adapter, layout)")
    keys = [d.key for d in datasets]
    if len(set(keys)) != len(keys):
        raise FerdataError(f"{where}: two dataset tables share the key {next(k for k in keys if keys.count(k) > 1)!r}")
    model = _model(_Reader(r.table("model"), f"{where} model table"))
    protocols = tuple(_protocol(_Reader(p, f"{where} protocol table {i + 1}"), keys)
                      for i, p in enumerate(r.tables("protocol")))
    if not protocols:
        raise FerdataError(f"{where}: give at least one protocol table (label, protocol or reference)")
    q = _Reader(r.table("quick", required=False), f"{where} quick table")
    quick = QuickSpec(hp=q.table("hp", required=False), folds=q.int("folds", None), max_train=q.int("max_train", None))
    q.done()
    metric = r.str("metric", "accuracy")
    if metric not in METRICS:
        raise FerdataError(f"{where}: metric {metric!r}: use one of {', '.join(METRICS)}")
    recipe = Recipe(
        name=name, paper=paper, title=title, metric=metric, datasets=datasets, model=model,
        protocols=protocols, quick=quick, ambiguities=tuple(r.list("ambiguities", [])),
        repeats=r.int("repeats", 1), seed=r.int("seed", 0), source=source, text=text)
    r.done()
    if recipe.repeats < 1:
        raise FerdataError(f"{where}: repeats must be at least 1")
    return recipe


def load_recipe_file(path: str | Path) -> Recipe:
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FerdataError(f"recipe file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FerdataError(f"{path}: cannot read it ({exc})") from None
    return parse_recipe(text, path)


def _dataset(r: _Reader) -> DatasetSpec:
    pre = r.table("preprocess", required=False) or None
    skip = 0
    if pre is not None:
        pre = dict(pre)
        skip = int(pre.pop("skip_below", 0))
    spec = DatasetSpec(key=r.str("key"), adapter=r.str("adapter"), layout=r.str("layout"),
                       options=r.table("options", required=False), preprocess=pre, skip_preprocess_below=skip,
                       sample=r.str("sample", None))
    r.done()
    return spec


def _model(r: _Reader) -> ModelSpec:
    spec = ModelSpec(name=r.str("name"), weights=r.str("weights", "none"), init=r.str("init", None),
                     members=tuple(r.list("members", [])), hp=r.table("hp", required=False))
    r.done()
    if spec.name == "ensemble" and len(spec.members) < 2:
        raise FerdataError(f"{r.where}: an ensemble needs members = [two or more recipe names]")
    return spec


def _protocol(r: _Reader, keys: list[str]) -> ProtocolSpec:
    spec = ProtocolSpec(
        label=r.str("label"), protocol=r.str("protocol", None), reference=r.str("reference", None),
        folds=r.int("folds", None), test_size=r.float("test_size", None), val_size=r.float("val_size", None),
        group_by=r.str("group_by", None), classes=r.str("classes", None), seed=r.int("seed", 0),
        dataset=r.str("dataset", None), train_on=r.str("train_on", None), test_on=r.str("test_on", None),
        figure=r.float("figure", None), where=r.str("where", ""), leaks=r.str("leaks", "none"), note=r.str("note", ""))
    r.done()
    if (spec.protocol is None) == (spec.reference is None):
        raise FerdataError(f"{r.where}: give protocol = ... or reference = ... (exactly one)")
    if spec.leaks not in LEAKS:
        raise FerdataError(f"{r.where}: leaks {spec.leaks!r}: use one of {', '.join(LEAKS)}")
    if spec.is_cross:
        if not (spec.train_on and spec.test_on):
            raise FerdataError(f"{r.where}: protocol 'cross' needs train_on and test_on (dataset keys)")
        for k in (spec.train_on, spec.test_on):
            if k not in keys:
                raise FerdataError(f"{r.where}: dataset {k!r} is not one of the recipe's dataset keys ({', '.join(keys)})")
    elif spec.dataset is not None and spec.dataset not in keys:
        raise FerdataError(f"{r.where}: dataset {spec.dataset!r} is not one of {', '.join(keys)}")
    return spec


_REQUIRED: Any = object()


class _Reader:
    """Typed access to one TOML table that remembers which keys were read (unknown keys are
    errors, so a typo never silently falls back to a default)."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where, self.seen = dict(data or {}), where, set()

    def _get(self, key: str, default: Any, kind: tuple[type, ...], what: str) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise FerdataError(f"{self.where}: missing {key} ({what})")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kind):
            raise FerdataError(f"{self.where}: {key} = {value!r} is not {what}")
        return value

    def str(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, (str,), "a string")

    def int(self, key: str, default: Any) -> Any:
        return self._get(key, default, (int,), "a whole number")

    def float(self, key: str, default: Any) -> Any:
        value = self._get(key, default, (int, float), "a number")
        return float(value) if value is not None else None

    def list(self, key: str, default: Any) -> list:
        return list(self._get(key, default, (list,), "a list"))

    def table(self, key: str, required: bool = True) -> dict[str, Any]:
        return dict(self._get(key, _REQUIRED if required else {}, (dict,), "a table"))

    def tables(self, key: str) -> list[dict[str, Any]]:
        value = self._get(key, [], (list,), "an array of tables")
        if not all(isinstance(v, dict) for v in value):
            raise FerdataError(f"{self.where}: {key} must be an array of tables (double brackets around {key})")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise FerdataError(f"{self.where}: unknown key(s) {', '.join(unknown)}")

