"""The README's split snippet runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ferdata.engines import InlineExecutor
from ferdata.splits import make_split
from tests.splits.fakes import people, write_manifest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_pandas_join_runs(tmp_path):
    m = write_manifest(tmp_path / "manifests" / "jaffe", people(n_subjects=3))
    make_split(m, "loso", executor=InlineExecutor())
    code = re.search(r"\.venv/bin/python - <<'PY'\n(.*?)\nPY\n", README.read_text(), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "test" in out.stdout and "happy" in out.stdout


def test_readme_split_commands_name_real_protocols():
    from ferdata.splits import list_protocols

    text = README.read_text()
    used = set(re.findall(r"ferdata split \S+ --protocol (\S+)", text))
    assert used and used <= set(list_protocols())
