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


def _pid_and_tag(chunk):
    return [(os.getpid(), _STATE.get("tag")) for _ in chunk]


def test_a_kept_pool_serves_every_call_and_runs_each_calls_initializer():
    executor = ProcessPoolExecutor(2)
    with executor.kept():
        first = list(executor.map_chunks(_pid_and_tag, list(range(40)), chunksize=2, initializer=_init,
                                         initargs=("a",)))
        second = list(executor.map_chunks(_pid_and_tag, list(range(40)), chunksize=2, initializer=_init,
                                          initargs=("b",)))
        pids = {p for p, _ in first + second}
        assert os.getpid() not in pids and len(pids) <= 2  # the same two workers, forked once
        assert {t for _, t in first} == {"a"} and {t for _, t in second} == {"b"}  # each call set them up
    assert executor._kept is None  # closed with the block


def test_a_kept_pool_goes_when_a_call_stops_early():
    executor = ProcessPoolExecutor(2)
    with executor.kept():
        results = executor.map_chunks(_work, list(range(40)), chunksize=1, initializer=_init, initargs=("t",))
        assert next(results)[0] == 0
        results.close()  # a consumer that stops: its queued chunks must not reach the next call
        assert executor._kept is None
        out = list(executor.map_chunks(_work, list(range(10)), chunksize=1, initializer=_init, initargs=("u",)))
        assert [o[0] for o in out] == [x * x for x in range(10)] and {o[1] for o in out} == {"u"}


def _double(chunk):
    return [x * 2 for x in chunk]


def test_the_pools_maintenance_thread_sleeps_while_results_flow(monkeypatch):
    """The standard pool's maintenance thread wakes for every result waiting in the pipe and
    spins until it is read (662 wakes for these 300 chunks; 0.6 s of the driver's CPU at
    AffectNet scale); ours wakes when the pool changes."""
    import multiprocessing.pool

    wakes = []
    wait = multiprocessing.pool.Pool._wait_for_updates
    monkeypatch.setattr(multiprocessing.pool.Pool, "_wait_for_updates",
                        staticmethod(lambda *a, **k: (wakes.append(1), wait(*a, **k))[1]))
    out = list(ProcessPoolExecutor(2).map_chunks(_double, list(range(3000)), chunksize=10))
    assert out == [x * 2 for x in range(3000)]
    assert len(wakes) < 20
