"""What fault safety costs per file: ingest's link/regular-file check against reading the
file, and the atomic writer against a plain ``open(..., "wb")`` for crop-sized files.

    .venv/bin/python benchmarks/faults.py              # 20,000 files of 1.5 kB
    .venv/bin/python benchmarks/faults.py --n 5000 --size 4000

Both sides run in this process on the same files in the same run, side by side, three
times; CPU time (user + system, ``resource.getrusage``) per file is printed, so the load of
a shared machine moves both sides alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
from pathlib import Path

from ferdata import atomic
from ferdata.datasets.base import refuse_file


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=1500, help="bytes per file (a 48x48 grey crop is ~1.8 kB)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = os.urandom(args.size)
    work = Path(tempfile.mkdtemp(prefix="ferdata-faults-bench-"))
    try:
        src = work / "src"
        src.mkdir()
        files = [str(src / f"{i:06d}.png") for i in range(args.n)]
        for f in files:
            Path(f).write_bytes(data)
        boundary = os.path.realpath(src)
        for rep in range(args.repeat):
            t0 = cpu()
            for f in files:
                with open(f, "rb") as fh:
                    fh.read()
            t1 = cpu()
            for f in files:
                refuse_file(f, boundary)
            t2 = cpu()
            plain, safe = work / f"plain{rep}", work / f"atomic{rep}"
            plain.mkdir()
            safe.mkdir()
            t3 = cpu()
            for i in range(args.n):
                with open(plain / f"{i:06d}.png", "wb") as fh:
                    fh.write(data)
            t4 = cpu()
            for i in range(args.n):
                atomic.write_bytes(safe / f"{i:06d}.png", data, fsync=False)
            t5 = cpu()
            us = 1e6 / args.n
            print(f"run {rep + 1}: read {(t1 - t0) * us:.1f} us/file, link+regular-file check {(t2 - t1) * us:.1f} "
                  f"us/file; plain write {(t4 - t3) * us:.1f} us/file, atomic write {(t5 - t4) * us:.1f} us/file "
                  f"({(t5 - t4) / max(t4 - t3, 1e-9):.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
