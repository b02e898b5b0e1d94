"""Fixtures shared by the whole suite.

Real data comes from ``$FERDATA_TEST_DATA`` or ``../shared/data``; tests that need it skip
cleanly without it. ``real_manifest(name)`` ingests a real dataset once per test session
(into a temporary folder) and hands back the :class:`~ferdata.manifest.Manifest`: treat it
as read-only. A test that writes crops, splits or relabels uses ``fresh_real_manifest``.
Every test runs with ``$FERDATA_MANIFESTS`` and ``$FERDATA_RUNS`` pointing at temporary
folders and third-party plugins off (``$FERDATA_NO_PLUGINS``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferdata.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent

#: manifest name -> (adapter, folder under the data root, adapter options)
REAL_DATASETS: dict[str, tuple[str, str, dict]] = {
    "jaffe": ("jaffe", "jaffe", {}),
    "ck48": ("ckplus", "ckplus48", {}),
    "sfew": ("sfew", "sfew_anu", {}),
    "fer2013": ("fer2013", "fer2013_csv/fer2013.csv", {}),
    "fer2013_folders": ("fer2013", "fer2013_folders", {}),
    "ferplus": ("ferplus", "ferplus_sample", {}),
}


def data_root() -> Path | None:
    env = os.environ.get("FERDATA_TEST_DATA")
    for candidate in (Path(env) if env else None, ROOT.parent / "shared" / "data"):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("real datasets not found (set FERDATA_TEST_DATA or provide ../shared/data)")
    return root


@pytest.fixture(scope="session")
def real_manifest(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Manifest]:
    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest

    root = tmp_path_factory.mktemp("real-manifests")
    cache: dict[str, Manifest] = {}

    def get(name: str) -> Manifest:
        if name not in cache:
            adapter, folder, options = REAL_DATASETS[name]
            source = real_data / folder
            if not source.exists():
                pytest.skip(f"{source} not found")
            cache[name] = ingest(adapter, source, name=name, manifests=root, executor=InlineExecutor(),
                                 **options).manifest
        return cache[name]

    return get


@pytest.fixture
def fresh_real_manifest(real_data: Path, tmp_path: Path) -> Callable[[str], Manifest]:
    """Like ``real_manifest`` but ingested anew into this test's folder: for tests that add
    crops, splits or relabels, so they never change what other tests see."""
    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest

    def get(name: str) -> Manifest:
        adapter, folder, options = REAL_DATASETS[name]
        source = real_data / folder
        if not source.exists():
            pytest.skip(f"{source} not found")
        return ingest(adapter, source, name=name, manifests=tmp_path / "real-manifests",
                      executor=InlineExecutor(), **options).manifest

    return get


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """Remember whether a test's call failed, so its outputs are kept only then."""
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture(autouse=True)
def _isolated_outputs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test writes manifests and runs into temporary folders unless it asks otherwise,
    so a test that forgets ``--manifests``/``--runs`` can never write into the checkout (nor
    find the user's own Label Studio server in their data folder); and only ferdata's own
    plugins load (third-party entry points installed here stay off). The folder goes when
    the test passes, like its ``tmp_path``, so the suite's disk use stays that of one test."""
    out = tmp_path_factory.mktemp("outputs")
    monkeypatch.setenv("FERDATA_MANIFESTS", str(out / "manifests"))
    monkeypatch.setenv("FERDATA_RUNS", str(out / "runs"))
    monkeypatch.setenv("FERDATA_NO_PLUGINS", "1")
    monkeypatch.setenv("FERDATA_DATA_HOME", str(out / "data-home"))  # never the user's Label Studio server
    yield
    if not request.node.stash.get(_FAILED, False):
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def manifests_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh manifests folder, also set as ``$FERDATA_MANIFESTS``."""
    path = tmp_path / "manifests"
    path.mkdir()
    monkeypatch.setenv("FERDATA_MANIFESTS", str(path))
    return path
