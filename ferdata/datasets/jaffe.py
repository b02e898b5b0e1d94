"""JAFFE: ``KA.AN1.39.tiff`` = subject KA, expression AN, pose 1, image 39.

The semantic ratings (60 raters, six emotions, 1–5) join by subject + expression/pose
(``KM-NE1``); rows for images that are not in the set are reported, not dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow as pa

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import DatasetAdapter, Entry, Scan, image_files
from ferdata.errors import FerdataError, UnknownLabelError
from ferdata.labels import JAFFE_CODES

NAME_RE = re.compile(r"^(?P<subject>[A-Za-z]{2})\.(?P<code>[A-Za-z]{2})(?P<pose>\d+)\.(?P<number>\d+)\.[^.]+$")
#: Column order of the ratings file, mapped to canonical labels.
RATING_COLUMNS = (("HAP", "happy"), ("SAD", "sad"), ("SUR", "surprise"), ("ANG", "anger"),
                  ("DIS", "disgust"), ("FEA", "fear"))
RATING_FIELDS = tuple(pa.field(f"rating_{lab}", pa.float32()) for _, lab in RATING_COLUMNS)


def read_ratings(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``{(subject, 'NE1'): {'happy': 2.87, ...}}`` from the semantic-ratings file."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise FerdataError(f"--ratings {path}: cannot read it ({exc.strerror})") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 8 or "-" not in parts[7]:
            if n == 1:  # a header line such as "N HAP SAD SUR ANG DIS FEA PIC"
                continue
            raise FerdataError(f"--ratings {path}: line {n} is not 'index HAP SAD SUR ANG DIS FEA ID'")
        try:
            scores = [float(x) for x in parts[1:7]]
        except ValueError:
            if n == 1:
                continue
            raise FerdataError(f"--ratings {path}: line {n} has a non-numeric score") from None
        subject, key = parts[7].split("-", 1)
        out[(subject.upper(), key.upper())] = {lab: s for (_, lab), s in zip(RATING_COLUMNS, scores)}
    if not out:
        raise FerdataError(f"--ratings {path}: no rating rows found")
    return out


@register_dataset("jaffe")
class Jaffe(DatasetAdapter):
    name = "jaffe"
    description = "Japanese Female Facial Expression: 213 images, 10 subjects, 7 classes"
    layout = "a folder of files named like KA.AN1.39.tiff (optional ratings.txt)"
    options = ("ratings",)
    code_map = JAFFE_CODES

    @classmethod
    def detect(cls, source: Path) -> bool:
        if not source.is_dir():
            return False
        names = [p.name for p in source.iterdir() if p.is_file()]
        return sum(bool(NAME_RE.match(n)) for n in names) >= max(1, len(names) // 2)

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        self.require_dir(source)
        skipped: Counter = Counter()
        files = image_files(source, skipped)
        ratings_path = self.opts.get("ratings")
        if ratings_path is None and (source / "ratings.txt").is_file():
            ratings_path = source / "ratings.txt"
        ratings = read_ratings(Path(ratings_path)) if ratings_path else None

        entries: list[Entry] = []
        matched: set[tuple[str, str]] = set()
        for rel in files:
            m = NAME_RE.match(rel.rsplit("/", 1)[-1])
            if not m:
                if self.skip_unknown:
                    skipped["name not like KA.AN1.39.tiff"] += 1
                    continue
                raise UnknownLabelError(
                    f"jaffe: cannot read subject and expression from {rel!r} (expected names like "
                    "KA.AN1.39.tiff); rename it, or pass --skip-unknown"
                )
            code = m["code"].upper()
            label = self.to_label(code, what="expression code")
            if label is None:
                skipped[f"unknown label {code}"] += 1
                continue
            subject, pose = m["subject"].upper(), f"{code}{m['pose']}"
            extras: dict = {"pose": int(m["pose"]), "image_number": int(m["number"])}
            if ratings is not None:
                scores = ratings.get((subject, pose))
                if scores:
                    matched.add((subject, pose))
                    extras.update({f"rating_{k}": v for k, v in scores.items()})
                    extras["rating_top"] = max(scores, key=scores.get)
            entries.append(Entry(rel, code, label, subject_id=subject, extras=extras))

        fields = [pa.field("pose", pa.int16()), pa.field("image_number", pa.int32())]
        report: dict = {}
        if ratings is not None:
            fields += [*RATING_FIELDS, pa.field("rating_top", pa.string())]
            unused = sorted(f"{s}-{k}" for s, k in set(ratings) - matched)
            report["ratings_file"] = str(ratings_path)
            report["ratings_without_image"] = unused
            missing = sum(1 for e in entries if "rating_top" not in e.extras)
            if missing:
                report["images_without_rating"] = missing
        return Scan(entries, str(source), tuple(fields), skipped, Counter(), report)
