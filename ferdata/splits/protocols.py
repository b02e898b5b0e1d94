"""Evaluation protocols as scikit-learn-style splitters, in one registry.

A protocol's ``split(X, y, groups)`` yields one ``(train, val, test)`` triple of positional
index arrays per fold, like scikit-learn's splitters yield ``(train, test)``. ``X`` is a
pandas frame of the images that take part (columns ``atom`` and ``source_split``), ``y``
their class and ``groups`` the unit that must never straddle roles: the subject (or
movie, or sequence) for person-aware protocols, otherwise the *atom*. An atom is the set
of images that always share a role whatever the protocol: the frames of one CK+ sequence
and exact copies of one picture (same content hash), or else a single image. The caller merges atoms into groups before calling, so every group is
a union of atoms.

Protocols follow Dhall et al. 2011 / paper 000 (SPI, PPI, SPS) and paper 001 (cross-dataset
all-train / all-test).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    KFold,
    LeaveOneGroupOut,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from ferdata.errors import FerdataError
from ferdata.splits._registry import register_protocol

Fold = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Official split names (lower-cased ``source_split``) and the role each plays.
OFFICIAL_TRAIN = frozenset({"training", "train"})
OFFICIAL_VAL = frozenset({"publictest", "val", "validation"})
OFFICIAL_TEST = frozenset({"privatetest", "test"})


class SplitProtocol(ABC):
    """Base class. ``groups`` says how a protocol uses groups:

    * ``"required"``: person-aware; refused on a dataset without the group column.
    * ``"optional"``: grouped only when the user passes ``--group-by``.
    * ``"never"``: ignores subjects by definition (atoms still hold together).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    groups: ClassVar[str] = "never"
    #: Whether no group may appear in two roles of one fold (checked by the audit).
    group_disjoint: ClassVar[bool] = False
    #: Default number of folds when the protocol is k-fold and ``--folds`` is not given.
    default_folds: ClassVar[int | None] = None

    def __init__(self, *, folds: int | None = None, test_size: float | None = None,
                 val_size: float | None = None, seed: int = 0, grouped: bool = False) -> None:
        if folds is not None and folds < 2:
            raise FerdataError(f"--folds {folds}: use 2 or more (or leave it out for a single hold-out split)")
        for opt, value in (("--test-size", test_size), ("--val-size", val_size)):
            if value is not None and not 0 < value < 1:
                raise FerdataError(f"{opt} {value}: give a fraction between 0 and 1, e.g. 0.2")
        if folds is not None and test_size is not None:
            raise FerdataError("--folds and --test-size both given: k folds test 1/k each; use one of them")
        self.folds = folds
        self.test_size = test_size
        self.val_size = val_size
        self.seed = int(seed)
        self.grouped = grouped

    # -- what a caller may ask before splitting ------------------------------------------
    def n_folds_hint(self) -> int | None:
        """Folds known before seeing the data (``None`` for loso: one per group)."""
        if self.folds:
            return self.folds
        return self.default_folds if self.default_folds and self.test_size is None else 1

    def default_name(self, n_folds: int) -> str:
        return f"{self.name}-{n_folds}" if (self.n_folds_hint() or 1) > 1 else self.name

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return int(self.n_folds_hint() or 1)

    def split(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray) -> Iterator[Fold]:
        for fold, (train, test) in enumerate(self._train_test(X, np.asarray(y), np.asarray(groups))):
            train, val = self._carve_val(X, np.asarray(y), np.asarray(groups), np.sort(train), fold)
            yield train, val, np.sort(test)

    # -- to implement ----------------------------------------------------------------
    @abstractmethod
    def _train_test(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One ``(train, test)`` pair of positional indices per fold."""

    # -- shared ----------------------------------------------------------------------
    def _carve_val(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, train: np.ndarray,
                   fold: int) -> tuple[np.ndarray, np.ndarray]:
        """A validation part out of ``train`` under the same group rule (``--val-size``)."""
        if not self.val_size or len(train) == 0:
            return train, np.array([], dtype=np.int64)
        held = holdout_mask(y[train], groups[train], self.val_size, self.seed + 7919 * (fold + 1))
        return train[~held], train[held]


# ---- building blocks -------------------------------------------------------------------


def _quiet(fn, *args, **kwargs):
    """Run a scikit-learn call with its warnings captured (they go into the report instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def _singletons(groups: np.ndarray) -> bool:
    return len(np.unique(groups)) == len(groups)


def _pure_groups(y: np.ndarray, groups: np.ndarray) -> bool:
    """Does every group hold a single class (CK+ sequences, single images)?"""
    frame = pd.DataFrame({"g": groups, "y": y})
    return bool((frame.groupby("g", sort=False)["y"].nunique() <= 1).all())


#: Above this many groups, folds are drawn over groups by their majority class
#: (``StratifiedGroupKFold`` is quadratic-ish in Python) and then refined image by image.
MANY_GROUPS = 2000


def _group_labels(y: np.ndarray, inverse: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's majority class (ties: the smallest class index)."""
    classes, yi = np.unique(y, return_inverse=True)
    counts = np.zeros((n_groups, len(classes)), dtype=np.int64)
    np.add.at(counts, (inverse, yi), 1)
    return classes[counts.argmax(axis=1)]


def stratified_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) per sample: label-stratified k-fold that never splits a group.

    Single images use ``StratifiedKFold``. Groups of one class each (CK+ sequences), or
    very many groups, are stratified as units on their (majority) class; a few groups that
    mix classes (subjects) go through ``StratifiedGroupKFold``. Grouped folds are then
    polished by :func:`refine_folds`.
    """
    uniq, inverse = np.unique(groups, return_inverse=True)
    n_groups = len(uniq)
    if n_groups < k:
        raise FerdataError(f"{k} folds need at least {k} groups, but the images form only {n_groups}; "
                           f"lower --folds")
    folds = np.full(len(y), -1, dtype=np.int64)
    singletons = n_groups == len(y)
    if singletons or _pure_groups(y, groups) or n_groups > MANY_GROUPS:
        gy = y if singletons else _group_labels(y, inverse, n_groups)
        stratifiable = np.unique(gy, return_counts=True)[1].max() >= k  # scikit-learn's own condition
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed) if stratifiable else \
            KFold(k, shuffle=True, random_state=seed)
        gfold = np.zeros(n_groups, dtype=np.int64)
        for f, (_, test) in enumerate(_quiet(lambda: list(splitter.split(np.zeros(n_groups), gy)))):
            gfold[test] = f
        folds = gfold if singletons else gfold[inverse]
    elif np.unique(y, return_counts=True)[1].max() >= k:
        splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        for f, (_, test) in enumerate(_quiet(lambda: list(splitter.split(np.zeros(len(y)), y, groups)))):
            folds[test] = f
    else:  # too few images per class to stratify: deal shuffled groups, then refine below
        dealt = np.empty(n_groups, dtype=np.int64)
        dealt[np.random.RandomState(seed).permutation(n_groups)] = np.arange(n_groups) % k
        folds = dealt[inverse]
    if not singletons:
        folds = refine_folds(y, groups, folds, k)
    return folds


#: Above this many groups the pairwise swap search is skipped (single moves only).
MAX_SWAP_GROUPS = 3000


def refine_folds(y: np.ndarray, groups: np.ndarray, folds: np.ndarray, k: int, *, max_steps: int = 10_000) -> np.ndarray:
    """Polish a grouped fold assignment by local search.

    ``StratifiedGroupKFold`` is greedy and can leave a class several groups off its share
    in one fold. This moves single groups between folds, and swaps pairs of groups, while
    that lowers the sum over folds and classes of (count - n_class / k)², so the result is
    never worse than the greedy one and ends at a local optimum: no single move or swap can
    improve it. Groups stay whole; a fold is never emptied. Deterministic for equal input.
    """
    gid, ginv = np.unique(groups, return_inverse=True)
    classes, cinv = np.unique(y, return_inverse=True)
    A = np.zeros((len(gid), len(classes)))
    np.add.at(A, (ginv, cinv), 1.0)
    gfold = np.zeros(len(gid), dtype=np.int64)
    gfold[ginv] = folds
    target = A.sum(axis=0) / k
    norms = (A * A).sum(axis=1)
    gram = A @ A.T if len(gid) <= MAX_SWAP_GROUPS else None
    idx = np.arange(len(gid))
    for _ in range(max_steps):
        F = np.zeros((k, len(classes)))
        np.add.at(F, gfold, A)
        D = F - target
        X = A @ D.T  # X[g, f] = a_g · D_f
        own = X[idx, gfold]
        per_fold = np.bincount(gfold, minlength=k)
        move = 2 * (X - own[:, None]) + 2 * norms[:, None]
        move[idx, gfold] = np.inf
        move[per_fold[gfold] <= 1, :] = np.inf
        best_move = np.unravel_index(np.argmin(move), move.shape)
        best = move[best_move]
        best_swap = None
        if gram is not None:
            Xg_fh = X[:, gfold]  # [g, h] = a_g · D_{f(h)}
            swap = 2 * (Xg_fh.T - own[None, :] - own[:, None] + Xg_fh) + 2 * (norms[:, None] + norms[None, :] - 2 * gram)
            swap[gfold[:, None] == gfold[None, :]] = np.inf
            best_swap = np.unravel_index(np.argmin(swap), swap.shape)
            if swap[best_swap] < best:
                best = swap[best_swap]
            else:
                best_swap = None
        if not best < -1e-9:
            break
        if best_swap is not None:
            g, h = best_swap
            gfold[g], gfold[h] = gfold[h], gfold[g]
        else:
            gfold[best_move[0]] = best_move[1]
    return gfold[ginv]


def holdout_mask(y: np.ndarray, groups: np.ndarray, size: float, seed: int) -> np.ndarray:
    """Boolean mask of a held-out part of about ``size``, label-stratified as far as the
    groups allow, never splitting a group.

    Groups of one class each (single images, sequences) are drawn with
    ``StratifiedShuffleSplit`` on the groups; groups mixing classes (subjects) take one
    fold of a ``StratifiedGroupKFold`` with ``round(1/size)`` folds.
    """
    n = len(y)
    mask = np.zeros(n, dtype=bool)
    uniq, inverse = np.unique(groups, return_inverse=True)
    if len(uniq) < 2:
        return mask
    if _pure_groups(y, groups):
        first = np.zeros(len(uniq), dtype=np.int64)
        first[inverse[::-1]] = np.arange(n)[::-1]
        gy = y[first]
        n_test = max(1, min(len(uniq) - 1, int(round(size * len(uniq)))))
        counts = np.unique(gy, return_counts=True)[1]
        n_classes = len(counts)
        if counts.min() >= 2 and n_classes <= n_test and n_classes <= len(uniq) - n_test:
            splitter = StratifiedShuffleSplit(1, test_size=n_test, random_state=seed)
            _, held = next(splitter.split(np.zeros(len(uniq)), gy))
        else:
            _, held = next(ShuffleSplit(1, test_size=n_test, random_state=seed).split(np.zeros(len(uniq))))
        return np.isin(inverse, held)
    k = max(2, min(len(uniq), int(round(1 / size))))
    folds = stratified_folds(y, groups, k, seed)
    return folds == 0


# ---- the protocols ---------------------------------------------------------------------



@register_protocol("spi")
class StrictlyPersonIndependent(SplitProtocol):
    name = "spi"
    description = "strictly person-independent: no subject in two roles; label-stratified group k-fold"
    groups = "required"
    group_disjoint = True
    default_folds = 5

    def _train_test(self, X, y, groups):
        if self.folds is None and self.test_size is not None:
            held = holdout_mask(y, groups, self.test_size, self.seed)
            yield np.flatnonzero(~held), np.flatnonzero(held)
            return
        folds = stratified_folds(y, groups, self.folds or self.default_folds, self.seed)
        for f in range(self.folds or self.default_folds):
            yield np.flatnonzero(folds != f), np.flatnonzero(folds == f)


@register_protocol("ppi")
class PartiallyPersonIndependent(SplitProtocol):
    name = "ppi"
    description = "partially person-independent: label-stratified, ignores subjects (hold-out, or --folds k)"
    groups = "never"

    def _train_test(self, X, y, groups):
        if self.folds:
            folds = stratified_folds(y, groups, self.folds, self.seed)
            for f in range(self.folds):
                yield np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            return
        held = holdout_mask(y, groups, self.test_size or 0.2, self.seed)
        yield np.flatnonzero(~held), np.flatnonzero(held)


@register_protocol("sps")
class StrictlyPersonSpecific(SplitProtocol):
    """Each subject's atoms are divided between train and test, stratified by class within
    the subject, so every test subject is also seen in training. A subject with a single
    atom cannot be divided: it goes to train (the report counts such subjects)."""

    name = "sps"
    description = "strictly person-specific: every subject's images divided between train and test"
    groups = "required"

    def _assign(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, size: float | None,
                k: int | None, seed: int, subset: np.ndarray) -> np.ndarray:
        """Fold (k-fold) or 1=held-out (hold-out) per atom of ``subset``; -1 stays in train."""
        out = np.full(len(subset), -1, dtype=np.int64)
        atoms = X["atom"].to_numpy()[subset]
        rng = np.random.RandomState(seed)
        sub_groups = groups[subset]
        for g in np.unique(sub_groups):
            where = np.flatnonzero(sub_groups == g)
            uatoms, inv = np.unique(atoms[where], return_inverse=True)
            if len(uatoms) < 2:
                continue
            # Order the subject's atoms by class, shuffled within class, then deal them
            # round-robin: a stratified deal within the subject.
            first = np.zeros(len(uatoms), dtype=np.int64)
            first[inv[::-1]] = np.arange(len(where))[::-1]
            labels = y[subset][where][first]
            order = np.lexsort((rng.permutation(len(uatoms)), labels))
            if k:
                slot = np.empty(len(uatoms), dtype=np.int64)
                slot[order] = (np.arange(len(uatoms)) + rng.randint(k)) % k
            else:
                n_held = min(len(uatoms) - 1, max(1, int(round(size * len(uatoms)))))
                step = len(uatoms) / n_held
                picks = order[(np.floor(np.arange(n_held) * step + rng.uniform(0, step))).astype(np.int64)]
                slot = np.full(len(uatoms), -1, dtype=np.int64)
                slot[picks] = 1
            out[where] = slot[inv]
        return out

    def _train_test(self, X, y, groups):
        everyone = np.arange(len(y))
        if self.folds:
            slots = self._assign(X, y, groups, None, self.folds, self.seed, everyone)
            for f in range(self.folds):
                yield np.flatnonzero(slots != f), np.flatnonzero(slots == f)
            return
        slots = self._assign(X, y, groups, self.test_size or 0.2, None, self.seed, everyone)
        yield np.flatnonzero(slots != 1), np.flatnonzero(slots == 1)

    def _carve_val(self, X, y, groups, train, fold):
        if not self.val_size or len(train) == 0:
            return train, np.array([], dtype=np.int64)
        slots = self._assign(X, y, groups, self.val_size, None, self.seed + 7919 * (fold + 1), train)
        return train[slots != 1], train[slots == 1]


@register_protocol("loso")
class LeaveOneSubjectOut(SplitProtocol):
    name = "loso"
    description = "leave one subject (group) out: one fold per subject"
    groups = "required"
    group_disjoint = True

    def n_folds_hint(self) -> int | None:
        return None

    def default_name(self, n_folds: int) -> str:
        return self.name

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return LeaveOneGroupOut().get_n_splits(groups=groups)

    def _train_test(self, X, y, groups):
        if self.folds or self.test_size:
            raise FerdataError("loso makes one fold per subject: drop --folds / --test-size")
        if len(np.unique(groups)) < 2:
            raise FerdataError("loso needs at least 2 subjects (groups)")
        yield from LeaveOneGroupOut().split(np.zeros(len(y)), y, groups)


@register_protocol("kfold")
class StratifiedKFoldProtocol(SplitProtocol):
    name = "kfold"
    description = "label-stratified k-fold; grouped (no group in two roles) when --group-by is given"
    groups = "optional"
    default_folds = 5

    @property
    def group_disjoint(self) -> bool:  # type: ignore[override]
        return self.grouped

    def default_name(self, n_folds: int) -> str:
        return f"{self.name}-{n_folds}"

    def _train_test(self, X, y, groups):
        if self.test_size:
            raise FerdataError("kfold's test part is one fold in --folds; drop --test-size (or use ppi for a hold-out)")
        k = self.folds or self.default_folds
        folds = stratified_folds(y, groups, k, self.seed)
        for f in range(k):
            yield np.flatnonzero(folds != f), np.flatnonzero(folds == f)


@register_protocol("official")
class Official(SplitProtocol):
    """The dataset's own split (``source_split``): Training → train, PublicTest/val → val,
    PrivateTest/test → test. Where a dataset publishes no test labels (SFEW 2.0, AffectNet),
    its validation part is the test set, as the literature uses it."""

    name = "official"
    description = "the dataset's own split (source_split), optional --val-size carved from training"
    groups = "never"

    def n_folds_hint(self) -> int | None:
        return 1

    def default_name(self, n_folds: int) -> str:
        return self.name

    def roles(self, source_split: pd.Series) -> np.ndarray:
        names = source_split.fillna("").astype(str).str.lower().to_numpy()
        has_test = bool(np.isin(names, list(OFFICIAL_TEST)).any())
        roles = np.full(len(names), "", dtype=object)
        roles[np.isin(names, list(OFFICIAL_TRAIN))] = "train"
        roles[np.isin(names, list(OFFICIAL_VAL))] = "val" if has_test else "test"
        roles[np.isin(names, list(OFFICIAL_TEST))] = "test"
        return roles

    def _train_test(self, X, y, groups):
        roles = self.roles(X["source_split"])
        yield np.flatnonzero(roles == "train"), np.flatnonzero(roles == "test")

    def split(self, X, y, groups):
        if self.folds or self.test_size:
            raise FerdataError("official uses the dataset's own test part: drop --folds / --test-size")
        official_val = np.flatnonzero(self.roles(X["source_split"]) == "val")
        for train, val, test in super().split(X, y, groups):
            yield train, np.sort(np.concatenate([val, official_val])).astype(np.int64), test


class _Whole(SplitProtocol):
    role: ClassVar[str]

    def default_name(self, n_folds: int) -> str:
        return self.name

    def _train_test(self, X, y, groups):
        if self.folds or self.test_size:
            raise FerdataError(f"{self.name} puts every image in one role: drop --folds / --test-size")
        everyone = np.arange(len(y))
        empty = np.array([], dtype=np.int64)
        yield (empty, everyone) if self.role == "test" else (everyone, empty)


@register_protocol("all-train")
class AllTrain(_Whole):
    name = "all-train"
    description = "every image trains (cross-dataset: train on this manifest, test on another)"
    role = "train"


@register_protocol("all-test")
class AllTest(_Whole):
    name = "all-test"
    description = "every image is test (cross-dataset: the manifest a model trained elsewhere is tested on)"
    role = "test"
