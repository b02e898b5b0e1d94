import os

import pytest

from ferdata.engines import InlineExecutor, ProcessPoolExecutor, create_executor, default_chunksize, list_engines

_STATE: dict = {}


def _init(tag):
    _STATE["tag"] = tag
    _STATE[os.getpid()] = _STATE.get(os.getpid(), 0) + 1  # forked workers inherit the dict, not the pid


def _work(chunk):
    return [(x * x, _STATE.get("tag"), os.getpid(), _STATE[os.getpid()]) for x in chunk]


@pytest.mark.parametrize("executor", [InlineExecutor(), ProcessPoolExecutor(2)])
def test_results_in_order_with_per_worker_state(executor):
    done = []
    out = list(executor.map_chunks(_work, list(range(100)), chunksize=7, initializer=_init, initargs=("t",),
                                   progress=done.append))
    assert [o[0] for o in out] == [x * x for x in range(100)]
    assert {o[1] for o in out} == {"t"} and {o[3] for o in out} == {1}  # initialised once per worker
    assert sum(done) == 100


def test_registry_and_chunksize():
    assert set(list_engines()) >= {"local", "inline"}
    assert create_executor("local", workers=3).workers == 3
    assert default_chunksize(0, 2) == 1 and default_chunksize(35887, 2) == 512 and default_chunksize(10, 2) == 1


def _torch_sum(chunk):
    import torch

    return [float(torch.ones(64, 64).matmul(torch.ones(64, 64)).sum()) for _ in chunk]


def test_pool_after_torch_ops_in_the_parent_does_not_hang():
    torch = pytest.importorskip("torch")
    torch.ones(256, 256).matmul(torch.ones(256, 256))  # start torch's thread pool here
    from ferdata.engines.local import safe_start_method

    assert safe_start_method() == "forkserver"
    out = list(ProcessPoolExecutor(2).map_chunks(_torch_sum, list(range(4)), chunksize=1))
    assert out == [64.0 ** 3] * 4


POOL_SCRIPT = """
import os, signal, sys, time
from ferdata.engines.local import ProcessPoolExecutor

def slow(chunk):
    time.sleep(0.05)
    return chunk

if __name__ == "__main__":
    at = int(sys.argv[1])
    try:
        for i, _ in enumerate(ProcessPoolExecutor(2).map_chunks(slow, list(range(40)), chunksize=1)):
            if i == at:
                os.killpg(os.getpgrp(), signal.SIGINT)  # what a terminal's Ctrl-C does: the driver and its workers
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("interrupted")
        sys.exit(130)
    print("finished")
"""


@pytest.mark.parametrize("at", [0, 39])  # while the pool works, and as it shuts down
def test_ctrl_c_reaches_the_driver_once_and_is_never_lost(tmp_path, at):
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(at)], capture_output=True, text=True, timeout=300,
                          start_new_session=True)
    assert (proc.returncode, proc.stdout.strip()) == (130, "interrupted"), (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr  # workers ignore it
