"""What ``ferdata info`` reports about a manifest, as plain data (the CLI renders it)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

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


def summarize(manifest: Manifest, *, max_listed: int = 50, **options: Any) -> dict[str, Any]:
    """Counts per label × source split, subjects, unreadable files, duplicates and conflicts,
    all on effective labels (relabel decisions from ``labels.parquet`` applied)."""
    table = images_with_effective_labels(manifest)
    meta = manifest.metadata()
    rows = table.select(["path", "label", "subject_id", "source_split", "content_hash", "readable", "error"]).to_pylist()

    by_label_split: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_label_split[r["label"] or "(none)"][r["source_split"] or "(none)"] += 1
    splits = sorted({s for c in by_label_split.values() for s in c})

    per_subject = Counter(r["subject_id"] for r in rows if r["subject_id"] is not None)
    counts = sorted(per_subject.values())
    subjects = {
        "n_subjects": len(per_subject),
        "images_without_subject": sum(1 for r in rows if r["subject_id"] is None),
        "images_per_subject": {"min": counts[0], "median": statistics.median(counts), "max": counts[-1]}
        if counts else None,
    }

    unreadable = [{"path": r["path"], "error": r["error"]} for r in rows if not r["readable"]]

    by_hash: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["content_hash"]:
            by_hash[r["content_hash"]].append(r)
    dup_groups = [g for g in by_hash.values() if len(g) > 1]
    conflicts = [
        {"content_hash": g[0]["content_hash"], "paths": [r["path"] for r in g],
         "labels": sorted({r["label"] for r in g if r["label"]})}
        for g in dup_groups if len({r["label"] for r in g}) > 1
    ]
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
            "groups": len(dup_groups),
            "images": sum(len(g) for g in dup_groups),
            "extra_copies": sum(len(g) - 1 for g in dup_groups),
        },
        "conflicts": conflicts[:max_listed],
        "n_conflicts": len(conflicts),
        "n_relabelled": n_relabelled(manifest),
        "skipped": meta.get("skipped", {}),
        "warnings": meta.get("warnings", {}),
        "report": meta.get("report", {}),
        "problems": validate_images(table),
        "sections": extra_sections(manifest, **options),
    }
