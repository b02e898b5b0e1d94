"""``benchmarks/gpu_check.sh --device cpu``: the GPU check script keeps working without a GPU
(tiny: a few steps of resnet18-alf, DDP over two gloo processes, predict timings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_tiny_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--keep",
                          str(tmp_path / "work")], capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "device cpu, 2 process(es) for DDP" in text
    assert re.search(r"single process: [\d.]+ images/s", text)
    assert re.search(r"DDP: [\d.]+ images/s over 2 process\(es\)", text)
    assert re.search(r"batch 1: [\d.]+ ms per face", text) and re.search(r"batch 32: [\d.]+ ms per face", text)
    assert text.rstrip().endswith("gpu_check: ok")
    runs = sorted((tmp_path / "work" / "runs").iterdir())
    assert len(runs) == 2  # the single-process run and the DDP run
    assert all((r / "metrics.json").is_file() for r in runs)


def test_gpu_check_rejects_unknown_options() -> None:
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--gpus", "2"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "unknown option --gpus" in out.stderr
