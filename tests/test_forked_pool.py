"""runlens.processes.ForkedPool: worker processes forked from one that started once (the HTML
report's figure workers import matplotlib once, not once each). Each test runs in a fresh
interpreter: this test session may have loaded TensorFlow, whose threads make forking it unsafe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ForkedPool forks: Linux only")

PRELUDE = """
import os, sys, time
from concurrent.futures.process import BrokenProcessPool
from runlens.processes import ForkedPool

started_in = None

def start():
    global started_in
    started_in = os.getpid()

def who(pause):
    time.sleep(pause)
    return os.getpid(), started_in

def fails(text):
    raise KeyError(text)

def dies():
    os._exit(3)

def half_sent():  # die halfway through sending a result, as one the OOM killer takes might
    import gc, struct
    pool = next(o for o in gc.get_objects() if isinstance(o, ForkedPool))  # this worker's copy
    os.write(pool._results.fileno(), struct.pack("!i", 1 << 20) + b"the first bytes of a result")
    os._exit(9)

def unpicklable():
    return lambda: None

class Box:
    pass

def box():
    return Box()

def mark(path):
    open(path, "w").close()
    time.sleep(0.3)
"""


def _run(body: str, *args: str) -> str:
    code = PRELUDE + textwrap.dedent(body)
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_workers_share_one_start_and_give_every_result_in_its_future():
    out = _run("""
        with ForkedPool(2, initializer=start) as pool:
            futures = [pool.submit(who, 0.4) for _ in range(6)]
            seen = [f.result(timeout=60) for f in futures]
            assert pool.submit(sum, [1, 2], 10).result(timeout=60) == 13
            assert pool.submit(dict, a=1).result(timeout=60) == {"a": 1}
        pids = {pid for pid, _ in seen}
        starts = {start for _, start in seen}
        assert len(pids) == 2, seen            # both workers drew
        assert len(starts) == 1 and starts != {None}, seen  # ... from one start
        assert os.getpid() not in pids
        print("ok")
    """)
    assert out == "ok"


def test_the_pool_keeps_no_result_once_given():
    # a read's results are tens of MB: the caller drops them once its frame is built
    out = _run("""
        import gc, weakref
        with ForkedPool(2) as pool:
            future = pool.submit(box)
            result = weakref.ref(future.result(timeout=60))
            del future
            gc.collect()
            print(result() is None)
    """)
    assert out == "True"


def test_an_exception_is_raised_where_the_result_is_asked_for_and_the_pool_goes_on():
    out = _run("""
        with ForkedPool(2) as pool:
            failing = pool.submit(fails, "boom")
            bad = pool.submit(unpicklable)
            unsent = pool.submit(len, lambda: None)  # a job that does not pickle
            good = pool.submit(max, 4, 7)
            try:
                failing.result(timeout=60)
            except KeyError as error:
                print("KeyError", error)
            try:
                bad.result(timeout=60)
            except RuntimeError as error:
                print("RuntimeError", "unpicklable" in str(error))
            print(type(unsent.exception(timeout=60)).__name__)
            print(good.result(timeout=60))
    """)
    assert out.splitlines() == ["KeyError 'boom'", "RuntimeError True", "PicklingError", "7"]


def test_a_worker_that_dies_fails_the_jobs_not_done_instead_of_hanging():
    out = _run("""
        pool = ForkedPool(2)
        futures = [pool.submit(dies)] + [pool.submit(who, 0.2) for _ in range(3)]
        try:
            futures[0].result(timeout=60)
        except BrokenProcessPool as error:
            print("broken:", error)
        for f in futures[1:]:
            f.exception(timeout=60)  # each ends one way or the other, none hangs
        try:
            pool.submit(max, 1, 2)
        except BrokenProcessPool:
            print("refused")
        pool.shutdown(cancel_futures=True)
    """)
    assert out.splitlines() == ["broken: a worker process ended before its jobs were done", "refused"]


def test_a_worker_that_dies_halfway_through_a_result_fails_the_jobs_instead_of_hanging():
    out = _run("""
        pool = ForkedPool(2)
        futures = [pool.submit(half_sent)] + [pool.submit(who, 0.2) for _ in range(3)]
        print(type(futures[0].exception(timeout=60)).__name__)
        for f in futures[1:]:
            f.exception(timeout=60)  # each ends one way or the other, none hangs
        pool.shutdown(cancel_futures=True)
    """)
    assert out == "BrokenProcessPool"


def test_cancelled_jobs_are_not_run(tmp_path):
    out = _run(
        """
        folder = sys.argv[1]
        pool = ForkedPool(2)
        futures = [pool.submit(mark, os.path.join(folder, str(i))) for i in range(40)]
        futures[0].result(timeout=60)
        pool.shutdown(cancel_futures=True)
        print(sum(f.cancelled() for f in futures), sum(f.done() and not f.cancelled() for f in futures))
    """,
        str(tmp_path),
    )
    cancelled, done = map(int, out.split())
    ran = len(os.listdir(tmp_path))  # the jobs started: all ended once shutdown has waited
    assert 1 <= ran <= 20, (
        ran
    )  # the first, and what the workers had started by the cancel (loaded machine: more)
    assert cancelled + done == 40 and done <= ran
    assert cancelled >= 40 - ran  # every job never started was cancelled


def test_the_workers_end_when_the_process_that_made_them_is_killed():
    code = PRELUDE + textwrap.dedent("""
        pool = ForkedPool(2)
        futures = [pool.submit(who, 0.3) for _ in range(4)]
        print(" ".join(str(pid) for pid in sorted({f.result(timeout=60)[0] for f in futures})), flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2
        parent.send_signal(signal.SIGKILL)  # no shutdown, no exit handlers
        parent.wait(timeout=30)
        assert _all_end(pids)
    finally:
        parent.kill()
        _kill(pids)


def test_ctrl_c_is_left_to_the_process_that_made_the_workers(tmp_path):
    code = PRELUDE + textwrap.dedent("""
        pool = ForkedPool(2, initializer=start)
        futures = [pool.submit(who, 0.2) for _ in range(4)]
        print(" ".join(str(pid) for pid in sorted({f.result(timeout=60)[0] for f in futures})), flush=True)
        try:
            time.sleep(60)  # the workers idle, waiting for jobs
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            os._exit(1)
    """)
    errors = tmp_path / "stderr"
    with open(errors, "w") as stderr:  # a file: the workers hold it open after the maker is gone
        parent = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    pids: list[int] = []
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        time.sleep(0.5)
        os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        assert parent.stdout.readline().strip() == "interrupted"
        assert parent.wait(timeout=30) == 1
        assert _all_end(pids)  # they end once their maker is gone
        assert "Traceback" not in errors.read_text()
    finally:
        parent.kill()
        _kill(pids)


def _all_end(pids: list[int], seconds: float = 30) -> bool:
    """Whether every process of ``pids`` has ended within ``seconds``."""
    deadline = time.monotonic() + seconds
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_running(pid) for pid in pids)


def _kill(pids: list[int]) -> None:
    """A failed test leaves no worker behind."""
    for pid in filter(_running, pids):
        os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
