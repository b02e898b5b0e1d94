"""Where the LPQ/PHOG oracle lives, and how its files are read.

The oracle (outputs of the original MATLAB code under Octave) is found at
``$FERDATA_ORACLES/lpq_phog`` (or ``$FERDATA_ORACLES`` itself) or
``<repo>/../shared/oracles/lpq_phog``; tests that need it skip cleanly without it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def oracle_root() -> Path | None:
    env = os.environ.get("FERDATA_ORACLES")
    candidates = []
    if env:
        candidates += [Path(env) / "lpq_phog", Path(env)]
    candidates.append(ROOT.parent / "shared" / "oracles" / "lpq_phog")
    for c in candidates:
        if (c / "lpq" / "lpq_stats.csv").is_file() and (c / "phog" / "phog.csv").is_file():
            return c
    return None


ORACLE = oracle_root()


def oracle_rows(relative: str) -> list[dict[str, str]]:
    """Rows of an oracle CSV, or one placeholder row that makes the test skip."""
    if ORACLE is None:
        return [{}]
    with open(ORACLE / relative, newline="") as fh:
        return list(csv.DictReader(fh))


def row_id(row: dict[str, str]) -> str:
    if not row:
        return "no-oracle"
    parts = [row["image"]]
    for key in ("winSize", "decorr", "angle", "L"):
        if key in row:
            parts.append(f"{key}{row[key]}")
    return "-".join(parts)


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


