"""One fit per run folder: a second fit pointed at a run_dir another fit is training in is refused
with a RunlensError before it writes or deletes anything there (two real processes, two threads,
one process after a crash), and the first fit's run stays whole."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pandas
import pytest
from _bundle_fits import bundle_fit, checkpoint_name, expected_kept, overfitting_data, tiny_model
from _fit_process import spawn

import runlens
from runlens.keras import fit_lock


def assert_whole_run(run: Path, logs: dict[int, dict[str, float]], *, pid: int) -> None:
    """``run`` is exactly the run of one fit (process ``pid``) that observed ``logs``: manifest,
    history.csv, checkpoints and the report's live comparison."""
    manifest = runlens.read_manifest(run)
    assert (manifest["process"]["pid"], manifest["ended_normally"]) == (pid, True)
    assert [a["initial_epoch"] for a in manifest["attempts"]] == [0]
    assert {e["epoch"]: e["logs"] for e in manifest["epochs"]} == logs
    csv = pandas.read_csv(run / "history.csv")
    assert list(csv["epoch"]) == sorted(logs)
    assert csv["val_loss"].tolist() == [logs[e]["val_loss"] for e in sorted(logs)]
    values = {e: row["val_loss"] for e, row in logs.items()}
    kept = expected_kept(values, max(values), keep_best=2, keep_last=1)
    assert {p.name for p in (run / "checkpoints").glob("*.keras")} == {
        checkpoint_name(e, values[e]) for e in kept
    }
    live = runlens.build_report(run, checkpoint_min_age=0).run(".").live
    assert live.agrees, live.disagreements


def test_a_second_fit_in_another_process_is_refused_while_the_first_trains(tmp_path):
    # A trains 6 epochs and stops after its 3rd, holding the run, until B has tried; B (TensorFlow
    # imported beside A) calls fit on the same run_dir only once A is that far.
    run, ready, go = tmp_path / "run", tmp_path / "a-ready", tmp_path / "go"
    first = spawn(
        run,
        "--epochs",
        6,
        "--pause-after",
        2,
        "--ready",
        ready,
        "--go",
        go,
        "--observed",
        tmp_path / "a.json",
    )
    second = spawn(run, "--epochs", 6, "--seed", 2, "--start-when", ready, "--observed", tmp_path / "b.json")
    try:
        out_b, err_b = second.communicate(timeout=300)
    finally:
        go.touch()
    out_a, err_a = first.communicate(timeout=300)
    assert first.returncode == 0, err_a
    assert second.returncode == 3, err_b  # a RunlensError, not a crash and not a second run
    error = err_b.strip().splitlines()[-1]
    assert error.startswith(f"Error: {run} is in use by another fit"), error
    assert f"pid {first.pid}" in error and ".runlens-fit.lock" in error and "another run_dir" in error
    assert "epoch 0" not in out_b  # B never trained
    b_pid = json.loads((tmp_path / "b.json").read_text())["pid"]
    assert not [p for p in run.rglob("*") if f".{b_pid}." in p.name]  # not even a TensorBoard file
    logs = {int(e): row for e, row in json.loads((tmp_path / "a.json").read_text())["logs"].items()}
    assert sorted(logs) == list(range(6)) and out_a.split() == [
        w for e in range(6) for w in ("epoch", str(e))
    ]
    assert_whole_run(run, logs, pid=first.pid)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every file and folder under ``folder``: inode, size, mtime and content."""
    return {
        p.relative_to(folder).as_posix(): (
            p.lstat().st_ino,
            p.lstat().st_size,
            p.lstat().st_mtime_ns,
            p.read_bytes() if p.is_file() else b"",
        )
        for p in sorted(folder.rglob("*"))
    }


def lock_is_free(run: Path) -> bool:
    """Whether a new open of the run's lock file can take the lock now (and gives it back)."""
    fd = os.open(run / ".runlens-fit.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def pause_at_end_of(epoch: int, paused: threading.Event, go: threading.Event):
    import keras

    class Pause(keras.callbacks.Callback):
        def on_epoch_end(self, e, logs=None):
            if e == epoch:
                paused.set()
                assert go.wait(300)

    return Pause()


def test_a_second_fit_in_another_thread_is_refused_and_writes_nothing(tmp_path):
    run = tmp_path / "run"
    paused, go, fits = threading.Event(), threading.Event(), {}

    def first():
        fits["first"] = bundle_fit(
            run, epochs=4, extra=[pause_at_end_of(1, paused, go)], keep_best=2, keep_last=1
        )

    thread = threading.Thread(target=first, name="first-fit")
    thread.start()
    try:
        assert paused.wait(300)
        before = snapshot(run)
        message = f"{run} is in use by another fit: another fit in this process (pid {os.getpid()}, thread 'first-fit'"
        with pytest.raises(runlens.RunlensError, match=re.escape(message)):
            bundle_fit(run, epochs=4, seed=2, keep_best=2, keep_last=1)
        assert snapshot(run) == before
    finally:
        go.set()
        thread.join(300)
    assert_whole_run(run, fits["first"].observed.logs, pid=os.getpid())
    assert lock_is_free(run)


def test_a_fit_that_raised_holds_the_run_no_longer_and_the_next_fit_trains(tmp_path):
    # Ctrl-C in a notebook: fit raises KeyboardInterrupt, Keras calls no on_train_end, and the
    # traceback (holding fit's frame) stays around for %debug.
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as interrupted:
        bundle_fit(run, epochs=5, extra=[Interrupt()], keep_best=2, keep_last=1)
    deadline = time.monotonic() + 60
    while not lock_is_free(run):  # released by the watcher: another process could train now
        assert time.monotonic() < deadline, "the lock of a fit that raised was never released"
        time.sleep(0.1)
    assert interrupted.value.__traceback__ is not None
    with pytest.warns(UserWarning, match="did not end normally"):
        again = bundle_fit(run, epochs=3, seed=2, keep_best=2, keep_last=1)
    assert_whole_run(run, again.observed.logs, pid=os.getpid())


def test_the_next_fit_in_the_process_does_not_wait_for_the_watcher(tmp_path):
    # The watcher looks every POLL_SECONDS; a fit started right after one that raised checks itself.
    run = tmp_path / "run"

    def fit_that_raises():
        fit_lock.FitLock(run).acquire(sys._getframe())
        raise RuntimeError("died mid-fit")

    for _ in range(20):
        with pytest.raises(RuntimeError):
            fit_that_raises()
        lock = fit_lock.FitLock(run)
        lock.acquire(sys._getframe())
        assert lock.held and not lock_is_free(run)
        lock.release()
        assert not lock.held and lock_is_free(run)


def test_one_callback_list_serves_fits_one_after_another(tmp_path):
    import keras

    from runlens.keras import callbacks as bundle

    run = tmp_path / "run"
    keras.utils.set_random_seed(1)
    train, validation = overfitting_data()
    model = tiny_model()
    callbacks = bundle(run, early_stopping={"patience": 10}, keep_best=1, keep_last=1)
    fit = dict(validation_data=validation, batch_size=8, verbose=0, callbacks=callbacks)
    model.fit(*train, epochs=3, **fit)
    assert lock_is_free(run)
    model.fit(*train, initial_epoch=3, epochs=5, **fit)  # continued with the same list
    assert lock_is_free(run)
    m = runlens.read_manifest(run)
    assert [a["initial_epoch"] for a in m["attempts"]] == [0, 3] and m["last_epoch"] == 4


def test_a_forked_child_does_not_keep_the_run_locked(tmp_path):
    run = tmp_path / "run"
    lock = fit_lock.FitLock(run)
    lock.acquire(sys._getframe())
    started, running = os.pipe()
    child = os.fork()
    if child == 0:  # the child outlives the fit (a data-loading worker, say)
        os.write(running, b"1")  # os.fork() returned here: the fork handlers have run
        time.sleep(60)
        os._exit(0)
    try:
        assert os.read(started, 1) == b"1"
        assert not lock_is_free(run)
        lock.release()
        assert lock_is_free(run)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(started)
        os.close(running)


def test_the_lock_file_is_never_written_through_a_link_nor_a_file_runlens_did_not_make(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    lock_file = run / ".runlens-fit.lock"
    for plant, what in (
        (lambda: lock_file.symlink_to(outside), "is a symbolic link"),
        (lambda: os.link(outside, lock_file), "is a file with 2 hard links"),
        (lambda: os.mkfifo(lock_file), "is not a regular file"),
        (lambda: lock_file.mkdir(), "is not a regular file"),
    ):
        plant()
        with pytest.raises(runlens.RunlensError, match=re.escape(f"the fit lock {lock_file} {what}")):
            fit_lock.FitLock(run).acquire(sys._getframe())
        assert outside.read_text() == "precious\n"
        lock_file.rmdir() if lock_file.is_dir() and not lock_file.is_symlink() else lock_file.unlink()
    lock_file.write_text("someone's notes\n")  # not runlens': locked, never written
    lock = fit_lock.FitLock(run)
    lock.acquire(sys._getframe())
    lock.release()
    assert lock_file.read_text() == "someone's notes\n"


def test_a_lock_file_holding_json_nested_too_deep_reads_as_an_unnamed_fit():
    """The refusal names the holder from the lock file's first 4 KiB; JSON nested there a few
    thousand deep makes json.loads raise RecursionError, which is "it did not say", not a crash."""
    assert fit_lock._describe(fit_lock.MARKER + b"[" * 4000) == "a fit (it did not say which)"
    holder = {"pid": 7, "host": "h", "thread": "t", "started_at": "now", "command": "fit"}
    assert fit_lock._describe(fit_lock.MARKER + json.dumps(holder).encode()).startswith("pid 7 on h")
