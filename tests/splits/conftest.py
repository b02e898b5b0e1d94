"""Fixtures of the split tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ferdata.manifest import Manifest
from tests.splits.fakes import write_manifest


@pytest.fixture
def fake_manifest(tmp_path: Path):
    """``fake_manifest(rows, name='fake', **kw)`` → a Manifest under a temp folder."""

    def make(rows: Sequence[dict], name: str = "fake", **kw) -> Manifest:
        return write_manifest(tmp_path / name, rows, **kw)

    return make
