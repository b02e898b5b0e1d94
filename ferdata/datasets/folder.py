"""A user's own collection: ``<root>/<label>/<file>``, or ``--csv`` rows of path,label[,subject].

Labels go through the synonym table (angry → anger, happiness → happy, ...) and
``--label-map``; ``--subject-pattern`` pulls the subject out of each file name with a
named group ``subject``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import DatasetAdapter, Entry, Scan, image_files, inside
from ferdata.errors import FerdataError, LayoutError
from ferdata.labels import SYNONYMS


@register_dataset("folder")
class Folder(DatasetAdapter):
    code_map = SYNONYMS
    name = "folder"
    description = "your own images: <root>/<label>/<file> or a CSV of path,label[,subject]"
    layout = "<root>/<label>/<image> folders, or --csv FILE with columns path,label[,subject]"
    options = ("csv", "subject_pattern")

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        pattern = self.opts.get("subject_pattern")
        self.subject_re = None
        if pattern:
            try:
                self.subject_re = re.compile(pattern)
            except re.error as exc:
                raise FerdataError(f"--subject-pattern {pattern!r} is not a valid regular expression ({exc})") from None
            if "subject" not in self.subject_re.groupindex:
                raise FerdataError(f"--subject-pattern {pattern!r} needs a named group, e.g. '^(?P<subject>[A-Z]{{2}})\\.'")

    @classmethod
    def detect(cls, source: Path) -> bool:
        return source.is_dir() and any(p.is_dir() and p.name.lower() in SYNONYMS for p in source.iterdir())

    def _subject(self, rel: str, warnings: Counter) -> str | None:
        if self.subject_re is None:
            return None
        m = self.subject_re.search(rel.rsplit("/", 1)[-1])
        if not m or not m.group("subject"):
            warnings["file name does not match --subject-pattern"] += 1
            return None
        return m.group("subject")

    def _label(self, raw: str) -> str | None:
        return self.to_label(raw, what="label folder" if not self.opts.get("csv") else "label",
                             key=raw.strip().lower(), known="the emotion names or a synonym such as angry, happiness")

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        self.require_dir(source)
        csvs = self.opts.get("csv")
        if csvs:
            return self._scan_csv(source, [Path(c) for c in csvs])
        skipped: Counter = Counter()
        warnings: Counter = Counter()
        entries = []
        files = image_files(source, skipped)
        if not files:
            raise LayoutError(f"{source}: no images found; folder expects {self.layout}")
        for rel in files:
            if "/" not in rel:
                skipped["not inside a label folder"] += 1
                continue
            folder = rel.split("/", 1)[0]
            label = self._label(folder)
            if label is None:
                skipped[f"unknown label {folder}"] += 1
                continue
            entries.append(Entry(rel, folder, label, subject_id=self._subject(rel, warnings)))
        if not entries:
            raise LayoutError(f"{source}: no image sits inside a label folder; folder expects {self.layout}")
        return Scan(entries, str(source), (), skipped, warnings, {"layout": "folders"})

    def _scan_csv(self, source: Path, csvs: list[Path]) -> Scan:
        skipped: Counter = Counter()
        warnings: Counter = Counter()
        entries = []
        for c in csvs:
            c = c if c.is_absolute() or c.exists() else source / c
            if not c.is_file():
                raise FerdataError(f"--csv {c} does not exist")
            with open(c, newline="", encoding="utf-8-sig", errors="replace") as fh:
                rows = list(csv.reader(fh))
            if not rows:
                raise LayoutError(f"{c} is empty; folder --csv expects columns path,label[,subject]")
            header = [h.strip().lower() for h in rows[0]]
            if "path" in header and "label" in header:
                ip, il = header.index("path"), header.index("label")
                isub = header.index("subject") if "subject" in header else None
                body = enumerate(rows[1:], 2)
            else:
                ip, il, isub = 0, 1, 2 if len(rows[0]) > 2 else None
                body = enumerate(rows, 1)
            for n, row in body:
                if not row or not any(x.strip() for x in row):
                    continue
                if len(row) <= max(ip, il):
                    raise LayoutError(f"{c} line {n}: expected path,label[,subject], got {row!r}")
                rel, raw = row[ip].strip().replace("\\", "/"), row[il].strip()
                label = self._label(raw)
                if label is None:
                    skipped[f"unknown label {raw}"] += 1
                    continue
                subject = row[isub].strip() if isub is not None and len(row) > isub and row[isub].strip() else None
                error = None if inside(source, rel) else f"{c.name} line {n}: path {rel!r} points outside {source}"
                entries.append(Entry(rel, raw, label, subject_id=subject or self._subject(rel, warnings), error=error))
        return Scan(entries, str(source), (), skipped, warnings, {"layout": "csv", "csvs": [str(c) for c in csvs]})
