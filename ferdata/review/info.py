"""``ferdata info NAME --relabels``: the review decisions in ``labels.parquet``."""

from __future__ import annotations

from typing import Any

from ferdata.manifest import Manifest
from ferdata.manifest.effective import label_decisions
from ferdata.manifest.tables import LABELS_TABLE

MAX_LISTED = 50


def info_sections(manifest: Manifest, relabels: bool = False, **_: Any) -> list[dict[str, Any]]:
    """Every decision, newest first: the image, old and new label, keep or relabel, who, the note."""
    if not relabels:
        return []
    log = label_decisions(manifest).to_pylist()
    if not log:
        return [{"title": "relabel decisions", "columns": ("", ""),
                 "rows": [[LABELS_TABLE, f"none yet; review suspects with 'ferdata review push {manifest.name}' "
                                             f"and 'ferdata review pull {manifest.name}'"]]}]
    paths = dict(zip(*manifest.images(columns=["image_id", "path"]).to_pydict().values()))
    n_changed = sum(1 for r in log if r["old_label"] != r["new_label"])
    shown = list(reversed(log))[:MAX_LISTED]
    rows = [[(r["time"] or "")[:16].replace("T", " "), paths.get(r["image_id"], r["image_id"]), r["old_label"] or "", r["new_label"],
             "relabel" if r["old_label"] != r["new_label"] else "keep", r["annotator"] or "", r["note"] or ""]
            for r in shown]
    more = f"; the newest {len(shown)} listed" if len(shown) < len(log) else ""
    return [{"title": f"relabel decisions ({len(log)}: {n_changed} relabelled, {len(log) - n_changed} kept{more})",
             "rows": rows, "columns": ("time", "path", "old", "new", "decision", "reviewer", "note")}]
