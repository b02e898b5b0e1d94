"""Ctrl-C while a pool starts or a native library is first imported: held until the pool or the
import is whole, never lost, never a dead worker or a half-made module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ferdata import interrupts

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")


@pytest.mark.parametrize("other_thread", [False, True])
def test_sigint_blocked_holds_a_ctrl_c_until_the_block_ends(other_thread):
    # with another thread alive (a progress bar's) the kernel hands the signal to that thread
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    if other_thread:
        thread.start()
    reached_end_of_block = False
    try:
        with interrupts.watch(), pytest.raises(KeyboardInterrupt):
            with interrupts.sigint_blocked():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # room for the handler to run, were the signal not held
                reached_end_of_block = True
    finally:
        stop.set()
    assert reached_end_of_block and interrupts.received()
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the mask is restored


def test_worker_started_under_the_block_ignores_a_pending_ctrl_c():
    # A child forked while SIGINT is blocked has it pending; the worker initializer must
    # drop it (ignore, then unblock) instead of dying of it.
    script = textwrap.dedent("""
        import os, signal
        from ferdata import interrupts
        with interrupts.sigint_blocked():
            pid = os.fork()
            if pid == 0:
                os.kill(os.getpid(), signal.SIGINT)  # pending: blocked
                interrupts.worker_ignores_sigint()
                os._exit(0 if signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set()) else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_ctrl_c_to_the_whole_group_while_workers_fork_stops_cleanly():
    # Right after each fork the driver sends SIGINT to its process group (what a terminal
    # does): the new worker must not die of it (a traceback, a pool that re-forks under a
    # held lock and hangs), and the driver gets it once the pool is whole, then stops it.
    script = textwrap.dedent("""
        import os, signal
        from ferdata import interrupts
        from ferdata.engines.local import ProcessPoolExecutor

        def double(chunk):
            return [x * 2 for x in chunk]

        driver = os.getpid()
        os.register_at_fork(after_in_parent=lambda: os.getpid() == driver and os.killpg(0, signal.SIGINT))
        with interrupts.watch():
            try:
                list(ProcessPoolExecutor(2, start_method="fork").map_chunks(double, list(range(100)), chunksize=10))
            except KeyboardInterrupt:
                print("interrupted", flush=True)
    """)
    for _ in range(5):  # the race this closes is timing-dependent; repeat it
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             start_new_session=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "interrupted"
        assert "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr, out.stderr


def test_ctrl_c_during_the_first_matplotlib_import_waits_for_the_import():
    """The confusion plot imports matplotlib after a fold's metrics are written, the moment a
    user (and the flag resume test) presses Ctrl-C; an interrupt inside its native modules'
    start left them half made and Python aborted at exit. Here the Ctrl-C arrives as the
    import begins: it is raised once the plot's import is whole."""
    script = textwrap.dedent("""
        import os, signal, sys
        from ferdata import interrupts
        from ferdata.training.metrics import plot_confusion

        class CtrlCOnImport:
            def find_spec(self, name, path=None, target=None):
                if name == "matplotlib":
                    sys.meta_path.remove(self)
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        assert "matplotlib" not in sys.modules
        sys.meta_path.insert(0, CtrlCOnImport())
        with interrupts.watch():
            try:
                plot_confusion([[1, 0], [0, 1]], [[1.0, 0.0], [0.0, 1.0]], ["a", "b"], "plot.png", "t")
            except KeyboardInterrupt:
                print("interrupted after import:", "matplotlib.pyplot" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupted after import: True", proc.stdout + proc.stderr
