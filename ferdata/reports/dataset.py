"""The dataset report: what is in a manifest, seen rather than read.

Counts per label × source split, images per subject, how well face detection went (from
``faces.parquet`` when preprocessing has run), duplicates and label conflicts, leakage
across the roles of every split under ``splits/``, and a contact sheet of random crops
(or whole images, before preprocessing) per class.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ferdata.info import summarize
from ferdata.manifest import Manifest, read_metadata, read_table
from ferdata.manifest.crops import crop_paths
from ferdata.manifest.tables import FACES_TABLE, SPLITS_DIR
from ferdata.progress import NullProgress, ProgressSink
from ferdata.reports import plots
from ferdata.reports.html import HtmlReport

REPORT_DIR = "report"


@dataclass
class ReportResult:
    """What a report wrote, and the figures the CLI prints as its summary."""

    html: Path
    pngs: list[Path]
    summary: list[tuple[str, Any]] = field(default_factory=list)


def thumbnail(path: Path, size: int) -> np.ndarray:
    """A file as a ``size``×``size`` uint8 thumbnail, letterboxed so nothing is cut off."""
    from PIL import Image, ImageOps

    from ferdata.imageio import read_image

    arr = read_image(path)
    return np.asarray(ImageOps.pad(Image.fromarray(arr), (size, size), method=Image.BILINEAR, color=(0, 0, 0)))


# --- the facts --------------------------------------------------------------------------


def face_stats(manifest: Manifest) -> dict[str, Any] | None:
    """Detection and fallback rates of the latest preprocessing config (``None`` before
    ``ferdata preprocess``)."""
    path = manifest.table_path(FACES_TABLE)
    if not path.exists():
        return None
    meta = read_metadata(path)
    table = read_table(path)
    config = meta.get("latest_config")
    if config and "config_hash" in table.column_names:
        table = table.filter(pc.equal(table.column("config_hash"), config))
    rows = table.to_pylist()
    n = len(rows)
    found = sum(1 for r in rows if r.get("face_found"))
    fallbacks = Counter(r.get("fallback") for r in rows if r.get("fallback"))
    stats: dict[str, Any] = {
        "config": config,
        "detector": ", ".join(sorted({str(r.get("detector")) for r in rows if r.get("detector")})) or None,
        "images": n,
        "face_found": found,
        "detection_rate": found / n if n else None,
        "fallbacks": dict(fallbacks),
        "fallback_rate": sum(fallbacks.values()) / n if n else None,
        "several_faces": sum(1 for r in rows if (r.get("n_faces") or 0) > 1),
        "flat": sum(1 for r in rows if r.get("flat")),
        "errors": sum(1 for r in rows if r.get("error")),
    }
    for stage in ("detect_ms", "total_ms"):
        vals = [r[stage] for r in rows if r.get(stage) is not None]
        if vals:
            stats[f"mean_{stage}"] = float(np.mean(vals))
    found_by_label: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    labels = dict(zip(*(manifest.images(columns=["image_id", "label"]).column(c).to_pylist()
                        for c in ("image_id", "label"))))
    for r in rows:
        cell = found_by_label[labels.get(r["image_id"]) or "(none)"]
        cell[0] += bool(r.get("face_found"))
        cell[1] += 1
    stats["by_label"] = {k: v[0] / v[1] for k, v in sorted(found_by_label.items()) if v[1]}
    return stats


def split_leakage(manifest: Manifest) -> list[dict[str, Any]]:
    """Per split file and fold: images per role, subjects and identical files found in more
    than one role (both leak information from training into evaluation)."""
    split_dir = manifest.dir / SPLITS_DIR
    if not split_dir.is_dir():
        return []
    images = manifest.images(columns=["image_id", "subject_id", "content_hash"]).to_pylist()
    subject = {r["image_id"]: r["subject_id"] for r in images}
    content = {r["image_id"]: r["content_hash"] for r in images}
    out: list[dict[str, Any]] = []
    for path in sorted(split_dir.glob("*.parquet")):
        meta = read_metadata(path)
        table = read_table(path, columns=["image_id", "fold", "role"]).to_pylist()
        by_fold: dict[int, list[dict]] = defaultdict(list)
        for r in table:
            by_fold[r["fold"]].append(r)
        for fold, rows in sorted(by_fold.items()):
            roles = Counter(r["role"] for r in rows)
            subj_roles: dict[str, set] = defaultdict(set)
            hash_roles: dict[str, set] = defaultdict(set)
            for r in rows:
                if r["role"] is None:
                    continue
                if subject.get(r["image_id"]) is not None:
                    subj_roles[subject[r["image_id"]]].add(r["role"])
                if content.get(r["image_id"]):
                    hash_roles[content[r["image_id"]]].add(r["role"])
            out.append({
                "split": path.stem, "protocol": meta.get("protocol"), "fold": fold,
                "train": roles.get("train", 0), "val": roles.get("val", 0), "test": roles.get("test", 0),
                "subjects_in_two_roles": sum(1 for s in subj_roles.values() if len(s) > 1),
                "copies_in_two_roles": sum(1 for s in hash_roles.values() if len(s) > 1),
            })
    return out


def sample_per_class(manifest: Manifest, per_class: int, seed: int) -> tuple[dict[str, list[tuple[str, Path]]], str]:
    """``{label: [(caption, file), ...]}`` of random readable images per class, from the
    latest crops when there are crops; and which source that was."""
    crops = crop_paths(manifest)
    rows = manifest.images(columns=["image_id", "path", "label", "subject_id", "readable"]).to_pylist()
    by_label: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["readable"] and r["label"] and (crops is None or r["image_id"] in crops):
            by_label[r["label"]].append(r)
    rng = random.Random(seed)
    picked: dict[str, list[tuple[str, Path]]] = {}
    for label in sorted(by_label):
        group = by_label[label]
        chosen = rng.sample(group, min(per_class, len(group)))
        picked[label] = [(r["subject_id"] or Path(r["path"]).stem[:14],
                          crops[r["image_id"]] if crops is not None else manifest.resolve(r["path"])) for r in chosen]
    return picked, "face crops" if crops is not None else "whole images (no crops yet)"


# --- the report -------------------------------------------------------------------------


def dataset_report(manifest: Manifest, out_dir: str | Path | None = None, *, per_class: int = 8, seed: int = 0,
                   thumb: int = 96, progress: ProgressSink | None = None) -> ReportResult:
    """Write ``<out_dir>/report.html`` (default ``<manifest>/report/``) and its PNGs."""
    progress = progress or NullProgress()
    out = Path(out_dir) if out_dir is not None else manifest.dir / REPORT_DIR
    s = summarize(manifest)
    rep = HtmlReport(f"Dataset report: {manifest.name}", out)

    rep.heading("Overview")
    ips = s["subjects"]["images_per_subject"]
    overview = [("dataset", s["dataset"]), ("source", s["source_root"]), ("created", s["created_at"]),
                ("ferdata version", s["ferdata_version"]), ("images", s["n_images"]),
                ("unreadable", s["n_unreadable"]), ("subjects", s["subjects"]["n_subjects"]),
                ("images without subject", s["subjects"]["images_without_subject"])]
    if ips:
        overview.append(("images per subject (min / median / max)", f"{ips['min']} / {ips['median']:g} / {ips['max']}"))
    rep.key_values(overview)
    if s["problems"]:
        rep.paragraph("validation problems: " + "; ".join(s["problems"]), css="warn")

    rep.heading("Labels × source split")
    splits = s["source_splits"]
    rep.table(["label", *splits, "total"],
              [[lab, *(c.get(sp, 0) for sp in splits), sum(c.values())] for lab, c in s["labels"].items()])
    rep.figure("label_split_counts", plots.stacked_counts(s["labels"], "images per label and source split"))

    rep.heading("Subjects")
    per_subject = Counter(r for r in manifest.images(columns=["subject_id"]).column("subject_id").to_pylist()
                          if r is not None)
    if per_subject:
        rep.figure("images_per_subject", plots.histogram(list(per_subject.values()), "images per subject",
                                                         "images", bins=min(30, max(5, len(per_subject)))))
        top = per_subject.most_common(10)
        rep.table(["subject", "images"], top, caption="subjects with the most images")
    else:
        rep.paragraph("This dataset names no subjects: subject-disjoint splits are not possible.", css="note")

    rep.heading("Face detection")
    faces = face_stats(manifest)
    if faces is None:
        rep.paragraph(f"No faces.parquet yet: run 'ferdata preprocess {manifest.name}' for detection rates.",
                      css="note")
    else:
        rows = [("config", faces["config"]), ("detector", faces["detector"]), ("images", faces["images"]),
                ("face found", faces["face_found"]),
                ("detection rate", f"{faces['detection_rate']:.1%}" if faces["images"] else None),
                ("fallback rate", f"{faces['fallback_rate']:.1%}" if faces["images"] else None), ("several faces", faces["several_faces"]),
                ("flat frames", faces["flat"]), ("errors", faces["errors"])]
        rows += [(f"fallback: {k}", v) for k, v in sorted(faces["fallbacks"].items())]
        rows += [(k.replace("_", " "), faces[k]) for k in ("mean_detect_ms", "mean_total_ms") if k in faces]
        rep.key_values(rows)
        if faces["by_label"]:
            rep.figure("detection_rate_by_label",
                       plots.bar_values(list(faces["by_label"]), [v * 100 for v in faces["by_label"].values()],
                                        "faces found per label", "% of images", fmt="{:.0f}%"))

    rep.heading("Duplicates and label conflicts")
    dup = s["duplicates"]
    rep.key_values([("groups of identical files", dup["groups"]), ("images in them", dup["images"]),
                    ("extra copies", dup["extra_copies"]), ("identical files with different labels", s["n_conflicts"])])
    if s["conflicts"]:
        rep.table(["labels", "paths"], [(", ".join(c["labels"]), "  ".join(c["paths"])) for c in s["conflicts"]],
                  caption="label conflicts")

    rep.heading("Splits and leakage")
    rep.paragraph("Per split file and fold: images per role, subjects and identical files found in more than one "
                  "role (either leaks training information into evaluation).", css="note")
    leakage = split_leakage(manifest)
    if leakage:
        cols = ["split", "protocol", "fold", "train", "val", "test", "subjects_in_two_roles", "copies_in_two_roles"]
        rep.table([c.replace("_", " ") for c in cols], [[r[c] for c in cols] for r in leakage])
    else:
        rep.paragraph(f"No splits yet: 'ferdata split {manifest.name} --protocol P' writes them.", css="note")

    if s.get("sections"):
        rep.heading("More from 'ferdata info'")
    for section in s.get("sections", []):  # what 'ferdata info' adds from faces, splits, ...
        cols = section.get("columns") or ("", "")
        rep.table(cols, section["rows"], caption=section["title"])

    picked, source = sample_per_class(manifest, per_class, seed)
    rep.heading(f"Samples per class ({source})")
    total = sum(len(v) for v in picked.values())
    progress.start("contact sheets", total)
    for label, items in picked.items():
        thumbs, captions = [], []
        for caption, path in items:
            try:
                thumbs.append(thumbnail(path, thumb))
                captions.append(caption)
            except (OSError, ValueError):
                thumbs.append(np.zeros((thumb, thumb, 3), np.uint8))
                captions.append(f"{caption} (unreadable)")
            progress.advance(1)
        rep.figure(f"samples_{label}", plots.contact_sheet(thumbs, captions, f"{label}: {len(items)} random images",
                                                           cols=per_class))
    progress.finish()

    html = rep.write()
    summary = [("report", str(html)), ("images", s["n_images"]), ("classes", len(s["labels"])),
               ("subjects", s["subjects"]["n_subjects"]), ("figures", len(rep.png_names))]
    if faces is not None:
        summary.append(("detection rate", f"{faces['detection_rate']:.1%}" if faces["images"] else None))
    if leakage:
        summary.append(("folds with subject leakage", sum(1 for r in leakage if r["subjects_in_two_roles"])))
    return ReportResult(html, [out / n for n in rep.png_names], summary)


