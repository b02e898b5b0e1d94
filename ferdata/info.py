"""What ``ferdata info`` reports about a manifest, as plain data (the CLI renders it)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ferdata.manifest import Manifest, validate_images
from ferdata.manifest.effective import images_with_effective_labels, n_relabelled


def extra_sections(manifest: Manifest, **options: Any) -> list[dict[str, Any]]:
    """Sections that later steps add to ``ferdata info``, in pipeline order. Each provider is
    ``info_sections(manifest, **options) -> list[dict]``, a section being ``{"title": str,
    "rows": [[key, value], ...], "columns": [...]}`` (JSON-friendly); ``options`` carries the
    info command's options (``split``, ``suspects``, ``relabels``, ...). Imported here, on use, so
    ``ferdata info`` pays only for what it reports."""
    from ferdata.faces.info import info_sections as faces_sections
    from ferdata.features.info import info_sections as features_sections
    from ferdata.noise import info_sections as suspects_sections
    from ferdata.review.info import info_sections as relabel_sections
    from ferdata.splits.info import info_sections as split_sections

    sections: list[dict[str, Any]] = []
    for provider in (faces_sections, split_sections, features_sections, suspects_sections, relabel_sections):
        sections.extend(provider(manifest, **options))
    return sections


def _counts(table: pa.Table, keys: list[str]) -> list[dict[str, Any]]:
    """Rows per distinct value of ``keys`` (nulls included), as ``{**keys, "n": count}``."""
    out = table.group_by(keys, use_threads=False).aggregate([([], "count_all")]).to_pylist()
    for r in out:
        r["n"] = r.pop("count_all")
    return out


def summarize(manifest: Manifest, *, max_listed: int = 50, sections: bool = True, **options: Any) -> dict[str, Any]:
    """Counts per label × source split, subjects, unreadable files, duplicates and conflicts,
    all on effective labels (relabel decisions from ``labels.parquet`` applied); with
    ``sections`` also what later steps added (faces, splits, features, suspects)."""
    table = images_with_effective_labels(manifest)
    meta = manifest.metadata()
    # counted in Arrow: a Python dict per row cost seconds at AffectNet scale (430k rows)
    by_label_split: dict[str, Counter] = defaultdict(Counter)
    for r in _counts(table, ["label", "source_split"]):
        by_label_split[r["label"] or "(none)"][r["source_split"] or "(none)"] += r["n"]
    splits = sorted({s for c in by_label_split.values() for s in c})

    per_subject = {r["subject_id"]: r["n"] for r in _counts(table, ["subject_id"]) if r["subject_id"] is not None}
    counts = sorted(per_subject.values())
    subjects = {
        "n_subjects": len(per_subject),
        "images_without_subject": table.column("subject_id").null_count,
        "images_per_subject": {"min": counts[0], "median": statistics.median(counts), "max": counts[-1]}
        if counts else None,
    }

    unreadable = table.filter(pc.invert(table.column("readable"))).select(["path", "error"]).to_pylist()

    hashed = table.filter(pc.is_valid(table.column("content_hash")))
    copies = hashed.group_by("content_hash", use_threads=False).aggregate(
        [("content_hash", "count"), ("label", "count_distinct", pc.CountOptions("all"))])
    copies = copies.filter(pc.greater(copies.column("content_hash_count"), 1))
    conflicting = copies.filter(pc.greater(copies.column("label_count_distinct"), 1)).column("content_hash")
    in_conflict = hashed.filter(pc.is_in(hashed.column("content_hash"), value_set=conflicting.combine_chunks()))
    groups: dict[str, list[dict]] = defaultdict(list)  # in the order their first copy appears, as listed
    for r in in_conflict.select(["content_hash", "path", "label"]).to_pylist():
        groups[r["content_hash"]].append(r)
    conflicts = [{"content_hash": h, "paths": [r["path"] for r in g],
                  "labels": sorted({r["label"] for r in g if r["label"]})} for h, g in groups.items()]
    n_copies = int(pc.sum(copies.column("content_hash_count")).as_py() or 0)
    return {
        "name": manifest.name,
        "dataset": meta.get("dataset"),
        "source_root": meta.get("source_root"),
        "created_at": meta.get("created_at"),
        "ferdata_version": meta.get("ferdata_version"),
        "n_images": table.num_rows,
        "n_unreadable": len(unreadable),
        "labels": {lab: dict(c) for lab, c in sorted(by_label_split.items())},
        "source_splits": splits,
        "subjects": subjects,
        "unreadable": unreadable[:max_listed],
        "duplicates": {
            "groups": copies.num_rows,
            "images": n_copies,
            "extra_copies": n_copies - copies.num_rows,
        },
        "conflicts": conflicts[:max_listed],
        "n_conflicts": len(conflicts),
        "n_relabelled": n_relabelled(manifest),
        "skipped": meta.get("skipped", {}),
        "warnings": meta.get("warnings", {}),
        "skipped_first": meta.get("skipped_first", {}),
        "warnings_first": meta.get("warnings_first", {}),
        "name_errors": meta.get("name_errors", {"count": 0, "first": []}),
        "report": meta.get("report", {}),
        "problems": validate_images(table),
        "sections": extra_sections(manifest, **options) if sections else [],
    }
