"""The leakage audit of a split: what one image's role can tell about another's.

Per fold and across any two roles it counts subjects, sequences, clips and groups that
appear in more than one role, exact duplicates (same content hash), near-duplicates (pHash
within a Hamming threshold, exact copies excluded) and duplicates whose labels disagree,
and lists every duplicate pair left across roles with both paths (``leaks``). Which of
these a protocol *forbids* (``--strict`` fails on them) is decided here too: a sequence or
clip in two roles, and an exact copy or a near-duplicate in two roles, are leakage under
every protocol; a group in two roles is leakage for the group-disjoint protocols (spi,
loso, grouped kfold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: At most this many cross-role pairs are listed with their paths (the rest are counted).
MAX_LISTED = 2000


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


def _bits(pairs: np.ndarray, hashes: np.ndarray | None) -> list[int | None]:
    if hashes is None or len(pairs) == 0:
        return [None] * len(pairs)
    return [int(b) for b in np.bitwise_count(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]])]


def audit_split(frame: pd.DataFrame, fold_roles: list[np.ndarray], *, near: np.ndarray,
                group_disjoint: bool, group_column: str | None, near_threshold: int | None = None,
                near_similarity: float | None = None, hashes: np.ndarray | None = None) -> dict[str, Any]:
    """The audit summary (JSON-friendly) of ``fold_roles`` (one role array per fold, ``""``
    where an image has no role) over ``frame`` (columns ``path``, ``subject``, ``sequence``,
    ``clip``, ``group``, ``label``, ``content_hash``). ``near`` holds the near pairs (pHash
    within ``near_threshold`` bits, pixels at least ``near_similarity`` alike) and ``hashes``
    the packed pHashes (for the bits each listed pair differs in)."""
    subjects = frame["subject"].to_numpy(dtype=object)
    sequences = frame["sequence"].to_numpy(dtype=object)
    clips = frame["clip"].to_numpy(dtype=object) if "clip" in frame else np.full(len(frame), None, dtype=object)
    paths = frame["path"].to_numpy(dtype=object) if "path" in frame else frame["image_id"].to_numpy(dtype=object)
    groups = frame["group_value"].to_numpy(dtype=object)
    labels = frame["label"].to_numpy(dtype=object)
    exact = exact_pairs(frame["content_hash"].tolist())
    conflict = labels[exact[:, 0]] != labels[exact[:, 1]] if len(exact) else np.zeros(0, dtype=bool)
    if len(near):
        same_content = frame["content_hash"].to_numpy(dtype=object)
        near = near[same_content[near[:, 0]] != same_content[near[:, 1]]]
    near_same_subject = (pd.notna(subjects[near[:, 0]]) & (subjects[near[:, 0]] == subjects[near[:, 1]])) \
        if len(near) else np.zeros(0, dtype=bool)

    near_bits = _bits(near, hashes)
    folds: list[dict[str, Any]] = []
    forbidden: list[str] = []
    leaks: list[dict[str, Any]] = []
    kinds: dict[str, int] = {}
    unlisted = 0
    how = ([f"pHash within {near_threshold} bits"] if near_threshold is not None else []) \
        + ([f"pixels ≥ {near_similarity:g}"] if near_similarity else [])
    near_what = "near-duplicate pair(s) across roles" + (f" ({', '.join(how)})" if how else "")
    for f, roles in enumerate(fold_roles):
        x_exact, x_near = _cross(exact, roles), _cross(near, roles)
        for kind, pairs, mask, bits in (("exact", exact, x_exact, [0] * len(exact)), ("near", near, x_near, near_bits)):
            hits = np.flatnonzero(mask)
            room = max(0, MAX_LISTED - len(leaks))
            unlisted += max(0, len(hits) - room)
            for k in hits[:room]:
                a, b = int(pairs[k, 0]), int(pairs[k, 1])
                leaks.append({"fold": f, "kind": kind, "a": str(paths[a]), "a_role": str(roles[a]),
                              "b": str(paths[b]), "b_role": str(roles[b]), "bits": bits[k]})
        test_subjects = set(subjects[(roles == "test") & pd.notna(subjects)])
        train_subjects = set(subjects[(roles == "train") & pd.notna(subjects)])
        row = {
            "fold": f,
            "subjects_shared": _shared(subjects, roles),
            "sequences_shared": _shared(sequences, roles),
            "clips_shared": _shared(clips, roles),
            "groups_shared": _shared(groups, roles) if group_column else 0,
            "exact_duplicates": int(x_exact.sum()),
            "near_duplicates": int(x_near.sum()),
            "near_duplicates_same_subject": int((x_near & near_same_subject).sum()),
            "label_conflicts": int((x_exact & conflict).sum()),
            "test_subjects_seen_in_train": round(len(test_subjects & train_subjects) / len(test_subjects), 4)
            if test_subjects else None,
        }
        folds.append(row)
        for key, what, forbid in (
                ("sequences_shared", "sequence(s) in two roles", True),
                ("clips_shared", "clip(s) in two roles", True),
                ("groups_shared", f"{group_column} value(s) in two roles", group_disjoint),
                ("exact_duplicates", "exact duplicate pair(s) across roles", True),
                ("near_duplicates", near_what, True)):
            if forbid and row[key]:
                forbidden.append(f"fold {f}: {row[key]} {what}")
                kinds[what] = kinds.get(what, 0) + row[key]

    def total(key: str) -> int:
        return int(sum(r[key] for r in folds))

    seen = [r["test_subjects_seen_in_train"] for r in folds if r["test_subjects_seen_in_train"] is not None]
    conflict_groups = frame.loc[frame["content_hash"].notna()].groupby("content_hash")["label"].nunique()
    return {
        "folds": folds,
        "totals": {key: total(key) for key in ("subjects_shared", "sequences_shared", "clips_shared", "groups_shared",
                                               "exact_duplicates", "near_duplicates",
                                               "near_duplicates_same_subject", "label_conflicts")},
        "test_subjects_seen_in_train": round(float(np.mean(seen)), 4) if seen else None,
        "clips": int(pd.Series(clips).nunique()),
        "duplicate_pairs": int(len(exact)),
        "near_duplicate_pairs": int(len(near)),
        "conflicting_duplicate_groups": int((conflict_groups > 1).sum()),
        "forbidden": forbidden,
        "forbidden_by_kind": kinds,
        "leaks": leaks,
        "leaks_not_listed": unlisted,
    }


def describe_leak(leak: dict[str, Any]) -> str:
    """One listed pair in words: ``a.png (train) = b.png (test)`` (``~`` and the bits for a
    near-duplicate)."""
    sign = "=" if leak["kind"] == "exact" else "~"
    bits = f", {leak['bits']} bits" if leak["kind"] == "near" and leak.get("bits") is not None else ""
    return f"{leak['a']} ({leak['a_role']}) {sign} {leak['b']} ({leak['b_role']}{bits})"


def forbidden_summary(audit: dict[str, Any], shown: int = 3) -> str:
    """The forbidden findings by kind, summed over folds, with the first few pairs by path:
    what a warning or a ``--strict`` refusal says."""
    kinds = audit.get("forbidden_by_kind") or {}
    n_folds = len({f.split(":", 1)[0] for f in audit["forbidden"]})
    text = ", ".join(f"{n} {what}" for what, n in kinds.items()) or "; ".join(audit["forbidden"])
    if n_folds > 1:
        text += f" (over {n_folds} folds)"
    leaks = audit.get("leaks") or []
    if leaks:
        text += "; e.g. " + "; ".join(describe_leak(x) for x in leaks[:shown])
    return text
