"""The split issue's figures on the real samples, and how long splitting takes.

    .venv/bin/python benchmarks/splits.py                       # data from ../shared/data
    .venv/bin/python benchmarks/splits.py --data ~/data --workers 2

Ingests JAFFE, CK+48 and the FER-2013 CSV sample into a temporary folder, then prints:
JAFFE loso folds and shared subjects; CK+48 spi-10 shared subjects, sequences straddling
roles and the largest per-fold class-count gap to the perfect share next to the best any
sequence-whole split can reach; CK+48 ppi near-duplicate pairs across roles; the FER-2013
spi refusal; the byte-identity of two runs; JAFFE's class set 3 counts; and the seconds for
the first split of each manifest (pHash computed) and a second one (pHash cached).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferdata.engines import create_executor  # noqa: E402
from ferdata.errors import FerdataError  # noqa: E402
from ferdata.ingest import ingest  # noqa: E402
from ferdata.splits import make_split  # noqa: E402

DATASETS = {"jaffe": ("jaffe", "jaffe"), "ck48": ("ckplus", "ckplus48"), "fer2013": ("fer2013", "fer2013_csv/fer2013.csv")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    executor = create_executor("local", workers=args.workers)

    with tempfile.TemporaryDirectory() as tmp:
        manifests = {}
        for name, (adapter, folder) in DATASETS.items():
            manifests[name] = ingest(adapter, args.data / folder, name=name, manifests=tmp, executor=executor).manifest

        print("timing (seconds)")
        for name, kw in (("jaffe", {"protocol": "loso"}), ("ck48", {"protocol": "spi", "folds": 10}),
                         ("fer2013", {"protocol": "ppi"})):
            t0 = time.perf_counter()
            make_split(manifests[name], executor=executor, **kw)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            make_split(manifests[name], executor=executor, **kw)
            warm = time.perf_counter() - t0
            n = manifests[name].images().num_rows
            print(f"  {name:8s} {kw['protocol']:5s} {n:5d} images: first {cold:.2f} (pHash computed), "
                  f"again {warm:.2f} (pHash cached)")

        r = make_split(manifests["jaffe"], "loso", executor=executor)
        print(f"JAFFE loso: {r.n_folds} folds, {r.audit['totals']['subjects_shared']} shared subjects")

        m = manifests["ck48"]
        r = make_split(m, "spi", folds=10, executor=executor)
        images = m.images().to_pandas()
        split = r.table.to_pandas().merge(images, on="image_id")
        test = split[split.role == "test"].groupby(["fold", "label"]).size().unstack(fill_value=0)
        n_c = images.label.value_counts()
        s_c = images.groupby("label").sequence_id.nunique()
        gap = (test - n_c / 10).abs().max()
        best = ((n_c / 10) - 3 * (s_c // 10)).combine(3 * (-(-s_c // 10)) - n_c / 10, max)
        print(f"CK+48 spi-10: {r.audit['totals']['subjects_shared']} shared subjects, "
              f"{r.audit['totals']['sequences_shared']} sequences straddling roles")
        print("  per class: largest |test count - n/10| over folds, and the worst case of the best "
              "sequence-whole split (3*floor or 3*ceil of sequences/10)")
        for label in sorted(n_c.index):
            print(f"    {label:9s} n={n_c[label]:3d}  gap {gap[label]:.1f}  optimum bound {best[label]:.1f}")

        r = make_split(m, "ppi", executor=executor)
        a = r.audit
        print(f"CK+48 ppi: {a['totals']['near_duplicates']} near-duplicate pairs across train/test "
              f"({a['totals']['near_duplicates_same_subject']} of the same subject; pHash <= {a['near_threshold']} bits), "
              f"{a['near_duplicate_pairs']} near pairs in all; test subjects seen in train: {a['test_subjects_seen_in_train']:.1%}")

        try:
            make_split(manifests["fer2013"], "spi", executor=executor)
            print("FER-2013 spi: NOT refused")
        except FerdataError as exc:
            print(f"FER-2013 spi refused: {exc}")

        digests = []
        for _ in range(2):
            path = make_split(m, "kfold", folds=5, val_size=0.1, name="determinism", executor=executor).path
            digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
            path.unlink()
        print(f"determinism: two runs {'identical' if digests[0] == digests[1] else 'DIFFERENT'} ({digests[0][:16]})")

        r = make_split(manifests["jaffe"], "kfold", classes="3", executor=executor)
        total = Counter()
        for counts in r.metadata["counts"]["0"].values():
            total.update(counts)
        print(f"JAFFE class set 3: {dict(total)}")


if __name__ == "__main__":
    main()
