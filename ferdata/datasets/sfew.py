"""SFEW, in the ANU course layout (``Images/<Emotion>/`` + ``PCA/SFEW.xlsx``) and the
EmotiW SFEW 2.0 layout (``Train/<Emotion>/``, ``Val/<Emotion>/``). A folder named like
SFEW 2.0's aligned faces (``Train_Aligned_Faces``, anything with "aligned") is recorded as
pre-cropped.

File names are ``<Movie>_<9-digit timestamp>_<8-digit character>.png``; movie names may
contain underscores, so the numeric fields are counted from the end. Columns beside the
labels: ``movie``, ``clip`` (``<Movie>_<timestamp>``: one scene of one movie, whose frames
are near-duplicates and always share a split role) and ``character`` (the last field).

``subject_id`` is paper 000's subject, the character field alone (102 subjects in the 675
ANU images), kept for reproducing it. It is not a reliable person ID: one clip holds
several characters, and the numbers repeat across movies. Person-aware splits therefore
group SFEW by movie unless ``--group-by`` says otherwise (:attr:`SFEW.default_group_by`).

Irregular names that still read with a looser pattern (``OceansThirteen-010619400_…``,
``IAmSam_013827920__…``) keep their fields and are listed as warnings; a name that does
not read at all, or a file outside the emotion folders, is a row with ``name_error`` set
and no subject.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from ferdata.datasets._registry import register_dataset
from ferdata.datasets.base import (
    NAME_ERROR_FIELD,
    DatasetAdapter,
    Entry,
    Scan,
    image_files,
)
from ferdata.errors import FerdataError, LayoutError, arg
from ferdata.findings import Tally
from ferdata.labels import SFEW_NAMES, SFEW_XLSX_CODES, SYNONYMS

REGULAR = re.compile(r"^(?P<movie>.+)_(?P<clip>\d{9})_(?P<char>\d{8})$")
LENIENT = re.compile(r"^(?P<movie>.+?)[_\-]+(?P<clip>\d+)[_\-]+(?P<char>\d+)$")
PC_FIELDS = tuple(pa.field(f"{d}_pc{i}", pa.float64()) for d in ("lpq", "phog") for i in range(1, 6))
EXTRA_FIELDS = (NAME_ERROR_FIELD, pa.field("movie", pa.string()), pa.field("clip", pa.string()),
                pa.field("character", pa.string()))
UNPARSED = "name not like <Movie>_<9 digits>_<8 digits>.png"
SFEW_FOLDERS = {**SYNONYMS, **{k.lower(): v for k, v in SFEW_NAMES.items()}}
SPLIT_DIRS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def parse_name(stem: str) -> tuple[str | None, str | None, str | None, bool]:
    """(movie, timestamp, character, regular?) from a frame's file stem."""
    m = REGULAR.match(stem)
    if m:
        return m["movie"], m["clip"], m["char"], True
    m = LENIENT.match(stem)
    if m:
        return m["movie"].rstrip("_-") or None, m["clip"], m["char"], False
    return None, None, None, False


def is_aligned(source: Path, parents: list[Path]) -> bool:
    """SFEW 2.0's aligned faces (``Train_Aligned_Faces/``, 143x181 crops) rather than frames:
    the dataset folder or a split folder says "aligned"."""
    return any("aligned" in p.name.lower() for p in (source, *parents))


def read_xlsx(path: Path) -> dict[str, dict[str, list[float]]]:
    """``{stem: {label_code: [lpq_pc1..5, phog_pc1..5]}}`` from the ANU ``SFEW.xlsx``.

    Keyed by stem *and* label: the same frame can stand under two emotions (it does in the
    ANU subset), with one xlsx row for each.
    """
    import warnings

    from openpyxl import load_workbook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: "Unknown extension is not supported"
        return _read_xlsx(path, load_workbook)


def _read_xlsx(path: Path, load_workbook) -> dict[str, dict[str, list[float]]]:
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001
        raise FerdataError(f"{path}: cannot read it as an Excel workbook ({exc}); pass {arg('xlsx')} none to skip it") from None
    out: dict[str, dict[str, list[float]]] = {}
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        for n, row in enumerate(rows, 1):
            if not row or row[0] is None:
                continue
            name = str(row[0]).strip()
            if not name.lower().endswith(".mat") and str(row[1]).strip().lower() == "label":
                continue  # header
            values = list(row[1:12])
            if len(values) < 11 or any(v is None for v in values):
                raise FerdataError(f"{path}: row {n} has fewer than 11 values (label + 10 components)")
            stem = name.rsplit("/", 1)[-1]
            stem = stem[:-4] if stem.lower().endswith(".mat") else stem
            out.setdefault(stem, {})[str(int(values[0]))] = [float(v) for v in values[1:11]]
    finally:
        wb.close()
    return out


@register_dataset("sfew")
class SFEW(DatasetAdapter):
    code_map = SFEW_NAMES
    name = "sfew"
    description = "Static Facial Expressions in the Wild: movie frames; grouped by movie, every clip in one role"
    layout = "Images/<Emotion>/ (+ PCA/SFEW.xlsx) or Train|Val/<Emotion>/"
    options = ("xlsx",)
    default_group_by = "movie"
    group_notes = {
        "subject": "sfew --group-by subject is paper 000's subject: the character field alone (102 subjects in the "
                   "ANU set), for reproducing the paper; it is not a person ID (one clip holds several characters "
                   "and the numbers repeat across movies), so one actor can sit on both sides: leave --group-by out "
                   "to group by movie, which keeps every actor on one side",
        "clip": "sfew --group-by clip keeps scenes apart, not actors: one actor appears in many clips of a movie; "
                "leave --group-by out to group by movie",
    }

    @staticmethod
    def _layout(source: Path) -> list[tuple[Path, str | None]]:
        """(emotion-folder parent, source_split) pairs."""
        if (source / "Images").is_dir():
            return [(source / "Images", None)]
        splits = [(p, SPLIT_DIRS[p.name.lower()]) for p in sorted(source.iterdir())
                  if p.is_dir() and p.name.lower() in SPLIT_DIRS]
        if splits:
            return splits
        if any(p.is_dir() and p.name in SFEW_NAMES for p in source.iterdir()):
            return [(source, None)]
        return []

    @classmethod
    def detect(cls, source: Path) -> bool:
        if not source.is_dir():
            return False
        for parent, _ in cls._layout(source):
            if any((parent / name).is_dir() for name in SFEW_NAMES):
                return True
        return False

    def scan(self, source: Path, manifest_dir: Path) -> Scan:
        self.require_dir(source)
        parents = self._layout(source)
        if not parents:
            raise LayoutError(f"{source}: not an SFEW layout; sfew expects {self.layout}")
        xlsx_opt = self.opts.get("xlsx")
        xlsx_path = None if xlsx_opt == "none" else Path(xlsx_opt) if xlsx_opt else source / "PCA" / "SFEW.xlsx"
        if xlsx_opt and xlsx_opt != "none" and not xlsx_path.is_file():
            raise FerdataError(f"{arg('xlsx')} {xlsx_path} does not exist")
        pcs = read_xlsx(xlsx_path) if xlsx_path and xlsx_path.is_file() else None

        skipped = Tally()
        warnings = Tally()
        entries: list[Entry] = []
        used: set[tuple[str, str]] = set()
        label_mismatch: list[str] = []
        for parent, split in parents:
            prefix = parent.relative_to(source).as_posix()
            prefix = "" if prefix == "." else prefix + "/"
            for rel in image_files(parent, skipped):
                if "/" not in rel:  # a stray file beside the emotion folders: a row without a label
                    entry = self.unparsed(prefix + rel, "not inside an emotion folder", skipped, source_split=split)
                    if entry is not None:
                        entries.append(entry)
                    continue
                folder = rel.split("/", 1)[0]
                label = self.to_label(folder, what="emotion folder", table=SFEW_FOLDERS,
                                      key=folder.lower(), known=", ".join(SFEW_NAMES))
                if label is None:
                    skipped.add(f"unknown label {folder}", prefix + rel)
                    continue
                stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                movie, stamp, char, regular = parse_name(stem)
                if movie is None:  # the emotion folder still gives the label
                    entry = self.unparsed(prefix + rel, UNPARSED, skipped, label_raw=folder, label=label,
                                          source_split=split)
                    if entry is not None:
                        entries.append(entry)
                    continue
                if not regular:
                    warnings.add("irregular file name, read leniently", prefix + rel)
                subject = str(int(char)).zfill(8)  # paper 000: the character field alone
                extras: dict = {"movie": movie, "clip": f"{movie}_{stamp}", "character": char}
                if pcs is not None and stem in pcs:
                    rows = pcs[stem]
                    code = next((c for c in rows if SFEW_XLSX_CODES.get(c) == label), None)
                    if code is None:  # the xlsx files this frame under another emotion
                        code = min(rows)
                        label_mismatch.append(stem)
                    used.add((stem, code))
                    extras.update({f.name: v for f, v in zip(PC_FIELDS, rows[code])})
                entries.append(Entry(prefix + rel, folder, label, subject_id=subject,
                                     source_split=split, extras=extras))
        fields = EXTRA_FIELDS + (PC_FIELDS if pcs is not None else ())
        report: dict = {"layout": "anu" if (source / "Images").is_dir() else "sfew2" if parents[0][1] else "flat"}
        if pcs is not None:
            without = sorted(f"{stem} (label {c})" for stem, rows in pcs.items() for c in rows
                             if (stem, c) not in used)
            report.update({
                "xlsx": str(xlsx_path),
                "xlsx_rows": sum(len(rows) for rows in pcs.values()),
                "xlsx_rows_without_image": len(without),
                "xlsx_rows_without_image_sample": without[:20],
                "images_without_xlsx_row": sum(1 for e in entries if "lpq_pc1" not in e.extras),
                "xlsx_label_disagrees": label_mismatch,
            })
        return Scan(entries, str(source), fields, skipped, warnings, report,
                    pre_cropped=is_aligned(source, [p for p, _ in parents]))

