"""The README's commands work as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.datasets.fakes import write_fake

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_starts_with_the_two_setup_commands():
    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()
    assert block[0].startswith("bash scripts/quickstart.sh ") and block[1].startswith("bash scripts/test.sh")


def test_duckdb_query_in_readme_runs(tmp_path):
    pytest.importorskip("duckdb")
    from ferdata.engines import InlineExecutor
    from ferdata.ingest import ingest

    exp = write_fake("jaffe", tmp_path / "src")
    ingest("jaffe", exp.source, manifests=tmp_path / "manifests", executor=InlineExecutor())
    code = re.search(r"\.venv/bin/python - <<'EOF'\n(.*?)\nEOF\n", README.read_text(), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "anger" in out.stdout and "happy" in out.stdout and "subjects" in out.stdout
