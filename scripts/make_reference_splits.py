"""Regenerate the reference fold lists shipped in ferdata/splits/references/ from the real data.

    .venv/bin/python scripts/make_reference_splits.py --data ../shared/data

CK+48 spi-10, CK+ last-frame spi-10 and JAFFE loso are made with ``make_split`` on the
complete datasets and exported. SFEW by movie lists the ANU subset's 675 frames named in
``PCA/SFEW.xlsx``: the split is made on a table built from those names (image ids, labels,
movies and subjects exactly as ``ferdata ingest sfew`` derives them from a complete copy), so
it is the split ``make_split`` gives on the complete set; content hashes are filled in for the
frames present in the folder. Run it only to replace a list on purpose: a shipped list is a
published fold assignment, and recipes that cite it must keep their folds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

OUT = Path(__file__).resolve().parent.parent / "ferdata" / "splits" / "references"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("FERDATA_TEST_DATA", "../shared/data"))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)

    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest
    from ferdata.splits import make_split
    from ferdata.splits.reference import export_reference

    with tempfile.TemporaryDirectory() as tmp:
        jobs = [
            ("ckplus48-spi-10", "ckplus", data / "ckplus48", {}, "spi", {"folds": 10}),
            ("ckplus-last-spi-10", "ckplus", data / "ckplus48", {"frames": "last"}, "spi", {"folds": 10}),
            ("jaffe-loso", "jaffe", data / "jaffe", {}, "loso", {}),
        ]
        for ref_name, adapter, source, opts, protocol, popts in jobs:
            m = ingest(adapter, source, name=ref_name, manifests=tmp, executor=InlineExecutor(), **opts).manifest
            result = make_split(m, protocol, name=ref_name, executor=InlineExecutor(), **popts)
            path = export_reference(m, result.name, out / f"{ref_name}.csv")
            print(f"{path}: {result.metadata['n_images']} images, {result.n_folds} folds, {path.stat().st_size} bytes")
    path = sfew_by_movie(data / "sfew_anu", out / "sfew-anu-movie-5.csv")
    print(f"{path}: {path.stat().st_size} bytes")
    return 0


def sfew_by_movie(source: Path, path: Path, folds: int = 5) -> Path:
    """SFEW (ANU, 675 frames of SFEW.xlsx) split over movies, 5 folds, as make_split would."""
    from ferdata.datasets.sfew import parse_name, read_xlsx
    from ferdata.labels import SFEW_NAMES, SFEW_XLSX_CODES
    from ferdata.imageio import sha256
    from ferdata.ingest import image_id
    from ferdata.splits.make import assign_roles, build_frame
    from ferdata.splits import create_protocol
    from ferdata.splits.reference import ROLE_LETTERS, format_reference

    folder_of = {label: folder for folder, label in SFEW_NAMES.items()}
    rows = []
    for stem, codes in read_xlsx(source / "PCA" / "SFEW.xlsx").items():
        for code in codes:
            label = SFEW_XLSX_CODES[code]
            rel = f"Images/{folder_of[label]}/{stem}.png"
            movie, clip, char, regular = parse_name(stem)
            file = source / rel
            rows.append({"image_id": image_id("sfew", rel), "path": rel, "label": label, "readable": True,
                         "content_hash": sha256(file.read_bytes()) if file.is_file() else None,
                         "subject_id": f"{movie}_{char}" if regular else None, "movie": movie,
                         "source_split": None, "sequence_id": None})
    table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
    proto = create_protocol("spi", folds=folds, test_size=None, val_size=None, seed=0, grouped=True)
    frame, cset, group_column, _ = build_frame("sfew", "sfew", table, proto, None, "movie")
    fold_roles = assign_roles(frame, proto)
    by_id = {r["image_id"]: r for r in rows}
    out = []
    for k, image in enumerate(frame["image_id"]):
        letters = "".join(ROLE_LETTERS.get(fold[k], ".") for fold in fold_roles)
        r = by_id[image]
        out.append((r["path"], r["content_hash"] or "", r["label"], r["movie"] or "", letters))
    from ferdata.splits.make import _split_table, table_hash

    meta = {"name": path.stem, "dataset": "sfew", "protocol": "spi",
            "options": {"folds": folds, "seed": 0, "val_size": None, "test_size": None, "classes": None,
                        "group_by": "movie", "near_threshold": 4},
            "seed": 0, "class_set": cset.to_dict(), "group_column": group_column, "n_folds": len(fold_roles),
            "n_images": len(frame), "content_hash": table_hash(_split_table(frame, fold_roles))}
    path.write_text(format_reference(meta, out), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
