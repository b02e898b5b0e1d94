"""The leakage audit of a split: what one image's role can tell about another's.

Per fold and across any two roles it counts subjects, sequences and groups that appear in
more than one role, exact duplicates (same content hash), near-duplicates (pHash within a
Hamming threshold, exact copies excluded) and duplicates whose labels disagree. Which of
these a protocol *forbids* (``--strict`` fails on them) is decided here too: a sequence in
two roles and an exact copy in two roles are leakage under every protocol; a group in two
roles is leakage for the group-disjoint protocols (spi, loso, grouped kfold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def content_codes(content_hashes: Sequence[str | None]) -> np.ndarray:
    """One integer per image, equal exactly when the content hashes are equal; an image
    without a hash gets a code of its own (it is nobody's copy)."""
    codes, _ = pd.factorize(pd.Series(list(content_hashes), dtype=object))
    missing = np.flatnonzero(codes < 0)
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(len(missing))
    return codes.astype(np.int64)


def exact_pairs(content_hashes: Sequence[str | None]) -> np.ndarray:
    """Every index pair ``(i, j)``, ``i < j``, of identical content, sorted."""
    codes = content_codes(content_hashes)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    found = []
    for g in np.unique(counts[counts > 1]):
        firsts = starts[counts == g]
        a, b = np.triu_indices(int(g), 1)
        found.append(np.stack([order[(firsts[:, None] + a).ravel()], order[(firsts[:, None] + b).ravel()]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _shared(values: np.ndarray, roles: np.ndarray) -> int:
    """How many distinct non-null values occur in more than one role."""
    mask = (roles != "") & pd.notna(values)
    if not mask.any():
        return 0
    frame = pd.DataFrame({"v": values[mask], "r": roles[mask]})
    return int((frame.groupby("v", sort=False)["r"].nunique() > 1).sum())


def _cross(pairs: np.ndarray, roles: np.ndarray) -> np.ndarray:
    """Mask of pairs whose two images both have roles, and different ones."""
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    a, b = roles[pairs[:, 0]], roles[pairs[:, 1]]
    return (a != "") & (b != "") & (a != b)


def audit_split(frame: pd.DataFrame, fold_roles: list[np.ndarray], *, near: np.ndarray,
                group_disjoint: bool, group_column: str | None) -> dict[str, Any]:
    """The audit summary (JSON-friendly) of ``fold_roles`` (one role array per fold, ``""``
    where an image has no role) over ``frame`` (columns ``subject``, ``sequence``,
    ``group``, ``label``, ``content_hash``). ``near`` holds the pHash near pairs."""
    subjects = frame["subject"].to_numpy(dtype=object)
    sequences = frame["sequence"].to_numpy(dtype=object)
    groups = frame["group_value"].to_numpy(dtype=object)
    labels = frame["label"].to_numpy(dtype=object)
    exact = exact_pairs(frame["content_hash"].tolist())
    conflict = labels[exact[:, 0]] != labels[exact[:, 1]] if len(exact) else np.zeros(0, dtype=bool)
    if len(near):
        same_content = frame["content_hash"].to_numpy(dtype=object)
        near = near[same_content[near[:, 0]] != same_content[near[:, 1]]]
    near_same_subject = (pd.notna(subjects[near[:, 0]]) & (subjects[near[:, 0]] == subjects[near[:, 1]])) \
        if len(near) else np.zeros(0, dtype=bool)

    folds: list[dict[str, Any]] = []
    forbidden: list[str] = []
    for f, roles in enumerate(fold_roles):
        x_exact, x_near = _cross(exact, roles), _cross(near, roles)
        test_subjects = set(subjects[(roles == "test") & pd.notna(subjects)])
        train_subjects = set(subjects[(roles == "train") & pd.notna(subjects)])
        row = {
            "fold": f,
            "subjects_shared": _shared(subjects, roles),
            "sequences_shared": _shared(sequences, roles),
            "groups_shared": _shared(groups, roles) if group_column else 0,
            "exact_duplicates": int(x_exact.sum()),
            "near_duplicates": int(x_near.sum()),
            "near_duplicates_same_subject": int((x_near & near_same_subject).sum()),
            "label_conflicts": int((x_exact & conflict).sum()),
            "test_subjects_seen_in_train": round(len(test_subjects & train_subjects) / len(test_subjects), 4)
            if test_subjects else None,
        }
        folds.append(row)
        if row["sequences_shared"]:
            forbidden.append(f"fold {f}: {row['sequences_shared']} sequence(s) in two roles")
        if group_disjoint and row["groups_shared"]:
            forbidden.append(f"fold {f}: {row['groups_shared']} {group_column} value(s) in two roles")
        if row["exact_duplicates"]:
            forbidden.append(f"fold {f}: {row['exact_duplicates']} exact duplicate pair(s) across roles")

    def total(key: str) -> int:
        return int(sum(r[key] for r in folds))

    seen = [r["test_subjects_seen_in_train"] for r in folds if r["test_subjects_seen_in_train"] is not None]
    conflict_groups = frame.loc[frame["content_hash"].notna()].groupby("content_hash")["label"].nunique()
    return {
        "folds": folds,
        "totals": {key: total(key) for key in ("subjects_shared", "sequences_shared", "groups_shared",
                                               "exact_duplicates", "near_duplicates",
                                               "near_duplicates_same_subject", "label_conflicts")},
        "test_subjects_seen_in_train": round(float(np.mean(seen)), 4) if seen else None,
        "duplicate_pairs": int(len(exact)),
        "near_duplicate_pairs": int(len(near)),
        "conflicting_duplicate_groups": int((conflict_groups > 1).sum()),
        "forbidden": forbidden,
    }
