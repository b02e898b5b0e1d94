"""AffectNet scale: ingest, preprocess and split on the local engine and on Ray, side by side.

    .venv/bin/python benchmarks/scale.py                          # builds the sets, runs everything
    .venv/bin/python benchmarks/scale.py --folder ~/data/AffectNet-as-folders --steps ingest,split
    .venv/bin/python benchmarks/scale.py --steps preprocess --subset 4000 --repeats 3

By default it builds, in a scratch folder outside the repository (``--work``, default
``/tmp/ferdata-scale``), two image-folder sets by hard links to FER-2013
(``../shared/data/fer2013_full``, 35,887 files): ``x1`` (each file once) and ``x12``
(each file 12 times: 430,644 files, AffectNet's size; ``<label>/cKK_<name>``). Then, every
step in a fresh process whose whole process tree is sampled (wall time, CPU time, peak
resident memory of the driver and of the tree with its pool workers or Ray processes):

* ingest (``folder`` adapter) of x1 and x12 on ``local`` and ``ray``, beside the floor:
  ``sha256sum`` of the same files with 2 processes (page cache warmed first);
  goal: ingest <= 2x the floor at both sizes;
* preprocess (MediaPipe, 48x48 grey) of a ``--subset`` of x1: ``local`` and ``ray``, each
  with 1 and with 2 workers; goal: Ray with 2 workers >= 1.8x the throughput of 1 (the local
  pool's own 2/1 ratio beside it says what the machine allows);
* split ``--protocol kfold`` of x12 and of x1 from scratch (pHash of every image, then the
  leakage audit), on ``local`` and ``ray``; goal: <= 1 min and < 1 GB at 430k.

Ray's runs start a local cluster (its start-up is counted; the seconds it took are shown).
The machine is shared: the load average is printed before and after, and the ratios are
what to compare, since both sides of a ratio ran under the same load minutes apart.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = (ROOT.parent / "shared" / "data" / "fer2013_full").resolve()
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


# ---- the sets --------------------------------------------------------------------------------


def build_set(source: Path, dest: Path, copies: int) -> int:
    """``dest/<label>/cKK_<file>`` hard links to every ``source/<split>/<label>/<file>``."""
    marker = dest / ".complete"
    if marker.exists():
        return int(marker.read_text())
    if dest.exists():
        shutil.rmtree(dest)
    n = 0
    for split in sorted(p for p in source.iterdir() if p.is_dir()):
        for label in sorted(p for p in split.iterdir() if p.is_dir()):
            (dest / label.name).mkdir(parents=True, exist_ok=True)
            for f in sorted(label.iterdir()):
                for k in range(copies):
                    os.link(f, dest / label.name / f"c{k:02d}_{split.name}_{f.name}")
                    n += 1
    marker.write_text(str(n))
    return n


# ---- measuring a process tree ----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        out: list[int] = []
        for t in tasks:
            out += [int(c) for c in (t / "children").read_text().split()]
        return out
    except OSError:
        return []


def _stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; sample its process tree every 0.1 s. Returns wall seconds, CPU seconds
    (the larger of the kernel's count for the child and the descendants it reaped, and the
    sampled sum over the tree, which also holds processes nobody reaps), peak RSS of the
    tree, the driver's own peak RSS (as the child reports it), and the JSON the command
    printed last."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    cpu: dict[int, float] = {}
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.is_set():
            pids, stack = [], [proc.pid]
            while stack:
                p = stack.pop()
                pids.append(p)
                stack += _children(p)
            rss = 0
            for p in pids:
                s = _stat(p)
                if s is not None:
                    cpu[p] = max(cpu.get(p, 0.0), s[0])
                    rss += s[1]
            peak_tree = max(peak_tree, rss)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda f=f, c=c: c.append(f.read()), daemon=True)
               for f, c in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)  # usage: the child and every descendant it reaped
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    out, err = "".join(out_chunks), "".join(err_chunks)
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    # short-lived descendants (sha256sum under xargs) slip between samples but are in the
    # kernel's count once reaped; processes nobody reaps are only in the samples
    reaped = usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    return {"wall": wall, "cpu": max(reaped, sum(cpu.values())), "tree_rss": peak_tree, **result}


# ---- the steps (run in a child process: python scale.py --child STEP ...) ----------------------


def child(args: argparse.Namespace) -> None:
    import resource

    sys.path.insert(0, str(ROOT))
    from ferdata.engines import create_executor

    t0 = time.perf_counter()
    executor = create_executor(args.engine, workers=args.workers)
    info: dict = {}
    if args.engine == "ray":
        executor.connect()
        info["ray_start"] = time.perf_counter() - t0
    t = time.perf_counter()
    if args.child == "ingest":
        from ferdata.ingest import ingest

        res = ingest("folder", args.source, name=args.name, manifests=args.manifests, executor=executor)
        info["rows"] = res.n_rows
    elif args.child == "preprocess":
        from ferdata.faces.preprocess import preprocess
        from ferdata.manifest import Manifest

        m = Manifest(Path(args.manifests) / args.name)
        ids = m.images(columns=["image_id"]).column("image_id").to_pylist()[: args.subset]
        res = preprocess(m, executor=executor, detector="mediapipe", size=48, gray=True, image_ids=ids)
        info.update(images=res.n_processed, faces=res.counts["face_found"])
    elif args.child == "split":
        from ferdata.manifest import Manifest
        from ferdata.splits import make_split

        res = make_split(Manifest(Path(args.manifests) / args.name), "kfold", executor=executor)
        audit = res.metadata["audit"]
        info.update(rows=res.table.num_rows, near_pairs=audit["near_duplicate_pairs"],
                    exact_pairs=audit["duplicate_pairs"])
    info["step"] = time.perf_counter() - t
    info["driver_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if getattr(executor, "last_run", None):
        info["nodes"] = len(executor.last_run["nodes"])
        info["actors"] = executor.last_run["actors"]
    getattr(executor, "close", lambda: None)()
    print(json.dumps(info))


def step_cmd(step: str, engine: str, *, workers: int | None, **kw) -> list[str]:
    cmd = [sys.executable, __file__, "--child", step, "--engine", engine]
    if workers:
        cmd += ["--workers", str(workers)]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    return cmd


# ---- the report ------------------------------------------------------------------------------


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def row(label: str, r: dict, extra: str = "") -> None:
    print(f"  {label:<34} wall {r['wall']:7.1f} s  CPU {r['cpu']:7.1f} s  peak RSS driver "
          f"{r.get('driver_rss', 0) / 2**20:6.0f} MB, tree {r['tree_rss'] / 2**20:6.0f} MB  {extra}", flush=True)


def sha_floor(folder: Path) -> dict:
    cmd = ["bash", "-c", f"find '{folder}' -type f -print0 | xargs -0 -P 2 -n 4000 sha256sum > /dev/null"]
    return run_measured(cmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/ferdata-scale"), help="scratch folder for sets and manifests")
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="FER-2013 image-folder variant")
    ap.add_argument("--folder", type=Path, help="measure this image folder (<label>/<file>) instead of x12")
    ap.add_argument("--copies", type=int, default=12)
    ap.add_argument("--steps", default="ingest,preprocess,split")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--subset", type=int, default=20_000, help="images preprocessed")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of the preprocess runs (ratios of the medians)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--manifests", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    steps = args.steps.split(",")
    engines = args.engines.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; load average at start {load()}", flush=True)
    sets: dict[str, Path] = {}
    if args.folder:
        sets["folder"] = args.folder
    else:
        for name, copies in (("x1", 1), (f"x{args.copies}", args.copies)):
            t = time.perf_counter()
            n = build_set(args.source, args.work / name, copies)
            sets[name] = args.work / name
            print(f"set {name}: {n:,} files (hard links to {args.source}), ready in {time.perf_counter() - t:.1f} s")
    manifests = Path(tempfile.mkdtemp(prefix="manifests-", dir=args.work))
    try:
        small = "folder" if args.folder else "x1"
        needed = set(sets) if "ingest" in steps or "split" in steps else {small}
        if "ingest" in steps:
            print("\ningest (folder adapter)", flush=True)
        for name, folder in sets.items():
            if name not in needed:
                continue
            if "ingest" in steps:
                sha_floor(folder)  # warm the page cache for everyone
                floor = sha_floor(folder)
                row(f"{name}: sha256sum, 2 processes", floor)
            for engine in (engines if "ingest" in steps else []) + ["local"]:
                if (manifests / f"{name}-{engine}").exists():
                    continue  # the manifest later steps use
                r = run_measured(step_cmd("ingest", engine, workers=None, source=folder, name=f"{name}-{engine}",
                                          manifests=manifests))
                if "ingest" in steps:
                    extra = (f"{r['rows']:,} rows; {r['wall'] / floor['wall']:.2f}x the floor, the ingest call "
                             f"alone {r['step'] / floor['wall']:.2f}x")
                    if "ray_start" in r:
                        extra += f" (Ray start {r['ray_start']:.1f} s not in it)"
                    row(f"{name}: ingest {engine}", r, extra)
                if engine != "local":
                    shutil.rmtree(manifests / f"{name}-{engine}")
        if "preprocess" in steps:
            print(f"\npreprocess (mediapipe, 48x48 grey) of {args.subset:,} images of {small}", flush=True)
            rate: dict[tuple[str, int], list[float]] = {}
            runs = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]
            for engine, workers in [r for _ in range(args.repeats) for r in runs]:  # rounds: the load drifts
                if engine not in engines:
                    continue
                mdir = manifests / f"{small}-local"
                for leftover in ("faces.parquet", ".faces-journal", "crops"):
                    p = mdir / leftover
                    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                r = run_measured(step_cmd("preprocess", engine, workers=workers, name=f"{small}-local",
                                          manifests=manifests, subset=args.subset))
                rate.setdefault((engine, workers), []).append(r["images"] / r["step"])
                row(f"{engine}, {workers} worker(s)", r, f"{rate[(engine, workers)][-1]:.0f} images/s in the step "
                    f"({r['step']:.1f} s), CPU {1000 * r['cpu'] / r['images']:.1f} ms/image")
            for engine in ("local", "ray"):
                if (engine, 1) in rate and (engine, 2) in rate:
                    one, two = rate[(engine, 1)], rate[(engine, 2)]
                    each = ", ".join(f"{b / a:.2f}" for a, b in zip(one, two))
                    print(f"  {engine} throughput, 2 workers / 1 worker: {median(two) / median(one):.2f}x of the "
                          f"medians ({len(one)} round(s): {each})"
                          + (" (goal >= 1.8)" if engine == "ray" else " (what this machine allows)"))
        if "split" in steps:
            print("\nsplit --protocol kfold, from scratch (pHash of every image, then the audit)", flush=True)
            for name in reversed(list(sets)):
                for engine in engines:
                    (manifests / f"{name}-local" / "phash.parquet").unlink(missing_ok=True)
                    r = run_measured(step_cmd("split", engine, workers=None, name=f"{name}-local",
                                              manifests=manifests))
                    row(f"{name}: split {engine}", r, f"{r['rows']:,} rows, {r['near_pairs']:,} near pairs; "
                        f"step {r['step']:.1f} s")
    finally:
        shutil.rmtree(manifests, ignore_errors=True)
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
