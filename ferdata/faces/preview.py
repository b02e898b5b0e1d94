"""A contact sheet of crops, so a user can look before training.

Each tile is one crop with the primary face's box (carried through the recorded
transform, so a rotated crop shows a rotated box) and its eye centres drawn on it; a
green box is a detected face, a red frame a fallback to the whole image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ferdata.errors import FerdataError
from ferdata.faces import geometry
from ferdata.faces.table import read_faces
from ferdata.manifest import Manifest, atomic_write_bytes

TILE = 128
PREVIEW_DIR = "previews"


def contact_sheet(manifest: Manifest, config_hash: str, n: int, path: Path | None = None) -> Path:
    """Write ``n`` crops (evenly spread over the config's images) as one PNG; returns its path."""
    import cv2

    rows = [r for r in read_faces(manifest, config_hash).to_pylist() if r["crop_path"]]
    if not rows:
        raise FerdataError(f"{manifest.name}: config {config_hash} has no crops to preview")
    n = max(1, min(n, len(rows)))
    picked = [rows[int(i * len(rows) / n)] for i in range(n)]
    cols = math.ceil(math.sqrt(n))
    sheet = np.full((math.ceil(n / cols) * TILE, cols * TILE, 3), 32, np.uint8)
    for k, row in enumerate(picked):
        crop = cv2.imread(str(manifest.dir / row["crop_path"]), cv2.IMREAD_COLOR)
        if crop is None:
            continue
        scale = TILE / crop.shape[0]
        tile = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)
        matrix = np.vstack([np.asarray(row["transform"]).reshape(2, 3), [0, 0, 1]])
        to_tile = np.array([[scale, 0, (scale - 1) / 2], [0, scale, (scale - 1) / 2], [0, 0, 1]]) @ matrix
        if row["box"]:
            x0, y0, x1, y1 = row["box"]
            corners = geometry.apply(to_tile, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            cv2.polylines(tile, [np.round(corners).astype(np.int32)], True, (0, 200, 0), 1, cv2.LINE_AA)
        else:
            cv2.rectangle(tile, (0, 0), (TILE - 1, TILE - 1), (0, 0, 220), 2)
        for eye in (row["eye_left"], row["eye_right"]):
            if eye:
                (x, y), = geometry.apply(to_tile, [tuple(eye)])
                cv2.circle(tile, (round(x), round(y)), 2, (0, 220, 255), -1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        sheet[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = tile
    path = path or manifest.dir / PREVIEW_DIR / f"{config_hash}.png"
    ok, buf = cv2.imencode(".png", sheet)
    atomic_write_bytes(path, buf.tobytes())
    return path
