"""``--engine ray``: the same tables as the local engine, on a real local Ray cluster.

Every step that runs through the executor (ingest, preprocess with MediaPipe and MTCNN,
features, the split's pHash) is run once on the local process pool and once on Ray, and
the tables are compared row for row (preprocess: every column but the stage timings; the
crops byte for byte). A Ray preprocess killed with SIGKILL resumes; a cluster of two
nodes started with ``ray start`` shares the work. Without Ray, ``--engine ray`` is one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ferdata.cli.app import app
from ferdata.engines import InlineExecutor, ProcessPoolExecutor, create_executor
from ferdata.errors import FerdataError
from ferdata.faces.preprocess import STAGE_COLUMNS, preprocess
from ferdata.faces.table import JOURNAL_DIR, read_faces
from ferdata.features.extract import compute_features
from ferdata.ingest import ingest
from ferdata.manifest import Manifest, read_metadata
from ferdata.splits import make_split
from ferdata.splits.phash import PHASH_TABLE

from .conftest import RAY_CPUS, RayStart, free_port, processes_under, ray_env, wait_for_nodes

VOLATILE_META = ("created_at",)


def ray_executor(workers: int = RAY_CPUS):
    from ferdata.engines.ray_engine import RayExecutor

    return RayExecutor(workers)


def _init(tag: str) -> None:
    _STATE["tag"] = tag
    _STATE["inits"] = _STATE.get("inits", 0) + 1


_STATE: dict = {}


def _work(chunk: list[int]) -> list[tuple]:
    return [(x * x, _STATE.get("tag"), os.getpid(), _STATE["inits"]) for x in chunk]


def _cwd(chunk: list[int]) -> list[str]:
    return [os.getcwd() for _ in chunk]


def _gpu_ids(chunk: list[int]) -> list[list[int]]:
    import ray

    return [[int(g) for g in ray.get_gpu_ids()] for _ in chunk]


def same_meta(a: Path, b: Path) -> None:
    ma, mb = read_metadata(a), read_metadata(b)
    for key in VOLATILE_META:
        ma.pop(key, None), mb.pop(key, None)
    assert ma == mb


# ---- the executor ------------------------------------------------------------------------


def test_results_in_order_with_one_initializer_per_actor(ray_cluster):
    done: list[int] = []
    ex = ray_executor()
    out = list(ex.map_chunks(_work, list(range(100)), chunksize=7, initializer=_init, initargs=("t",),
                             progress=done.append))
    assert [o[0] for o in out] == [x * x for x in range(100)]
    assert {o[1] for o in out} == {"t"} and {o[3] for o in out} == {1}  # built once per actor
    assert len({o[2] for o in out}) == RAY_CPUS  # an actor per CPU
    assert sum(done) == 100 and done == [7] * 14 + [2]
    assert ex.last_run["chunks"] == 15 and ex.last_run["actors"] == RAY_CPUS
    assert sum(n["items"] for n in ex.last_run["nodes"].values()) == 100
    ex.close()
    assert ray_cluster.is_initialized()  # a cluster this executor joined is not stopped


def test_workers_share_the_drivers_working_folder(ray_cluster, tmp_path, monkeypatch):
    """``--manifests manifests`` (relative) must name the same folder in every actor."""
    monkeypatch.chdir(tmp_path)
    assert set(ray_executor().map_chunks(_cwd, list(range(4)), chunksize=1)) == {str(tmp_path)}


def test_gpu_workers_are_gpu_actors(ray_cluster):
    ex = ray_executor(workers=None)
    out = list(ex.map_chunks(_gpu_ids, list(range(6)), chunksize=2, resources={"GPU": 1}))
    assert out == [[0]] * 6  # every chunk ran in an actor holding the (logical) GPU
    assert ex.last_run["actors"] == 1  # one GPU, one GPU actor
    cpu = list(ex.map_chunks(_gpu_ids, list(range(6)), chunksize=2))
    assert cpu == [[]] * 6


def test_the_local_pool_never_forks_a_ray_driver(ray_cluster):
    """Forking a process whose Ray driver is connected hangs the driver's next Ray call."""
    from ferdata.engines.local import safe_start_method

    assert safe_start_method() == "forkserver"  # the table tests below run both pools in this process


def test_engine_by_name_and_environment(ray_cluster, monkeypatch):
    from ferdata.engines.ray_engine import RayExecutor

    monkeypatch.setenv("FERDATA_ENGINE", "ray")
    assert isinstance(create_executor(workers=2), RayExecutor)
    monkeypatch.setenv("FERDATA_ENGINE", "local")
    assert isinstance(create_executor(workers=2), ProcessPoolExecutor)
    with pytest.raises(FerdataError, match="ray engine"):
        create_executor("local", address="127.0.0.1:6379")
    assert isinstance(create_executor("ray", address=None), RayExecutor)


def test_unreachable_cluster_is_one_line(ray_cluster, monkeypatch):
    from ferdata.engines.ray_engine import RayExecutor

    monkeypatch.setattr(ray_cluster, "is_initialized", lambda: False)

    def refuse(**kwargs):
        raise ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")

    monkeypatch.setattr(ray_cluster, "init", refuse)
    with pytest.raises(FerdataError, match=r"could not reach the Ray cluster at 10\.0\.0\.1:6379 .*ray start --head"):
        RayExecutor(address="10.0.0.1:6379").connect()


def test_without_ray_the_engine_says_so_in_one_line(tmp_path, monkeypatch):
    """Simulates an install without the extra: ``import ray`` fails."""
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(FerdataError, match=r"pip install 'ferdata\[ray\]'"):
        create_executor("ray")
    src = tmp_path / "src"
    src.mkdir()
    result = CliRunner().invoke(app, ["ingest", "folder", str(src), "--engine", "ray",
                                      "--manifests", str(tmp_path / "m")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs Ray" in lines[0] and "Traceback" not in result.output


def test_ray_address_without_the_ray_engine_is_a_mistake(tmp_path):
    result = CliRunner().invoke(app, ["ingest", "folder", str(tmp_path), "--ray-address", "127.0.0.1:6379",
                                      "--manifests", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--ray-address needs --engine ray" in result.output


# ---- the steps: the same tables on both engines -------------------------------------------


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["jaffe", "fer2013"])  # files read in place; CSV pixels written as PNGs
def test_ingest_tables_equal(ray_cluster, real_data, tmp_path, name):
    from tests.conftest import REAL_DATASETS

    adapter, folder, options = REAL_DATASETS[name]
    a = ingest(adapter, real_data / folder, name=name, manifests=tmp_path / "local",
               executor=ProcessPoolExecutor(2), **options)
    b = ingest(adapter, real_data / folder, name=name, manifests=tmp_path / "ray", executor=ray_executor(),
               **options)
    assert pq.read_table(a.manifest.images_path).equals(pq.read_table(b.manifest.images_path))
    same_meta(a.manifest.images_path, b.manifest.images_path)
    written = sorted(p.relative_to(a.manifest.dir) for p in (a.manifest.dir / "images").rglob("*.png"))
    assert (name == "fer2013") == bool(written)
    for rel in written:
        assert (a.manifest.dir / rel).read_bytes() == (b.manifest.dir / rel).read_bytes()


def _faces_equal(a: Manifest, b: Manifest, config_hash: str) -> int:
    rows_a = {r["image_id"]: r for r in read_faces(a, config_hash).drop_columns(list(STAGE_COLUMNS)).to_pylist()}
    rows_b = {r["image_id"]: r for r in read_faces(b, config_hash).drop_columns(list(STAGE_COLUMNS)).to_pylist()}
    assert rows_a == rows_b
    crops = [r["crop_path"] for r in rows_a.values() if r["crop_path"]]
    assert crops
    for rel in crops:
        assert (a.dir / rel).read_bytes() == (b.dir / rel).read_bytes(), rel
    return len(crops)


@pytest.mark.real_data
@pytest.mark.parametrize(("detector", "options", "n_images"), [
    ("mediapipe", {"align": "rotate", "size": 48, "gray": True}, None),
    ("mtcnn", {"align": "spatial", "size": 64}, 40),
])
def test_preprocess_tables_and_crops_equal(ray_cluster, real_data, tmp_path, detector, options, n_images):
    manifests = []
    for where in ("local", "ray"):
        manifests.append(ingest("jaffe", real_data / "jaffe", manifests=tmp_path / where,
                                executor=InlineExecutor()).manifest)
    ids = manifests[0].images(columns=["image_id"]).column("image_id").to_pylist()
    ids = ids[:n_images] if n_images else None
    local = preprocess(manifests[0], executor=ProcessPoolExecutor(2), detector=detector, image_ids=ids, **options)
    on_ray = preprocess(manifests[1], executor=ray_executor(), detector=detector, image_ids=ids, **options)
    assert local.config_hash == on_ray.config_hash and on_ray.n_processed == (n_images or 213)
    assert _faces_equal(manifests[0], manifests[1], local.config_hash) == on_ray.n_processed
    assert local.counts == on_ray.counts and local.counts["face_found"] > 0.9 * on_ray.n_processed


@pytest.mark.real_data
def test_features_tables_equal(ray_cluster, real_manifest, tmp_path):
    m = real_manifest("ck48")
    a = compute_features(m, use_crops=False, executor=ProcessPoolExecutor(2))
    table_a = pq.read_table(a.path)
    b = compute_features(m, use_crops=False, executor=ray_executor())
    assert b.n_described == 981 and pq.read_table(b.path).equals(table_a)


@pytest.mark.real_data
def test_split_and_phash_tables_equal(ray_cluster, real_data, tmp_path):
    outs = []
    for where, executor in (("local", ProcessPoolExecutor(2)), ("ray", ray_executor())):
        m = ingest("ckplus", real_data / "ckplus48", manifests=tmp_path / where, executor=InlineExecutor()).manifest
        outs.append((m, make_split(m, "spi", executor=executor)))
    (ma, a), (mb, b) = outs
    assert a.metadata["audit"]["near_duplicate_pairs"] > 0
    assert a.path.read_bytes() == b.path.read_bytes()
    assert pq.read_table(ma.table_path(PHASH_TABLE)).equals(pq.read_table(mb.table_path(PHASH_TABLE)))


# ---- resuming, and two nodes ----------------------------------------------------------------


KILLED_RUN = """
import sys
from ferdata.engines.ray_engine import RayExecutor
from ferdata.faces.preprocess import preprocess
from ferdata.manifest import Manifest
preprocess(Manifest(sys.argv[1]), executor=RayExecutor(1, address=sys.argv[2]), detector="mtcnn", size=64, chunksize=8)
"""


@pytest.mark.real_data
def test_a_killed_ray_preprocess_resumes(ray_cluster, real_data, tmp_path):
    """A driver killed with SIGKILL (no ``finally`` runs) leaves the earlier faces table
    intact and its finished chunks in the journal; the rerun does only the rest."""
    m = ingest("jaffe", real_data / "jaffe", manifests=tmp_path / "m", executor=InlineExecutor()).manifest
    earlier = preprocess(m, executor=InlineExecutor(), detector="mediapipe", size=32, gray=True)
    before = (m.dir / "faces.parquet").read_bytes()

    address = ray_cluster.get_runtime_context().gcs_address
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(m.dir), address], env=ray_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = m.dir / JOURNAL_DIR
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_dir() and len([p for p in journal.iterdir() if not p.name.startswith(".")]) >= 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert (m.dir / "faces.parquet").read_bytes() == before  # the table the earlier run wrote, untouched

    resumed = preprocess(m, executor=ray_executor(1), detector="mtcnn", size=64, chunksize=8)
    assert 16 <= resumed.n_done_before < 213 and resumed.n_done_before + resumed.n_processed == 213
    assert resumed.n_images == 213 and read_faces(m, earlier.config_hash).num_rows == 213
    assert not [p for p in journal.iterdir() if not p.name.startswith(".")]


@pytest.mark.real_data
def test_two_nodes_share_a_preprocess(real_data, tmp_path):
    """``ray start --head`` and a second ``ray start --address`` (one CPU each, their own
    temp folders) on this machine; ``ferdata preprocess --engine ray --ray-address`` runs
    on both, and every process they started is gone afterwards."""
    pytest.importorskip("ray")
    m = ingest("jaffe", real_data / "jaffe", manifests=tmp_path / "m", executor=InlineExecutor()).manifest
    env = ray_env()
    port = free_port()
    address = f"127.0.0.1:{port}"
    head_dir = Path(tempfile.mkdtemp(prefix="fh-", dir="/tmp"))
    node_dir = Path(tempfile.mkdtemp(prefix="fn-", dir="/tmp"))
    nodes = [RayStart(["--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                       "--num-gpus", "0", "--include-dashboard", "false", "--dashboard-port", str(free_port())],
                      head_dir, env)]
    try:
        wait_for_nodes(address, 1, env)
        nodes.append(RayStart(["--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                               "--num-gpus", "0"], node_dir, env))
        wait_for_nodes(address, 2, env)
        out = subprocess.run([Path(sys.executable).with_name("ferdata"), "preprocess", "jaffe",
                              "--manifests", str(m.dir.parent), "--detector", "mediapipe", "--size", "48", "--gray",
                              "--engine", "ray", "--ray-address", address, "-j", "2"],
                             capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert re.search(r"ray: 2 node\(s\), 2 worker\(s\)", out.stdout), out.stdout
        per_node = [int(n) for n in re.findall(r"[0-9a-f]{8}: (\d+)", out.stdout)]
        assert len(per_node) == 2 and min(per_node) > 0 and sum(per_node) == 213, out.stdout
        assert read_faces(m).num_rows == 213
    finally:
        for node in reversed(nodes):
            node.stop()
    assert not processes_under(head_dir) and not processes_under(node_dir)
    shutil.rmtree(head_dir, ignore_errors=True)
    shutil.rmtree(node_dir, ignore_errors=True)


@pytest.mark.real_data
def test_cli_summary_names_the_nodes(ray_cluster, real_data, tmp_path, monkeypatch):
    """``--engine ray`` on the command line uses the Ray this process already runs (and
    leaves it running), and the summary says where the images went."""
    m = ingest("jaffe", real_data / "jaffe", manifests=tmp_path / "m", executor=InlineExecutor()).manifest
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["features", "jaffe", "--manifests", str(m.dir.parent), "--engine", "ray",
                                      "--descriptor", "lpq"])
    assert result.exit_code == 0, result.output
    assert re.search(r"ray: 1 node\(s\), 2 worker\(s\)", result.output) and "213" in result.output
    assert ray_cluster.is_initialized()  # joined, so left running
    assert json.loads(json.dumps(read_metadata(m.table_path("features.parquet"))))["n_described"] == 213
