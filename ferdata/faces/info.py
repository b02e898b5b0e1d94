"""``ferdata info`` sections about faces: per preprocessing config, how often a face was
found, how many faces an image has, and how often the fallback was used."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ferdata.faces.preprocess import face_rate_warning
from ferdata.faces.table import faces_path, read_faces
from ferdata.manifest.schema import STAGES
from ferdata.manifest import Manifest, read_metadata

MAX_CONFIGS = 4


def info_sections(manifest: Manifest, **options: Any) -> list[dict[str, Any]]:
    path = faces_path(manifest)
    if not path.exists():
        return []
    meta = read_metadata(path)
    table = read_faces(manifest)
    configs: dict[str, Any] = meta.get("configs", {})
    latest = meta.get("latest_config")
    hashes = sorted(set(table.column("config_hash").to_pylist()), key=lambda h: (h != latest, h))
    sections = []
    for h in hashes[:MAX_CONFIGS]:
        sections.append(_section(h, configs.get(h) or {}, read_faces(manifest, h).to_pylist(), h == latest))
    if len(hashes) > MAX_CONFIGS:
        sections.append({"title": "faces: more configs", "columns": ("", ""),
                         "rows": [["configs not shown", len(hashes) - MAX_CONFIGS]]})
    return sections


def _section(config_hash: str, cfg: dict[str, Any], rows: list[dict[str, Any]], latest: bool) -> dict[str, Any]:
    ok = [r for r in rows if r["error"] is None]
    found = sum(r["face_found"] for r in ok)
    per_image = Counter(min(r["n_faces"] or 0, 2) for r in ok)
    align = cfg.get("align", "?")
    what = f"{cfg.get('detector', '?')}, align {align}, {cfg.get('size', '?')}px" + (", CLAHE" if cfg.get("clahe") else "") \
        + (", grey" if cfg.get("gray") else "")
    out = [
        ["config", config_hash + (" (latest)" if latest else "")],
        ["images", len(rows)],
        ["detection rate", f"{100.0 * found / len(ok):.1f}% ({found}/{len(ok)})" if ok else "n/a"],
        ["faces per image (mean)", round(sum(r["n_faces"] or 0 for r in ok) / len(ok), 3) if ok else 0],
        ["images with 0 / 1 / 2+ faces", f"{per_image[0]} / {per_image[1]} / {per_image[2]}"],
        ["fallback: whole image", sum(r["fallback"] == "whole" for r in rows)],
        ["fallback: skipped", sum(r["fallback"] == "skip" for r in rows)],
        ["flat frames (all black / constant)", sum(bool(r["flat"]) for r in rows)],
        ["errors", len(rows) - len(ok)],
    ]
    if align in ("rotate", "spatial"):
        out.append(["not rotated (no eye points)", sum(r["align"] == "none" for r in ok)])
    if cfg.get("pad") not in (None, "never"):
        how = "every image" if cfg["pad"] == "always" else "when nothing was found as is"
        out.append([f"searched padded ({how})", sum(bool(r["padded"]) for r in ok)])
    warning = face_rate_warning(cfg, found, len(ok))
    if warning:
        out.append(["warning", warning])
    for stage in STAGES:
        vals = [r[stage] for r in ok if r[stage] is not None]
        if vals:
            out.append([f"{stage.replace('_ms', '')} ms/image (mean)", round(sum(vals) / len(vals), 2)])
    return {"title": f"faces ({what})", "columns": ("", ""), "rows": out}
