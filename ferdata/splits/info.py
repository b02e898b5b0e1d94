"""``ferdata info NAME --split SPLIT``: a split's settings, class counts per fold and role,
and its leakage audit, as plain sections (the CLI renders them)."""

from __future__ import annotations

from typing import Any

from ferdata.manifest import Manifest
from ferdata.manifest.tables import ROLES


#: Per-fold audit figures and their (short) column titles; counts are across roles.
AUDIT_COLUMNS = (
    ("subjects_shared", "subjects"),
    ("sequences_shared", "sequences"),
    ("clips_shared", "clips"),
    ("groups_shared", "groups"),
    ("exact_duplicates", "exact"),
    ("near_duplicates", "near"),
    ("near_duplicates_same_subject", "near, same subj."),
    ("label_conflicts", "conflicts"),
    ("test_subjects_seen_in_train", "test subj. in train"),
)


def summary_rows(meta: dict[str, Any]) -> list[list[Any]]:
    audit = meta["audit"]
    opts = meta["options"]
    role_totals = {role: sum(sum(c.get(role, {}).values()) for c in meta["counts"].values()) for role in ROLES}
    rows: list[list[Any]] = [
        ["protocol", meta["protocol"]],
        ["folds", meta["n_folds"]],
        ["seed", meta["seed"]],
        ["class set", f"{meta['class_set']['name']}: {', '.join(meta['class_set']['classes'])}"],
        ["group column", meta["group_column"] or "(none: atoms only)"],
        ["images with a role", meta["n_images"]],
    ]
    rows += [[f"{role} images per fold (mean)", round(role_totals[role] / max(meta["n_folds"], 1), 1)]
             for role in ROLES if role_totals[role]]
    rows += [[f"excluded: {why}", n] for why, n in meta["excluded"].items()]
    rows += [["val size", opts["val_size"]]] if opts.get("val_size") else []
    rows += [["test size", opts["test_size"]]] if opts.get("test_size") else []
    rows += [
        ["subjects shared across roles (all folds)", audit["totals"]["subjects_shared"]],
        ["sequences shared across roles", audit["totals"]["sequences_shared"]],
        *([["clips shared across roles", audit["totals"].get("clips_shared", 0)]] if audit.get("clips") else []),
        ["exact duplicate pairs across roles", audit["totals"]["exact_duplicates"]],
        [f"near-duplicate pairs across roles (pHash ≤ {audit['near_threshold']} bits"
         + (f", pixels ≥ {audit['near_similarity']:g})" if audit.get("near_similarity") else ")"),
         audit["totals"]["near_duplicates"]],
        ["label conflicts across roles", audit["totals"]["label_conflicts"]],
    ]
    if audit["test_subjects_seen_in_train"] is not None:
        rows.append(["test subjects also in train (mean share)", audit["test_subjects_seen_in_train"]])
    if audit.get("images_without_phash"):
        rows.append(["images without a perceptual hash", audit["images_without_phash"]])
    rows.append(["forbidden leakage findings", len(audit["forbidden"])])
    rows.append(["content hash", meta["content_hash"][:16]])
    return rows


def audit_rows(meta: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Per-fold audit; the group column is shown only when it is not the subject."""
    has_clips = bool(meta["audit"].get("clips"))
    shown = [(k, t) for k, t in AUDIT_COLUMNS
             if (k != "groups_shared" or meta["group_column"] not in (None, "subject_id"))
             and (k != "clips_shared" or has_clips)]
    columns = ["fold", *(title for _, title in shown)]
    rows = [[r["fold"], *(r.get(key, 0) for key, _ in shown)] for r in meta["audit"]["folds"]]
    return columns, rows


def class_count_rows(meta: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    classes = meta["class_set"]["classes"]
    columns = ["fold", "role", *classes, "total"]
    rows: list[list[Any]] = []
    for fold, per_role in sorted(meta["counts"].items(), key=lambda kv: int(kv[0])):
        for role in ROLES:
            if role in per_role:
                counts = [per_role[role].get(c, 0) for c in classes]
                rows.append([int(fold), role, *counts, sum(counts)])
    return columns, rows


def info_sections(manifest: Manifest, split: str | None = None, **_: Any) -> list[dict[str, Any]]:
    """The split's sections for ``ferdata info``, or none when no ``--split`` was asked."""
    if not split:
        return []
    from ferdata.splits.make import split_metadata, warn_if_stale

    meta = split_metadata(manifest, split)
    warn_if_stale(manifest, split, meta)
    count_columns, count_rows = class_count_rows(meta)
    audit_columns, fold_rows = audit_rows(meta)
    sections = [
        {"title": f"split {split}", "rows": summary_rows(meta), "columns": ["", ""]},
        {"title": f"split {split}: class counts per fold and role", "rows": count_rows, "columns": count_columns},
        {"title": f"split {split}: leakage audit per fold", "rows": fold_rows, "columns": audit_columns},
    ]
    if meta["audit"]["forbidden"]:
        sections.append({"title": f"split {split}: leakage the protocol forbids",
                         "rows": [[f] for f in meta["audit"]["forbidden"]], "columns": ["finding"]})
    columns, rows = leak_rows(meta)
    if rows:
        sections.append({"title": f"split {split}: duplicate pairs left across roles", "rows": rows,
                         "columns": columns})
    return sections


def leak_rows(meta: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Every duplicate pair the audit lists across roles, with both paths (and a last row
    counting those beyond the listing limit)."""
    audit = meta["audit"]
    rows: list[list[Any]] = [[x["fold"], "exact" if x["kind"] == "exact" else f"near ({x.get('bits')} bits)",
                              f"{x['a']} ({x['a_role']})", f"{x['b']} ({x['b_role']})"]
                             for x in audit.get("leaks") or []]
    if audit.get("leaks_not_listed"):
        rows.append(["", "not listed", f"{audit['leaks_not_listed']} more pair(s)", ""])
    return ["fold", "kind", "image", "duplicate"], rows
