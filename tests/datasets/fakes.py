"""Tiny fake datasets in each adapter's real layout (torchvision's ``inject_fake_data`` idea).

Every registered adapter must have a writer here: ``write_fake(name, root)`` writes the
files and returns what ingest must find.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Expected:
    source: Path
    n_images: int
    labels: Counter
    n_subjects: int
    options: dict = field(default_factory=dict)
    source_splits: Counter = field(default_factory=Counter)


FAKES: dict[str, Callable[[Path], Expected]] = {}


def fake(name: str):
    def deco(fn: Callable[[Path], Expected]) -> Callable[[Path], Expected]:
        FAKES[name] = fn
        return fn

    return deco


def write_fake(name: str, root: Path) -> Expected:
    root.mkdir(parents=True, exist_ok=True)
    return FAKES[name](root)


def image(path: Path, size: tuple[int, int] = (12, 10), mode: str = "L", seed: int = 0, fmt: str | None = None) -> Path:
    """A small random image; different seeds give different content (no accidental duplicates)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


@fake("jaffe")
def _jaffe(root: Path) -> Expected:
    files = ["KA.AN1.39.tiff", "KA.HA1.29.tiff", "KL.SA2.170.tiff", "KL.NE1.155.tiff", "YM.SU3.60.tiff"]
    for i, f in enumerate(files):
        image(root / f, (16, 16), "L", seed=i)
    (root / "README").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\0\0")
    (root / "ratings.txt").write_text(
        "1 1.2 1.1 1.3 4.5 1.9 1.4 KA-AN1\n2 4.9 1.1 1.2 1.0 1.0 1.1 KA-HA1\n"
        "3 1.3 3.9 1.2 1.6 2.0 1.7 KL-SA2\n4 2.0 2.1 1.5 1.4 1.6 1.5 KL-NE1\n"
        "5 1.4 1.2 4.7 1.3 1.2 2.2 YM-SU3\n6 1.0 1.0 1.0 1.0 1.0 5.0 YM-FE9\n")
    return Expected(root, 5, Counter(anger=1, happy=1, sad=1, neutral=1, surprise=1), 3)


@fake("ckplus")
def _ckplus(root: Path) -> Expected:
    n = 0
    for cls, subj in (("anger", "S010"), ("happy", "S011"), ("sadness", "S010"), ("contempt", "S012")):
        for frame in (17, 18, 19):
            image(root / cls / f"{subj}_00{n}_{frame:08d}.png", (48, 48), "L", seed=100 + n * 3 + frame)
        n += 1
    return Expected(root, 12, Counter(anger=3, happy=3, sad=3, contempt=3), 3)


@fake("sfew")
def _sfew(root: Path) -> Expected:
    names = {
        "Angry": ["Hangover_010805134_00000019.png", "HarryPotter_Deathly_Hallows_1_001610960_00000028.png"],
        "Happy": ["Hangover_010900000_00000019.png"],
        "Surprise": ["OceansTwelve-001817760_00000003.png", "IAmSam_013827920__00000004.png"],
    }
    i = 0
    for emo, files in names.items():
        for f in files:
            image(root / "Images" / emo / f, (20, 16), "RGB", seed=200 + i)
            i += 1
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["", "label", "LPQ", None, None, None, None, "PHOG", None, None, None, None])
    ws.append(["Hangover_010805134_00000019.mat", 1, *[0.1 * k for k in range(10)]])
    ws.append(["Hangover_010900000_00000019.mat", 4, *[0.2 * k for k in range(10)]])
    ws.append(["Missing_000000000_00000001.mat", 2, *[0.3 * k for k in range(10)]])
    (root / "PCA").mkdir()
    wb.save(root / "PCA" / "SFEW.xlsx")
    # Two regular subjects: Hangover_00000019 (2 frames), HarryPotter_Deathly_Hallows_1_00000028.
    return Expected(root, 5, Counter(anger=2, happy=1, surprise=2), 2)


@fake("fer2013")
def _fer2013(root: Path) -> Expected:
    rng = np.random.default_rng(3)
    path = root / "fer2013.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for code, usage in (("0", "Training"), ("3", "Training"), ("6", "PublicTest"), ("5", "PrivateTest")):
            w.writerow([code, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])
        w.writerow(["4", " ".join(["7"] * 100), "Training"])  # wrong pixel count: a flagged row
    return Expected(path, 5, Counter(anger=1, happy=1, neutral=1, surprise=1, sad=1), 0,
                    source_splits=Counter(Training=3, PublicTest=1, PrivateTest=1))


@fake("ferplus")
def _ferplus(root: Path) -> Expected:
    """FER+'s own layout: three folders of PNGs, each with a header-less label.csv."""
    rows = {
        "FER2013Train": [("fer0000000.png", "4,0,0,1,3,2,0,0,0,0"),     # no majority: no label
                         ("fer0000001.png", "6,0,1,1,0,0,0,0,2,0"),     # neutral
                         ("fer0000002.png", "0,0,0,0,0,0,0,0,1,9")],    # NF -> nonface
        "FER2013Valid": [("fer0028710.png", "0,10,0,0,0,0,0,0,0,0")],  # happy
        "FER2013Test": [("fer0032220.png", "0,0,0,0,2,1,0,7,0,0"),      # contempt
                        ("fer0032221.png", "1,0,0,0,0,0,0,0,9,0")],     # unknown -> uncertain
    }
    seed = 700
    for folder, items in rows.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        with open(root / folder / "label.csv", "w", newline="") as fh:
            for name, votes in items:
                image(root / folder / name, (48, 48), "L", seed=seed, fmt="PNG")
                seed += 1
                fh.write(f'{name},"(0, 0, 48, 48)",{votes}\n')
    return Expected(root, 6, Counter({None: 1, "neutral": 1, "nonface": 1, "happy": 1, "contempt": 1,
                                      "uncertain": 1}), 0,
                    source_splits=Counter(Training=3, PublicTest=1, PrivateTest=2))


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def write_ferplus_csvs(root: Path) -> Path:
    """``fer2013new.csv`` beside ``fer2013.csv``: row-aligned votes and pixels."""
    rng = np.random.default_rng(5)
    root.mkdir(parents=True, exist_ok=True)
    rows = [("0", "Training", "fer0000000.png", "0,0,0,0,8,1,1,0,0,0"),   # anger agrees with FER-2013
            ("3", "Training", "fer0000001.png", "1,0,0,0,0,0,0,0,0,9"),   # NF
            ("6", "PublicTest", "fer0028710.png", "2,7,1,0,0,0,0,0,0,0"),  # FER-2013 neutral, FER+ happy
            ("5", "PrivateTest", "", "0,0,0,0,0,0,0,0,0,10")]            # dropped by FER+: no image name
    with open(root / "fer2013.csv", "w", newline="") as old, open(root / "fer2013new.csv", "w", newline="") as new:
        w = csv.writer(old)
        w.writerow(["emotion", "pixels", "Usage"])
        new.write(FERPLUS_HEADER + "\n")
        for code, usage, name, votes in rows:
            w.writerow([code, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])
            new.write(f"{usage},{name},{votes}\n")
    return root


@fake("affectnet")
def _affectnet(root: Path) -> Expected:
    images = root / "Manually_Annotated_Images"
    rows = []
    for i, code in enumerate(("1", "0", "8", "7")):
        rel = f"{100 + i}/img{i}.jpg"
        image(images / rel, (24, 24), "RGB", seed=300 + i, fmt="JPEG")
        lm = ";".join(str(float(v)) for v in range(136))
        rows.append([rel, "2", "3", "18", "18", lm, code, "0.5" if i else "-2", "0.25"])
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
              "facial_landmarks", "expression", "valence", "arousal"]
    for name, part in (("training.csv", rows[:3]), ("validation.csv", rows[3:])):
        with open(root / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(part)
    return Expected(root, 4, Counter(happy=1, neutral=1, none=1, contempt=1), 0,
                    source_splits=Counter(training=3, validation=1))


@fake("folder")
def _folder(root: Path) -> Expected:
    for i, (lab, name) in enumerate((("Happy", "AB.1.png"), ("angry", "AB.2.png"), ("angry", "CD.1.jpg"))):
        image(root / lab / name, (10, 10), "RGB", seed=400 + i, fmt="PNG" if name.endswith("png") else "JPEG")
    return Expected(root, 3, Counter(happy=1, anger=2), 2, options={"subject_pattern": r"^(?P<subject>[A-Z]{2})\."})
