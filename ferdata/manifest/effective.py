"""Effective labels: ``images.parquet`` is never rewritten after ingest; relabel decisions
are appended to ``labels.parquet`` (image_id, old_label, new_label, annotator, time,
project, task_id, source, note), and the latest decision per image wins. A reviewer who
keeps the label is a decision too: a row whose new_label equals old_label.

Everything that uses labels (splits, training, info) reads them through
:func:`images_with_effective_labels`.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ferdata.manifest.schema import LABELS_SCHEMA
from ferdata.manifest.store import Manifest, read_table
from ferdata.manifest.tables import LABELS_TABLE


def label_decisions(manifest: Manifest) -> pa.Table:
    """The append-only relabel log (empty when nobody has relabelled anything)."""
    path = manifest.table_path(LABELS_TABLE)
    if not path.exists():
        return LABELS_SCHEMA.empty_table()
    table = read_table(path)
    for f in LABELS_SCHEMA:  # a log written before a column existed reads with it empty
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table


def effective_label_map(manifest: Manifest) -> dict[str, str]:
    """``{image_id: new_label}`` for images whose label a decision overrides (latest wins)."""
    log = label_decisions(manifest)
    out: dict[str, str] = {}
    for image_id, new in zip(log.column("image_id").to_pylist(), log.column("new_label").to_pylist()):
        out[image_id] = new
    return out


def images_with_effective_labels(manifest: Manifest, columns: list[str] | None = None) -> pa.Table:
    """``images.parquet`` with ``label`` replaced by the effective label and the ingest-time
    label kept as ``label_original``."""
    if columns is not None:
        columns = list(dict.fromkeys(["image_id", "label", *columns]))
    table = manifest.images(columns=columns)
    overrides = effective_label_map(manifest)
    original = table.column("label")
    if overrides:
        ids = table.column("image_id").to_pylist()
        labels = original.to_pylist()
        effective = pa.array([overrides.get(i, lab) for i, lab in zip(ids, labels)], pa.string())
    else:
        effective = original
    idx = table.column_names.index("label")
    table = table.set_column(idx, "label", effective)
    return table.append_column("label_original", original)


def n_relabelled(manifest: Manifest) -> int:
    overrides = effective_label_map(manifest)
    if not overrides:
        return 0
    table = manifest.images(columns=["image_id", "label"])
    mask = pc.is_in(table.column("image_id"), pa.array(list(overrides)))
    changed = [overrides[i] != lab for i, lab in zip(table.filter(mask).column("image_id").to_pylist(),
                                                     table.filter(mask).column("label").to_pylist())]
    return sum(changed)
