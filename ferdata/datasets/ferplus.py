"""FER+ (Barsoum et al. 2016): every FER-2013 face re-labelled by 10 crowd annotators.

Two layouts:

* FER+'s own: ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/``, each with PNGs named
  by ``fer2013new.csv``'s ``Image name`` and a ``label.csv`` without header
  (``name, "(x0, y0, x1, y1)", neutral, happiness, surprise, sadness, anger, disgust, fear,
  contempt, unknown, NF``).
* ``fer2013new.csv`` beside ``fer2013.csv`` (the two are row-aligned): each row's pixels are
  written as a PNG under the manifest, as the ``fer2013`` adapter does.

The ten vote counts are kept as ``votes_<label>`` columns (canonical names: happy, sad,
anger, ..., ``votes_uncertain`` for FER+'s *unknown*, ``votes_nonface`` for *NF*), so a
model can be trained on the vote distribution (``ferdata train ... --targets votes``) and
any label rule can be applied later. ``label`` follows ``--label-rule``:

* ``majority`` (default): the class holding at least half of the votes, alone on top;
* ``plurality``: the class with the most votes, when no other class has as many;
* ``ferplus``: the FER+ paper's rule (its reference code's ``majority`` mode): votes of a
  single annotator are dropped as outliers, then the top class needs more than half of
  the remaining votes.

A winner *unknown* becomes the label ``uncertain``, *NF* ``nonface`` (both kept, and left
out of training by the default class sets); an image without a winner has no label and
is counted; FER-2013's ``emotion`` code is kept in ``fer2013_label``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import DatasetAdapter, Entry, Scan, inside
from ferdata.datasets.fer2013 import pixels_to_png
from ferdata.errors import FerdataError, LayoutError, arg
from ferdata.labels import FER2013_CODES
from ferdata.manifest.store import IN_MANIFEST

#: FER+'s vote columns in file order, and the canonical label each one stands for.
FERPLUS_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                 "unknown", "NF")
VOTE_LABELS = ("neutral", "happy", "surprise", "sad", "anger", "disgust", "fear", "contempt", "uncertain",
               "nonface")
VOTE_COLUMNS = tuple(f"votes_{label}" for label in VOTE_LABELS)
LABEL_RULES = ("majority", "plurality", "ferplus")
#: FER+'s folders and the FER-2013 usage each one holds.
FOLDERS = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}
LABEL_FILE = "label.csv"
NEW_CSV = "fer2013new.csv"
OLD_CSV = "fer2013.csv"
_BOX = re.compile(r"^\(?\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\)?$")

EXTRA_FIELDS = (
    *(pa.field(c, pa.int16()) for c in VOTE_COLUMNS),
    pa.field("ferplus_name", pa.string()),
    pa.field("fer2013_label", pa.string()),
    pa.field("csv_row", pa.int32()),
    pa.field("face_x", pa.int32()), pa.field("face_y", pa.int32()),
    pa.field("face_width", pa.int32()), pa.field("face_height", pa.int32()),
)


def vote_winner(votes: Sequence[int], rule: str = "majority") -> int | None:
    """Index (into :data:`VOTE_LABELS`) of the class ``rule`` picks from ten vote counts, or
    ``None`` when the rule finds no winner."""
    if rule not in LABEL_RULES:
        raise FerdataError(f"{arg('label_rule')} {rule!r}: use one of {', '.join(LABEL_RULES)}")
    counts = [max(0, int(v)) for v in votes]
    if rule == "ferplus":
        counts = [c if c > 1 else 0 for c in counts]  # a single annotator's vote is an outlier
    total = sum(counts)
    if total <= 0:
        return None
    top = max(counts)
    if counts.count(top) > 1:
        return None
    need = {"majority": 2 * top >= total, "plurality": True, "ferplus": 2 * top > total}[rule]
    return counts.index(top) if need else None


@register_dataset("ferplus")
class FERPlus(DatasetAdapter):
    name = "ferplus"
    description = "FER+: FER-2013's faces with 10 crowd votes each; labels by --label-rule, votes kept"
    layout = ("FER2013Train|FER2013Valid|FER2013Test/ with PNGs + label.csv, "
              "or fer2013new.csv beside fer2013.csv")
    options = ("label_rule",)

    @property
    def rule(self) -> str:
        rule = self.opts.get("label_rule") or "majority"
        if rule not in LABEL_RULES:
            raise FerdataError(f"{arg('label_rule')} {rule!r}: use one of {', '.join(LABEL_RULES)}")
        return rule

    @staticmethod
    def _csv_pair(source: Path) -> tuple[Path, Path] | None:
        folder = source.parent if source.is_file() else source
        new, old = folder / NEW_CSV, folder / OLD_CSV
        if source.is_file() and source.name != NEW_CSV:
            return None
        return (new, old) if new.is_file() else None

    @classmethod
    def detect(cls, source: Path) -> bool:
        if source.is_dir() and any((source / f / LABEL_FILE).is_file() for f in FOLDERS):
            return True
        return cls._csv_pair(source) is not None

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        rule = self.rule
        if not source.exists():
            raise FerdataError(f"{source} does not exist; give the ferplus dataset folder ({self.layout})")
        if source.is_dir() and any((source / f).is_dir() for f in FOLDERS):
            return self._scan_folders(source, rule)
        pair = self._csv_pair(source)
        if pair is None:
            raise LayoutError(f"{source}: neither FER2013Train/FER2013Valid/FER2013Test folders nor {NEW_CSV}; "
                              f"ferplus expects {self.layout}")
        return self._scan_csvs(*pair, rule)

    # -- FER+'s own folders --------------------------------------------------------------
    def _scan_folders(self, source: Path, rule: str) -> Scan:
        entries: list[Entry] = []
        skipped: Counter = Counter()
        warnings: Counter = Counter()
        listed: set[str] = set()
        for folder, usage in FOLDERS.items():
            if not (source / folder).is_dir():
                continue
            labels = source / folder / LABEL_FILE
            if not labels.is_file():
                raise LayoutError(f"{source / folder} has no {LABEL_FILE}; ferplus expects {self.layout}")
            with open(labels, newline="", encoding="utf-8", errors="replace") as fh:
                for n, row in enumerate(csv.reader(fh), 1):
                    if not row or not any(c.strip() for c in row):
                        skipped["empty CSV row"] += 1
                        continue
                    name = row[0].strip()
                    rel = f"{folder}/{name}"
                    where = f"{folder}/{LABEL_FILE} line {n}"
                    if not inside(source, rel) or "/" in name or "\\" in name:
                        entries.append(Entry(rel, None, None, source_split=usage,
                                             error=f"{where}: image name {name!r} points outside its folder"))
                        continue
                    listed.add(rel)
                    box = _BOX.match(row[1].strip()) if len(row) > 1 else None
                    votes, error = _votes(row[2:], where)
                    extras = {"ferplus_name": name}
                    if box:
                        x0, y0, x1, y1 = (int(v) for v in box.groups())
                        extras.update(face_x=x0, face_y=y0, face_width=x1 - x0, face_height=y1 - y0)
                    entries.append(self._entry(rel, votes, rule, usage, extras, error))
        missing = 0
        for folder in FOLDERS:
            if (source / folder).is_dir():
                for f in sorted((source / folder).glob("*.png")):
                    if f"{folder}/{f.name}" not in listed:
                        missing += 1
        if missing:
            warnings[f"PNG not listed in {LABEL_FILE} (not ingested)"] += missing
        if not entries:
            raise LayoutError(f"{source}: the {LABEL_FILE} files list no image; ferplus expects {self.layout}")
        return Scan(entries, str(source), EXTRA_FIELDS, skipped, warnings,
                    {"layout": "folders", "label_rule": rule, **_rule_counts(entries)},
                    pre_cropped=True)  # FER-2013's 48 px face crops

    # -- fer2013new.csv beside fer2013.csv -----------------------------------------------
    def _scan_csvs(self, new: Path, old: Path, rule: str) -> Scan:
        if not old.is_file():
            raise FerdataError(f"{new} needs {OLD_CSV} beside it (the pixels; the two files are row-aligned)")
        with open(new, newline="", encoding="utf-8", errors="replace") as fh_new, \
                open(old, newline="", encoding="utf-8", errors="replace") as fh_old:
            votes_rows, pixel_rows = csv.reader(fh_new), csv.reader(fh_old)
            head_new, head_old = next(votes_rows, None) or [], next(pixel_rows, None) or []
            expected = ["usage", "image name", *(n.lower() for n in FERPLUS_NAMES)]
            if [h.strip().lower() for h in head_new[:12]] != expected:
                raise LayoutError(f"{new}: header {head_new[:3]}...; ferplus expects "
                                  f"'Usage,Image name,{','.join(FERPLUS_NAMES)}'")
            if [h.strip().lower() for h in head_old[:2]] != ["emotion", "pixels"]:
                raise LayoutError(f"{old}: header is {head_old!r}; expected 'emotion,pixels,Usage'")
            entries: list[Entry] = []
            skipped: Counter = Counter()
            warnings: Counter = Counter()
            for idx, (vrow, prow) in enumerate(zip(votes_rows, pixel_rows)):
                rel = f"{idx:05d}.png"
                where = f"{NEW_CSV} line {idx + 2}"
                usage = (vrow[0].strip() if vrow else "") or (prow[2].strip() if len(prow) > 2 else "") or None
                name = vrow[1].strip() if len(vrow) > 1 and vrow[1].strip() else None
                votes, error = _votes(vrow[2:], where)
                extras = {"ferplus_name": name, "csv_row": idx,
                          "fer2013_label": FER2013_CODES.get(prow[0].strip()) if prow else None}
                if len(prow) < 2:
                    error = error or f"{OLD_CSV} line {idx + 2}: missing pixels column"
                entry = self._entry(rel, votes, rule, usage, extras, error)
                entry.payload = prow[1] if len(prow) > 1 else ""
                entries.append(entry)
            for _ in votes_rows:
                warnings[f"row of {NEW_CSV} beyond the end of {OLD_CSV} (not ingested)"] += 1
            for _ in pixel_rows:
                warnings[f"row of {OLD_CSV} beyond the end of {NEW_CSV} (not ingested)"] += 1
        if not entries:
            raise LayoutError(f"{new}: no data rows; ferplus expects {self.layout}")
        return Scan(entries, IN_MANIFEST + "images", EXTRA_FIELDS, skipped, warnings,
                    {"layout": "csv", "csv": str(new), "pixels_csv": str(old), "label_rule": rule,
                     **_rule_counts(entries)}, materialize=pixels_to_png, pre_cropped=True)

    def _entry(self, rel: str, votes: list[int] | None, rule: str, usage: str | None, extras: dict,
               error: str | None) -> Entry:
        if votes is not None:
            extras.update(zip(VOTE_COLUMNS, votes))
            win = vote_winner(votes, rule)
            raw = FERPLUS_NAMES[win] if win is not None else f"no {rule} winner"
            label = self.label_map.get(raw, VOTE_LABELS[win]) if win is not None else None
        else:
            raw, label = None, None
        return Entry(rel, raw, label, source_split=usage, extras=extras, error=error)


def _votes(cells: Sequence[str], where: str) -> tuple[list[int] | None, str | None]:
    """Ten vote counts, or an error naming the line."""
    if len(cells) < len(FERPLUS_NAMES):
        return None, f"{where}: {len(cells)} vote counts, expected {len(FERPLUS_NAMES)} ({', '.join(FERPLUS_NAMES)})"
    try:
        votes = [int(float(c)) for c in cells[: len(FERPLUS_NAMES)]]
    except ValueError:
        return None, f"{where}: a vote count is not a number"
    if min(votes) < 0:
        return None, f"{where}: a vote count is negative"
    return votes, None


def _rule_counts(entries: list[Entry]) -> dict[str, int]:
    with_votes = [e for e in entries if e.error is None and e.extras.get(VOTE_COLUMNS[0]) is not None]
    return {"images with votes": len(with_votes),
            "no winner under the label rule": sum(1 for e in with_votes if e.label is None),
            "winner unknown (label uncertain)": sum(1 for e in with_votes if e.label == "uncertain"),
            "winner NF (label nonface)": sum(1 for e in with_votes if e.label == "nonface")}
