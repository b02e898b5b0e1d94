"""Faults a long-running tool meets, each driven through the CLI as a user meets it: a full
disk, no write permission, damaged or missing state, temporary files of killed runs,
interrupted fold runs, two writers at once, links out of the dataset root, Ctrl-C.

Every failure must be one line on stderr, a non-zero exit and no traceback, with the
tables written before byte-identical and no temporary file left. The disk-full tests mount
a small tmpfs and the permission tests switch to user ``nobody`` with ``setpriv``: both
need root and skip cleanly without it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ferdata.atomic import leftover_temps
from ferdata.cli.app import app
from tests.training.conftest import make_images

PATTERN = r"^(?P<subject>S\d+)_"
NOBODY = 65534
runner = CliRunner()


# ---- helpers ---------------------------------------------------------------------------------


def cli(*args: object, user: int | None = None, env: dict | None = None, timeout: float = 900,
        **popen: object) -> subprocess.CompletedProcess:
    """``ferdata ARGS`` in a fresh process (as ``user`` when given)."""
    cmd = [sys.executable, "-m", "ferdata", *map(str, args)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *cmd]
    full_env = {**os.environ, "COLUMNS": "250", "FERDATA_NO_PLUGINS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, **popen)


def invoke(*args: object):  # noqa: ANN201 - click's Result
    """``ferdata ARGS`` in this process (fast; for faults that need no other user or signal)."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def one_line_error(code: int, out: str, *fragments: str) -> str:
    """The failure is one ``error:`` line, a non-zero exit and no traceback."""
    assert code != 0, out
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def proc_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert "Traceback" not in proc.stdout, proc.stdout
    return one_line_error(proc.returncode, proc.stderr, *fragments)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but lock files and the disk filler, by content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in (".lock", "filler")}


@dataclass
class World:
    """A tiny manifest (12 images, 3 subjects) with a split, crops and a one-epoch run."""

    base: Path
    src: Path
    manifests: Path
    runs: Path
    run: Path

    @property
    def mdir(self) -> Path:
        return self.manifests / "tiny"


#: A plain progress line on a log (stderr that is not a terminal): "decoding images: 1/12 (8%), ..."
PROGRESS_LINE = re.compile(r"^[^:]+: \d+/\d+ (\(|done in )")


def build_world(base: Path, *, train: bool = True, src: Path | None = None) -> World:
    from ferdata.engines import InlineExecutor
    from ferdata.faces.preprocess import preprocess
    from ferdata.ingest import ingest
    from ferdata.splits import make_split

    src = make_images(src or base / "src", per_class=4, subjects=3)
    manifests, runs = base / "manifests", base / "runs"
    m = ingest("folder", src, name="tiny", manifests=manifests, executor=InlineExecutor(),
               subject_pattern=PATTERN).manifest
    make_split(m, "spi", folds=3, executor=InlineExecutor())
    preprocess(m, detector="haar", size=32, gray=True, executor=InlineExecutor())
    run = None
    if train:
        from ferdata.training import train as train_model

        run = train_model("small-cnn", m, "spi-3", fold=0, runs=runs, hparams={"epochs": 1, "batch_size": 4},
                          device="cpu").run_dir
    return World(base, src, manifests, runs, run)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _root_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (to mount a tmpfs or switch to another user)")


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs at ``where`` (skips the test where mounting is not allowed)."""
    _root_or_skip()
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Write ``folder/filler`` until the file system is full (less ``leave`` bytes)."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb", buffering=0) as fh:
        try:
            fh.write(b"\0" * max(0, free - leave))
            while not leave:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


# ---- 1. a full disk --------------------------------------------------------------------------


def test_a_full_disk_is_one_line_and_changes_nothing(tmp_path, umask_022):
    with tmpfs(tmp_path / "fs", "16m") as fs:
        w = build_world(fs, src=tmp_path / "src")  # the source need not be on the full disk
        src = w.src
        before = snapshot(fs)
        fill(fs)
        m, r = ("--manifests", w.manifests), ("--runs", w.runs)
        for args in (
            ("ingest", "folder", src, "--name", "tiny", "--subject-pattern", PATTERN, *m, "-j", "1"),
            ("split", "tiny", "--protocol", "spi", "--folds", "3", "--seed", "1", *m, "-j", "1"),
            ("preprocess", "tiny", "--detector", "haar", "--size", "24", "--gray", *m, "-j", "1"),
            ("features", "tiny", *m, "-j", "1"),
            ("train", "small-cnn", "--manifest", "tiny", "--split", "spi-3", "--epochs", "1", "--device", "cpu",
             *m, *r),
        ):
            res = invoke(*args)
            line = one_line_error(res.exit_code, res.output, "no space left on ", "(needs ~")
            assert str(fs) in line, line
        (fs / "filler").unlink()
        assert snapshot(fs) == before
        assert leftover_temps(fs) == []


def test_a_disk_that_fills_up_during_preprocess_keeps_finished_work(tmp_path, monkeypatch):
    from ferdata import atomic

    with tmpfs(tmp_path / "fs", "16m") as fs:
        w = build_world(fs, train=False, src=tmp_path / "src")
        faces_before = (w.mdir / "faces.parquet").read_bytes()
        fill(fs, leave=3 * 4096)  # room for a few crops, not for twelve
        monkeypatch.setattr(atomic, "ensure_writable", lambda *a, **k: None)  # let it start, so it fails mid-way
        res = invoke("preprocess", "tiny", "--detector", "haar", "--size", "40", "--gray", "--manifests",
                     w.manifests, "-j", "2")
        one_line_error(res.exit_code, res.output, "no space left on ", "crops/", "(needs ~")
        assert leftover_temps(fs) == []
        faces = pq.read_table(w.mdir / "faces.parquet")  # still whole (rewritten only if the merge fit)
        assert faces.num_rows >= pq.read_table(pa_buffer(faces_before)).num_rows


def pa_buffer(data: bytes):  # noqa: ANN201
    import pyarrow as pa

    return pa.BufferReader(data)


# ---- 2. no write permission -------------------------------------------------------------------


@pytest.fixture
def shared_world(umask_022) -> Iterator[World]:
    """A world under /tmp that user ``nobody`` can read but not write (pytest's own temporary
    folders are private to root)."""
    _root_or_skip()
    base = Path(tempfile.mkdtemp(prefix="ferdata-faults-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield build_world(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_no_write_permission_is_one_line_before_any_work(shared_world):
    w = shared_world
    home = w.base / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    env = {"HOME": str(home), "MPLCONFIGDIR": str(home / "mpl"), "FERDATA_MANIFESTS": str(w.manifests),
           "FERDATA_RUNS": str(w.runs)}
    if cli("--version", user=NOBODY, env=env).returncode != 0:
        pytest.skip("cannot run ferdata as user nobody here")
    before = {**snapshot(w.manifests), **snapshot(w.runs)}
    readable = cli("info", "tiny", "--split", "spi-3", user=NOBODY, env=env)
    assert readable.returncode == 0, readable.stderr  # tables are 0644 under umask 022: others can read
    for args, where in (
        (("ingest", "folder", w.src, "--name", "tiny", "--subject-pattern", PATTERN, "-j", "1"), w.mdir),
        (("split", "tiny", "--protocol", "spi", "--folds", "3", "--seed", "1", "-j", "1"), w.mdir),
        (("preprocess", "tiny", "--detector", "haar", "--size", "24", "-j", "1"), w.mdir),
        (("features", "tiny", "-j", "1"), w.mdir),
        (("train", "small-cnn", "--manifest", "tiny", "--split", "spi-3", "--epochs", "1", "--device", "cpu"), w.runs),
        (("flag", "tiny", "--model", "small-cnn", "--split", "spi-3", "--epochs", "1", "--device", "cpu"), w.mdir),
        (("report", "tiny"), w.mdir),
    ):
        proc = cli(*args, user=NOBODY, env=env)
        proc_error(proc, f"cannot write {where}", "permission denied (run as a user who can, or "
                   "--manifests/--runs elsewhere)")
    (w.mdir / "images.parquet").chmod(0o600)  # a table another user made private
    proc_error(cli("info", "tiny", user=NOBODY, env=env), f"cannot read {w.mdir / 'images.parquet'}: permission denied")
    (w.mdir / "images.parquet").chmod(0o644)
    assert {**snapshot(w.manifests), **snapshot(w.runs)} == before
    assert leftover_temps(w.base) == []


def test_written_files_get_the_umask_mode(tmp_path, umask_022):
    w = build_world(tmp_path)
    for target in ("tiny", w.run):
        res = invoke("report", target, "--manifests", w.manifests)
        assert res.exit_code == 0, res.output
    kinds = {".parquet": 0, ".png": 0, ".pt": 0, ".json": 0, ".html": 0}
    for path in [*w.manifests.rglob("*"), *w.runs.rglob("*")]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o644, path
            if path.suffix in kinds:
                kinds[path.suffix] += 1
    assert all(kinds.values()), kinds  # tables, crops and report PNGs, checkpoints, metrics, report.html


# ---- 3. damaged or missing state --------------------------------------------------------------


def test_damaged_and_missing_inputs_are_named_with_their_fix(tmp_path):
    w = build_world(tmp_path)
    m = ("--manifests", w.manifests)
    images = w.mdir / "images.parquet"
    good = images.read_bytes()
    images.write_bytes(good[: len(good) // 2])
    for args in (("preprocess", "tiny", "--detector", "haar", *m), ("split", "tiny", "--protocol", "spi", *m),
                 ("info", "tiny", *m)):
        res = invoke(*args)
        one_line_error(res.exit_code, res.output, f"{images} is damaged: ",
                       "; re-run 'ferdata ingest DATASET SOURCE --name tiny'")
    images.write_bytes(good)

    # a crop file deleted: training names it and the command that makes it again ...
    crop = next((w.mdir / "crops").rglob("*.png"))
    crop.unlink()
    train_args = ("train", "small-cnn", "--manifest", "tiny", "--split", "spi-3", "--epochs", "1", "--device", "cpu",
                  "--runs", w.runs, *m)
    line = one_line_error((res := invoke(*train_args)).exit_code, res.output, "1 of ", "face crops of tiny are gone",
                          str(crop))
    command = line.split("make them again with '")[1].rstrip("'")
    assert command == "ferdata preprocess tiny --detector haar --align none --size 32 --gray"
    # ... and that command makes exactly the missing crop again
    again = invoke(*command.split()[1:], *m, "-j", "1")
    assert again.exit_code == 0 and "crops made again (their files were gone)" in again.output, again.output
    assert crop.is_file() and invoke(*train_args).exit_code == 0

    # the whole source folder gone: one line naming it, not an error row per image
    shutil.move(str(w.src), tmp_path / "moved")
    res = invoke("preprocess", "tiny", "--detector", "haar", "--size", "24", *m)
    one_line_error(res.exit_code, res.output, f"{w.src}, where the images of tiny were ingested from, no longer exists",
                   "'ferdata ingest folder NEW_PATH --name tiny'")


# ---- 4. temporary files of killed runs ----------------------------------------------------------


def test_temp_files_of_dead_processes_are_swept_by_the_next_write(tmp_path):
    from ferdata.atomic import _HOST

    w = build_world(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    crops = next((w.mdir / "crops").iterdir())
    planted = [w.mdir / f".images.parquet.{_HOST}-{pid}.0badc0de.tmp", w.mdir / "splits" / f".spi-3.parquet.{pid}.tmp",
               crops / f".x.png.{pid}.tmp", w.run / f".last.pt.{_HOST}-{pid}.0badc0de.tmp"]
    live = w.mdir / f".features.parquet.{_HOST}-{os.getpid()}.0badc0de.tmp"
    for p in (*planted, live):
        p.write_bytes(b"half a table")
    next(crops.glob("*.png")).unlink()  # so preprocess has a crop to write
    m = ("--manifests", w.manifests)
    for args in (("split", "tiny", "--protocol", "spi", "--folds", "3", *m),
                 ("preprocess", "tiny", "--detector", "haar", "--size", "32", "--gray", *m, "-j", "1"),
                 ("ingest", "folder", w.src, "--name", "tiny", "--subject-pattern", PATTERN, *m, "-j", "1"),
                 ("train", "--resume", w.run, "--epochs", "2", "--device", "cpu", *m)):
        proc = cli(*args)  # a new process, as a user's next command is
        assert proc.returncode == 0, (args, proc.stderr)
    assert [p for p in planted if p.exists()] == []
    assert live.exists()  # a live writer's file is never touched


# ---- 5. interrupted fold runs -------------------------------------------------------------------


def _train_all_args(w: World, runs: Path) -> list[object]:
    return ["train", "small-cnn", "--manifest", "tiny", "--split", "spi-3", "--fold", "all", "--epochs", "3",
            "--batch-size", "4", "--device", "cpu", "--seed", "0", "--runs", runs, "--manifests", w.manifests]


def test_a_killed_fold_all_run_resumes_to_the_same_predictions(tmp_path):
    import pyarrow.compute as pc

    w = build_world(tmp_path, train=False)
    runs = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ferdata", *map(str, _train_all_args(w, runs))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FERDATA_NO_PLUGINS": "1"})
    deadline = time.monotonic() + 600
    while not list(runs.glob("*/fold-0/predictions.parquet")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()  # after fold 0, before the run ends
    proc.wait()
    (parent,) = runs.iterdir()
    if (parent / "metrics.json").exists():
        pytest.skip("the run finished before it could be killed")
    assert (parent / "config.json").is_file()  # written first: the run can be resumed

    # flag refuses the partial run, or flags what it has with --partial
    m = ("--manifests", w.manifests)
    res = invoke("flag", "tiny", "--from-runs", parent, *m)
    one_line_error(res.exit_code, res.output, "the runs cover 1 of 3 folds of split 'spi-3' of tiny",
                   f"finish them with 'ferdata train --resume {parent}'", "or pass --partial")
    part = invoke("flag", "tiny", "--from-runs", parent, "--partial", *m)
    assert part.exit_code == 0 and "images left unscored (--partial)" in part.output, part.output
    assert "warning: the runs cover 1 of 3 folds" in part.output

    resumed = cli("train", "--resume", parent, "--device", "cpu", *m)  # fresh processes, like the killed one
    assert resumed.returncode == 0, resumed.stderr
    whole = cli(*_train_all_args(w, tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    (reference,) = (tmp_path / "whole").iterdir()

    def table(run: Path):  # noqa: ANN202
        t = pq.read_table(run / "predictions.parquet")
        return t.take(pc.sort_indices(t, [("fold", "ascending"), ("image_id", "ascending")]))

    assert table(parent).equals(table(reference))
    assert invoke("flag", "tiny", "--from-runs", parent, *m).exit_code == 0


def test_an_interrupted_flag_model_resumes_its_run(tmp_path):
    w = build_world(tmp_path, train=False)
    runs = tmp_path / "runs"
    args = ["flag", "tiny", "--model", "small-cnn", "--split", "spi-3", "--epochs", "3", "--device", "cpu",
            "--runs", runs, "--manifests", w.manifests]
    proc = subprocess.Popen([sys.executable, "-m", "ferdata", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "FERDATA_NO_PLUGINS": "1", "COLUMNS": "250"})
    deadline = time.monotonic() + 600
    while not list(runs.glob("*/fold-0/metrics.json")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("flag finished before it could be interrupted")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    (run,) = runs.iterdir()
    if (run / "metrics.json").exists():
        pytest.skip("flag finished before the interrupt")
    assert proc.returncode == 130 and "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if not PROGRESS_LINE.match(line)]  # plain progress lines
    assert lines == [f"interrupted; 1 of 3 folds finished and kept in {run}; run the same "
                     "'ferdata flag' again to continue"]
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "resumed interrupted run" in again.output and [p.name for p in runs.iterdir()] == [run.name]
    assert (w.mdir / "suspects.parquet").is_file()


def test_history_rows_are_written_once_per_epoch(tmp_path):
    from ferdata.training.runs import append_history, read_history

    for epoch in (1, 2, 3):
        append_history(tmp_path, {"epoch": epoch, "fold": 0, "train_loss": 1.0 / epoch})
    # killed between the history row of epoch 3 and its checkpoint: the resumed run repeats epoch 3
    append_history(tmp_path, {"epoch": 3, "fold": 0, "train_loss": 0.25})
    assert [(r["epoch"], r["train_loss"]) for r in read_history(tmp_path)] == [(1, 1.0), (2, 0.5), (3, 0.25)]


# ---- 6. two writers -----------------------------------------------------------------------------


def test_two_split_writers_and_a_reingest_race_cleanly_and_the_stale_split_is_reported(tmp_path):
    from ferdata.manifest import Manifest
    from ferdata.splits.make import table_hash

    w = build_world(tmp_path, train=False)
    # the same source with fewer files (a re-ingest of another source would need --replace)
    held = [(extra, tmp_path / f"held-{i}.png") for i, extra in enumerate(sorted(w.src.rglob("*_3.png")))]
    for extra, aside in held:
        shutil.move(extra, aside)
    smaller = w.src
    m = ("--manifests", w.manifests)
    env = {"FERDATA_MANIFESTS": str(w.manifests)}
    procs = [subprocess.Popen([sys.executable, "-m", "ferdata", *map(str, args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
             for args in (("split", "tiny", "--protocol", "spi", "--folds", "3", "--seed", "1", "--name", "race", *m),
                          ("split", "tiny", "--protocol", "spi", "--folds", "3", "--seed", "2", "--name", "race", *m),
                          ("ingest", "folder", smaller, "--name", "tiny", "--subject-pattern", PATTERN, *m, "-j", "1"))]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    path = w.mdir / "splits" / "race.parquet"
    table = pq.read_table(path)
    meta = Manifest(w.mdir).metadata("splits/race.parquet")
    assert meta["seed"] in (1, 2) and meta["content_hash"] == table_hash(table)  # one writer's whole output
    now = set(Manifest(w.mdir).images(columns=["image_id"]).column("image_id").to_pylist())
    info = invoke("info", "tiny", "--split", "race", *m)
    assert info.exit_code == 0, info.output
    stale = "warning: split 'race' of tiny was made before images.parquet last changed" in info.output
    assert stale == (meta["manifest_hash"] != Manifest(w.mdir).images_fingerprint())
    if not set(table.column("image_id").to_pylist()) <= now:
        assert stale  # a split over images the manifest no longer has is never silent

    # the stale case for certain: split, then re-ingest the full source; every reader says so
    for extra, aside in held:
        shutil.move(aside, extra)
    assert invoke("split", "tiny", "--protocol", "spi", "--folds", "3", *m).exit_code == 0
    assert invoke("ingest", "folder", w.src, "--name", "tiny", "--subject-pattern", PATTERN, *m, "-j", "1").exit_code == 0
    for args in (("info", "tiny", "--split", "spi-3", *m),
                 ("train", "small-cnn", "--manifest", "tiny", "--split", "spi-3", "--epochs", "1", "--device", "cpu",
                  "--runs", tmp_path / "runs", *m)):
        res = invoke(*args)
        assert res.exit_code == 0, res.output
        warned = [line for line in res.output.splitlines() if line.startswith("warning: split 'spi-3'")]
        assert len(warned) == 1 and "make it again with 'ferdata split tiny --protocol spi --folds 3" in warned[0]


def _holder(directory: Path, command: str = "ferdata ingest folder SRC --name tiny") -> subprocess.Popen:
    """Another process holding the manifest's write lock until it is killed."""
    hold = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom ferdata.manifest.lock import manifest_lock\n"
        "with manifest_lock(sys.argv[1], command=sys.argv[2]):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"), str(directory), command],
        stdout=subprocess.PIPE, text=True)
    assert hold.stdout.readline().strip() == "held"
    return hold


def _wait_for_line(proc: subprocess.Popen, prefix: str) -> list[str]:
    """Read ``proc``'s stderr up to the line starting with ``prefix``; the lines read."""
    lines = []
    while True:
        line = proc.stderr.readline()
        assert line, f"no line starting {prefix!r} in {lines}"
        lines.append(line)
        if line.startswith(prefix):
            return lines


def test_a_second_writer_waits_or_fails_with_no_wait(tmp_path):
    w = build_world(tmp_path, train=False)
    hold = _holder(w.mdir)
    try:
        busy = cli("split", "tiny", "--protocol", "spi", "--folds", "3", "--no-wait", "--manifests", w.manifests)
        proc_error(busy, "is being written by 'ferdata ingest folder SRC --name tiny' (pid ")
        waiting = subprocess.Popen([sys.executable, "-m", "ferdata", "split", "tiny", "--protocol", "spi", "--folds",
                                    "3", "--manifests", str(w.manifests)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "250"})
        _wait_for_line(waiting, "waiting for 'ferdata ingest folder SRC --name tiny' (pid ")
    finally:
        hold.kill()
        hold.wait()
    out, err = waiting.stdout.read(), waiting.stderr.read()
    waiting.wait(timeout=600)
    assert waiting.returncode == 0 and "wrote " in out, err


# ---- 7. links out of the dataset root -------------------------------------------------------------


def test_links_out_of_the_dataset_root_are_refused_unless_followed(tmp_path, manifests_dir):
    from tests.datasets.fakes import image, write_fake

    exp = write_fake("jaffe", tmp_path / "jaffe")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (exp.source / "KA.AN1.99.tiff").symlink_to(secret)
    outside = tmp_path / "outside"
    image(outside / "KL.HA1.7.tiff", seed=9)
    folder_src = tmp_path / "folder"
    image(folder_src / "happy" / "AB.1.png", seed=1)
    (folder_src / "happy" / "more").symlink_to(outside, target_is_directory=True)
    (folder_src / "happy" / "AB.2.png").symlink_to(outside / "KL.HA1.7.tiff")
    os.mkfifo(folder_src / "happy" / "AB.3.png")  # reading a pipe would block ingest forever

    res = invoke("ingest", "jaffe", exp.source, "--name", "jf", "-j", "1")
    assert res.exit_code == 0, res.output
    rows = {r["path"]: r for r in pq.read_table(manifests_dir / "jf" / "images.parquet").to_pylist()}
    row = rows["KA.AN1.99.tiff"]
    assert not row["readable"] and row["bytes"] is None and row["content_hash"] is None
    assert row["error"] == f"outside the dataset root: links to {secret}; not read (pass --follow-links to read it)"

    res = invoke("ingest", "folder", folder_src, "--name", "fo", "-j", "1")
    assert res.exit_code == 0, res.output
    rows = {r["path"]: r for r in pq.read_table(manifests_dir / "fo" / "images.parquet").to_pylist()}
    assert rows["happy/AB.1.png"]["readable"]
    for path in ("happy/AB.2.png", "happy/more"):  # a file link and a folder link, one error row each
        assert not rows[path]["readable"] and rows[path]["error"].startswith("outside the dataset root: links to ")
    assert not any(p.startswith("happy/more/") for p in rows)
    assert rows["happy/AB.3.png"]["error"] == "not a regular file (a pipe, device or socket); not read"

    only_links = tmp_path / "only-links"
    only_links.mkdir()
    (only_links / "happy").symlink_to(outside, target_is_directory=True)
    res = invoke("ingest", "folder", only_links, "--name", "ol", "-j", "1")
    one_line_error(res.exit_code, res.output, "no image", "1 folder(s) link outside", "pass --follow-links")

    res = invoke("ingest", "folder", folder_src, "--name", "fo", "--follow-links", "-j", "1")
    assert res.exit_code == 0, res.output
    rows = {r["path"]: r for r in pq.read_table(manifests_dir / "fo" / "images.parquet").to_pylist()}
    assert rows["happy/AB.2.png"]["readable"] and rows["happy/more/KL.HA1.7.tiff"]["readable"]


# ---- 8. Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    src = make_images(tmp_path / "src", per_class=400, subjects=20, size=24)
    manifests = tmp_path / "manifests"
    conclusive = 0
    for trial, delay in enumerate((0.0, 0.3, 0.8)):
        name = f"big{trial}"
        proc = subprocess.Popen([sys.executable, "-m", "ferdata", "ingest", "folder", str(src), "--name", name,
                                 "--manifests", str(manifests), "-j", "2"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "FERDATA_NO_PLUGINS": "1", "COLUMNS": "250"})
        deadline = time.monotonic() + 300
        while not (manifests / name / ".lock").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the driver and its workers
        out, err = proc.communicate(timeout=300)
        if finished or (proc.returncode in (0, -signal.SIGINT) and out.strip()):
            # the run was done before the interrupt (its summary printed; a SIGINT while the
            # interpreter shuts down ends it as a shell's Ctrl-C would, 128+2): nothing to judge
            continue
        conclusive += 1
        assert proc.returncode == 130, (proc.returncode, out, err)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_LINE.match(line)]
        assert len(lines) == 1 and lines[0].startswith("interrupted; "), err
        assert leftover_temps(manifests) == []
    if not conclusive:
        pytest.skip("ingest finished before every interrupt")


def test_ctrl_c_while_waiting_for_another_writer(tmp_path):
    w = build_world(tmp_path, train=False)
    before = snapshot(w.mdir)
    hold = _holder(w.mdir)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "ferdata", "ingest", "folder", str(w.src), "--name", "tiny",
                                 "--subject-pattern", PATTERN, "--manifests", str(w.manifests), "-j", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "FERDATA_NO_PLUGINS": "1", "COLUMNS": "250"})
        _wait_for_line(proc, "waiting for")
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()  # the rest (communicate() would repeat what was read already)
        proc.wait(timeout=120)
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.strip().splitlines() == [f"interrupted; nothing written ({w.mdir / 'images.parquet'} is as it "
                                            "was); run the ingest again"]
    finally:
        hold.kill()
        hold.wait()
    assert snapshot(w.mdir) == before


def test_an_interrupt_some_library_swallowed_still_exits_130():
    import typer

    from ferdata.cli.app import _Group

    swallower = typer.Typer(cls=_Group)

    @swallower.command()
    def swallow() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass  # what a careless library does

    @swallower.command()
    def other() -> None:
        pass

    res = CliRunner().invoke(swallower, ["swallow"])
    assert res.exit_code == 130
    assert res.output.strip() == "interrupted; what was written is whole (every write is atomic); run the command again"
