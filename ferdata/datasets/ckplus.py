"""CK+ in both layouts.

* CK+48: ``<class>/S010_004_00000017.png`` — the last three frames of the 327 labelled
  sequences, pre-cropped to 48×48.
* Original: ``cohn-kanade-images/S005/001/S005_001_00000011.png`` with labels in
  ``Emotion/S005/001/S005_001_00000011_emotion.txt`` (one float code, for the last frame).

``--frames last|last3`` picks the peak frame or the last three; ``--neutral first`` adds
each labelled sequence's first frame as neutral (original layout only).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import (
    NAME_ERROR_FIELD,
    DatasetAdapter,
    Entry,
    Scan,
    image_files,
    is_hidden,
)
from ferdata.errors import FerdataError, LayoutError, arg
from ferdata.findings import Tally, count
from ferdata.labels import CKPLUS_CODES, SYNONYMS

FRAME_RE = re.compile(r"^(?P<subject>S\d+)_(?P<seq>\d+)_(?P<frame>\d+)\.[A-Za-z0-9]+$")
CK48_FOLDERS = "anger, contempt, disgust, fear, happy, sadness, surprise"
EXTRA_FIELDS = (pa.field("sequence_id", pa.string()), pa.field("frame", pa.int32()))


@register_dataset("ckplus", aliases=("ck+",))
class CKPlus(DatasetAdapter):
    code_map = CKPLUS_CODES
    name = "ckplus"
    description = "Extended Cohn-Kanade: CK+48 crops or the original sequences with Emotion/ labels"
    layout = "CK+48 (<class>/S010_004_00000017.png) or the original (cohn-kanade-images/ + Emotion/)"
    options = ("frames", "neutral")

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        frames = self.opts.get("frames") or "last3"
        neutral = self.opts.get("neutral") or "none"
        if frames not in ("last", "last3"):
            raise FerdataError(f"{arg('frames')} {frames!r}: use 'last' (peak frame) or 'last3' (last three frames)")
        if neutral not in ("first", "none"):
            raise FerdataError(f"{arg('neutral')} {neutral!r}: use 'first' (first frame of each sequence) or 'none'")
        self.frames, self.neutral = frames, neutral

    @staticmethod
    def _original_root(source: Path) -> Path | None:
        if not source.is_dir():
            return None
        for base in (source, *(p for p in source.iterdir() if p.is_dir())):
            if (base / "cohn-kanade-images").is_dir() and (base / "Emotion").is_dir():
                return base
        return None

    @classmethod
    def detect(cls, source: Path) -> bool:
        if not source.is_dir():
            return False
        if cls._original_root(source):
            return True
        dirs = [p for p in source.iterdir() if p.is_dir() and not is_hidden(p.name)]
        if not dirs or not all(SYNONYMS.get(d.name.lower()) for d in dirs):
            return False
        sample = next((f for d in dirs for f in d.iterdir()), None)
        return bool(sample and FRAME_RE.match(sample.name))

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        self.require_dir(source)
        root = self._original_root(source)
        if root is not None:
            return self._scan_original(root)
        if self.neutral == "first":
            raise FerdataError(f"{arg('neutral')} first needs the original CK+ layout (cohn-kanade-images/ + Emotion/); "
                               "CK+48 holds only the last three frames")
        return self._scan_48(source)

    def _parse(self, rel: str) -> tuple[str, str, int] | None:
        m = FRAME_RE.match(rel.rsplit("/", 1)[-1])
        if not m:
            return None
        return m["subject"], f"{m['subject']}_{m['seq']}", int(m["frame"])

    def _scan_48(self, source: Path) -> Scan:
        skipped = Tally()
        warnings = Tally()
        files = image_files(source, skipped)
        if not files:
            raise LayoutError(f"{source}: no images found; ckplus expects {self.layout}")
        if all("/" not in rel for rel in files):
            raise LayoutError(f"{source}: no image sits inside a class folder; ckplus expects {self.layout}")
        entries: list[Entry] = []
        for rel in files:
            if "/" not in rel:  # a stray file beside the class folders: a row without a label
                entry = self.unparsed(rel, "not inside a class folder", skipped)
                if entry is not None:
                    entries.append(entry)
                continue
            folder = rel.split("/", 1)[0]
            label = self.to_label(folder, what="class folder", table=SYNONYMS, key=folder.lower(),
                                  known=CK48_FOLDERS)
            if label is None:
                count(skipped, f"unknown label {folder}", rel)
                continue
            parsed = self._parse(rel)
            if parsed is None:  # the class folder still gives the label
                entry = self.unparsed(rel, "name not like S010_004_00000017.png (subject_sequence_frame)", skipped,
                                      label_raw=folder, label=label)
                if entry is not None:
                    entries.append(entry)
                continue
            subject, seq, frame = parsed
            entries.append(Entry(rel, folder, label, subject_id=subject,
                                 extras={"sequence_id": seq, "frame": frame}))
        if self.frames == "last":
            last: dict[str, int] = defaultdict(int)
            for e in entries:
                if "sequence_id" in e.extras:
                    last[e.extras["sequence_id"]] = max(last[e.extras["sequence_id"]], e.extras["frame"])
            kept = [e for e in entries if "sequence_id" not in e.extras
                    or e.extras["frame"] == last[e.extras["sequence_id"]]]
            skipped["not the last frame (--frames last)"] += len(entries) - len(kept)
            entries = kept
        return Scan(entries, str(source), (NAME_ERROR_FIELD, *EXTRA_FIELDS), skipped, warnings, {"layout": "ck+48"},
                    pre_cropped=True)

    def _scan_original(self, root: Path) -> Scan:
        images, emotion = root / "cohn-kanade-images", root / "Emotion"
        skipped = Tally()
        warnings = Tally()
        frames_by_seq: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for rel in image_files(images, skipped):
            parsed = self._parse(rel)
            if parsed is None:  # not a frame of any sequence, so of no labelled one either
                skipped.add("name not like S005_001_00000011.png", "cohn-kanade-images/" + rel)
                continue
            frames_by_seq[parsed[1]].append((parsed[2], "cohn-kanade-images/" + rel))
        entries: list[Entry] = []
        n_labelled = 0
        for label_file in sorted(emotion.rglob("*_emotion.txt")):
            stem = label_file.name[: -len("_emotion.txt")]
            m = FRAME_RE.match(stem + ".png")
            if not m:
                warnings.add("emotion file name not like S005_001_00000011_emotion.txt (ignored)",
                             label_file.relative_to(root).as_posix())
                continue
            seq = f"{m['subject']}_{m['seq']}"
            try:
                code = str(int(float(label_file.read_text().split()[0])))
            except (ValueError, IndexError, OSError):
                raise FerdataError(f"ckplus: {label_file} does not hold one numeric emotion code") from None
            label = self.to_label(code, what="emotion code")
            if label is None:
                skipped.add(f"unknown label {code}", label_file.relative_to(root).as_posix())
                continue
            frames = sorted(frames_by_seq.get(seq, []))
            if not frames:
                warnings.add("labelled sequence without images", label_file.relative_to(root).as_posix())
                continue
            n_labelled += 1
            chosen = frames[-1:] if self.frames == "last" else frames[-3:]
            for frame, rel in chosen:
                entries.append(Entry(rel, code, label, subject_id=m["subject"],
                                     extras={"sequence_id": seq, "frame": frame}))
            if self.neutral == "first" and frames[0] not in chosen:
                frame, rel = frames[0]
                entries.append(Entry(rel, "0", "neutral", subject_id=m["subject"],
                                     extras={"sequence_id": seq, "frame": frame}))
        if not entries:
            raise LayoutError(f"{root}: no labelled sequences found under Emotion/; ckplus expects {self.layout}")
        unlabelled = len(frames_by_seq) - n_labelled
        report = {"layout": "original", "sequences": len(frames_by_seq), "labelled_sequences": n_labelled,
                  "unlabelled_sequences": unlabelled}
        return Scan(entries, str(root), EXTRA_FIELDS, skipped, warnings, report)

