"""Canonical emotion vocabulary, every dataset's code map, and class groupings.

Every manifest stores the canonical name in ``label`` and what the dataset said in
``label_raw``, so a code map can be audited (or corrected) after ingest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ferdata.errors import FerdataError, UnknownLabelError, arg

#: The eight expression classes, in the order used for class indices everywhere.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
)
#: AffectNet's non-emotion annotations: kept as labels, excluded from training by default.
NON_EMOTIONS: tuple[str, ...] = ("none", "uncertain", "nonface")
VOCABULARY: tuple[str, ...] = EMOTIONS + NON_EMOTIONS

# --- per-dataset code maps --------------------------------------------------------------

FER2013_CODES: dict[str, str] = {
    "0": "anger", "1": "disgust", "2": "fear", "3": "happy",
    "4": "sad", "5": "surprise", "6": "neutral",
}
CKPLUS_CODES: dict[str, str] = {
    "0": "neutral", "1": "anger", "2": "contempt", "3": "disgust",
    "4": "fear", "5": "happy", "6": "sad", "7": "surprise",
}
JAFFE_CODES: dict[str, str] = {
    "AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happy",
    "NE": "neutral", "SA": "sad", "SU": "surprise",
}
#: SFEW's folder names, and the 1-7 codes of the ANU ``SFEW.xlsx`` in the same order.
SFEW_NAMES: dict[str, str] = {
    "Angry": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy",
    "Neutral": "neutral", "Sad": "sad", "Surprise": "surprise",
}
SFEW_XLSX_CODES: dict[str, str] = {str(i + 1): v for i, v in enumerate(SFEW_NAMES.values())}
AFFECTNET_CODES: dict[str, str] = {
    "0": "neutral", "1": "happy", "2": "sad", "3": "surprise", "4": "fear",
    "5": "disgust", "6": "anger", "7": "contempt", "8": "none", "9": "uncertain",
    "10": "nonface",
}

#: Folder and CSV names met in the wild (lower-cased), for CK+48, FER-2013 folders and
#: users' own collections.
SYNONYMS: dict[str, str] = {
    **{e: e for e in VOCABULARY},
    "angry": "anger", "ang": "anger", "an": "anger",
    "disgusted": "disgust", "dis": "disgust", "di": "disgust",
    "fearful": "fear", "scared": "fear", "afraid": "fear", "fe": "fear",
    "happiness": "happy", "joy": "happy", "hap": "happy", "ha": "happy",
    "sadness": "sad", "sa": "sad",
    "surprised": "surprise", "sur": "surprise", "su": "surprise",
    "neu": "neutral", "ne": "neutral", "calm": "neutral",
    "contemptuous": "contempt", "co": "contempt",
    "no-face": "nonface", "noface": "nonface", "no_face": "nonface",
}


def canonical(raw: str, code_map: Mapping[str, str], *, dataset: str, what: str = "label") -> str:
    """Map a dataset's raw label to the vocabulary, or fail naming it and the fix."""
    try:
        return code_map[raw]
    except KeyError:
        known = ", ".join(sorted(code_map))
        raise UnknownLabelError(
            f"{dataset}: unknown {what} {raw!r} (known: {known}); map it with "
            f"{arg('label_map')} '{raw}=<label>' or pass {arg('skip_unknown')}"
        ) from None


def parse_label_map(spec: str | None) -> dict[str, str]:
    """``'happiness=happy,angry=anger'`` → dict, every target checked against the vocabulary."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise FerdataError(f"{arg('label_map')} entry {part!r} is not RAW=LABEL (e.g. 'joy=happy')")
        raw, target = (s.strip() for s in part.split("=", 1))
        if target not in VOCABULARY:
            raise FerdataError(
                f"{arg('label_map')} target {target!r} is not a known label; use one of: {', '.join(VOCABULARY)}"
            )
        out[raw] = target
    return out


# --- class sets -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassSet:
    """Which canonical labels a task uses, and what class each becomes.

    ``mapping`` sends a canonical label to its class name; labels absent from it are
    excluded (and counted by whoever excludes them).
    """

    name: str
    classes: tuple[str, ...]
    mapping: Mapping[str, str]

    def index(self, label: str) -> int:
        return self.classes.index(self.mapping[label])

    def includes(self, label: str) -> bool:
        return label in self.mapping

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "mapping": dict(self.mapping)}

    @classmethod
    def from_dict(cls, d: Mapping) -> ClassSet:
        return cls(d["name"], tuple(d["classes"]), dict(d["mapping"]))


def _identity(name: str, labels: Iterable[str]) -> ClassSet:
    labels = tuple(labels)
    return ClassSet(name, labels, {lab: lab for lab in labels})


_NO_NEUTRAL = tuple(e for e in EMOTIONS if e != "neutral")
_NO_CONTEMPT = tuple(e for e in EMOTIONS if e != "contempt")
THREE_GROUPS: dict[str, tuple[str, ...]] = {
    # Paper 004's grouping.
    "positive": ("happy",),
    "neutral": ("neutral", "surprise"),
    "negative": ("anger", "contempt", "disgust", "fear", "sad"),
}

CLASS_SETS: dict[str, ClassSet] = {
    "8": _identity("8", EMOTIONS),
    "7": _identity("7", _NO_CONTEMPT),
    "7-no-contempt": _identity("7-no-contempt", _NO_CONTEMPT),
    "7-no-neutral": _identity("7-no-neutral", _NO_NEUTRAL),
    "6": _identity("6", tuple(e for e in EMOTIONS if e not in ("neutral", "contempt"))),
    "3": ClassSet(
        "3",
        tuple(THREE_GROUPS),
        {lab: group for group, labels in THREE_GROUPS.items() for lab in labels},
    ),
}


def class_set(spec: str | None, present: Iterable[str] | None = None) -> ClassSet:
    """Resolve ``--classes``: a named set (8, 7, 6, 7-no-neutral, 7-no-contempt, 3), a
    comma list of labels, or ``None`` for every emotion present in the data (AffectNet's
    none/uncertain/nonface excluded)."""
    if spec is None or spec in ("all", "auto"):
        labels = [e for e in EMOTIONS if present is None or e in set(present)]
        return _identity("all", labels)
    if spec in CLASS_SETS:
        return CLASS_SETS[spec]
    labels = [s.strip() for s in re.split(r"[,\s]+", spec) if s.strip()]
    unknown = [lab for lab in labels if lab not in VOCABULARY]
    if unknown or not labels:
        raise FerdataError(
            f"{arg('classes')} {spec!r}: unknown label(s) {', '.join(unknown) or '(none given)'}; use "
            f"{', '.join(CLASS_SETS)} or a comma list of: {', '.join(VOCABULARY)}"
        )
    return _identity(",".join(labels), labels)
