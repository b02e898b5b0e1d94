"""The ``features`` section of ``ferdata info``: what features.parquet holds and what its
reduction was fitted on (so a reader sees at once whether test images shaped it)."""

from __future__ import annotations

from typing import Any

from ferdata.manifest.tables import FEATURES_TABLE
from ferdata.manifest import Manifest, read_metadata


def info_sections(manifest: Manifest, **options: Any) -> list[dict[str, Any]]:
    path = manifest.table_path(FEATURES_TABLE)
    if not path.exists():
        return []
    meta = read_metadata(path)
    rows: list[list[Any]] = [["input", meta.get("input")], ["described", meta.get("n_described")]]
    rows += [[f"skipped: {why}", n] for why, n in (meta.get("skipped") or {}).items()]
    for name, info in (meta.get("descriptors") or {}).items():
        params = ", ".join(f"{k}={v}" for k, v in info.get("params", {}).items() if v is not None)
        rows.append([f"{name} ({info.get('length')} values)", params])
    reduction = meta.get("reduction")
    if reduction:
        fitted = reduction.get("fitted_on") or {}
        if fitted.get("features_table"):
            where = f"taken from {fitted['features_table']}"
        elif fitted.get("split"):
            where = f"split {fitted['split']}, role {fitted['role']}, fold {fitted['fold']} ({fitted.get('n_images')} images)"
        else:
            where = f"all images ({fitted.get('n_images')})"
        columns = reduction.get("columns") or {}
        rows.append([f"reduction {reduction.get('method')}", where])
        rows.append(["reduced columns", ", ".join([*columns.get("reduced", []), columns.get("fused", "")])])
    else:
        rows.append(["reduction", "none"])
    rows.append(["created", meta.get("created_at")])
    return [{"title": "features", "rows": rows, "columns": ("", "")}]
