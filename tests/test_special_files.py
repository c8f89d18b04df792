"""Files named like event files that are not regular files -- a FIFO, a unix socket, a device, a
symlink to one, a folder -- are problem entries with a clear reason, never opened for reading and
never a hang.

Every read runs in a subprocess with a timeout: opening a FIFO blocks until a writer comes, so a
regression must fail here, not hang the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import runlens

TIMEOUT = 60  # seconds; a read of these logdirs takes well under one


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "runlens", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(args) or 'read_scalars'} still running after {TIMEOUT} s: it hangs")


def unix_socket(path: Path) -> Path:
    """A unix socket file at ``path`` (bound in a short folder first: socket paths are short)."""
    short = Path(tempfile.mkdtemp(prefix="rl", dir="/tmp"))
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(short / "s"))
        os.rename(short / "s", path)
    finally:
        shutil.rmtree(short)
    return path


@pytest.fixture
def logdir(keras_run, copy_logdir):
    """A real Keras fit, with five things named like event files in its ``train`` folder that are
    not files: {name: what the problem must call it}."""
    path = copy_logdir(keras_run.path)
    train = path / "train"
    os.mkfifo(train / "events.out.tfevents.1.fifo")
    unix_socket(train / "events.out.tfevents.2.socket")
    os.symlink(train / "events.out.tfevents.1.fifo", train / "events.out.tfevents.3.link-to-fifo")
    os.symlink("/dev/null", train / "events.out.tfevents.4.device")
    (train / "events.out.tfevents.5.folder").mkdir()
    specials = {
        "events.out.tfevents.1.fifo": "a FIFO",
        "events.out.tfevents.2.socket": "a socket",
        "events.out.tfevents.3.link-to-fifo": "a FIFO",
        "events.out.tfevents.4.device": "a character device",
        "events.out.tfevents.5.folder": "a folder",
    }
    return path, specials


READ = textwrap.dedent("""
    import json, sys, warnings
    import runlens
    warnings.simplefilter("ignore")
    frame = runlens.read_scalars(sys.argv[1] if len(sys.argv) > 1 else {path!r})
    print(json.dumps({{"rows": len(frame), "problems": frame.attrs["problems"]}}))
""")


def test_read_scalars_lists_each_as_a_problem_and_reads_every_real_file(logdir, keras_run):
    path, specials = logdir
    result = run(code=READ.format(path=str(path)))
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    for name in specials:
        if name.endswith(".folder"):
            (path / "train" / name).rmdir()
        else:
            (path / "train" / name).unlink()
    assert got["rows"] == len(runlens.read_scalars(path))  # every real file, in full
    problems = {Path(p["path"]).name: p for p in got["problems"]}
    assert set(problems) == set(specials)
    for name, what in specials.items():
        assert problems[name]["kind"] == "not-a-file"
        assert f"not a regular file ({what})" in problems[name]["message"]


def test_a_fifo_given_as_the_path_is_a_problem_not_a_hang(tmp_path):
    fifo = tmp_path / "events.out.tfevents.1.fifo"
    os.mkfifo(fifo)
    result = run(code=READ.format(path=str(fifo)))
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["rows"] == 0
    assert [(p["kind"], p["path"]) for p in got["problems"]] == [("not-a-file", str(fifo))]


@pytest.mark.parametrize(
    "command",
    [["ls"], ["report", "--no-checkpoints"], ["report", "--format", "html"], ["export", "-o", "OUT"]],
)
def test_every_command_reports_them_and_ends(logdir, tmp_path, command):
    path, specials = logdir
    command = [str(tmp_path / "out.csv") if arg == "OUT" else arg for arg in command]
    result = run(*command, str(path))
    assert result.returncode == 0, result.stderr
    if command[0] != "export":  # (export writes rows, not problems)
        output = result.stdout + result.stderr
        for name, what in specials.items():
            assert f"{name}: not a regular file ({what})" in output


SWAP = textwrap.dedent("""
    import collections, json, os, sys, threading
    from runlens.events.files import read_event_file

    folder, real = sys.argv[1], sys.argv[2]
    target = os.path.join(folder, "events.out.tfevents.1.swapped")
    os.mkfifo(os.path.join(folder, "fifo"))
    os.link(real, os.path.join(folder, "regular"))
    done = threading.Event()

    def swap():  # the name alternates, atomically, between a link to a regular file and to a FIFO
        while not done.is_set():
            for source in ("regular", "fifo"):
                os.symlink(os.path.join(folder, source), os.path.join(folder, "next"))
                os.replace(os.path.join(folder, "next"), target)

    os.symlink(real, target)
    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    seen = collections.Counter()
    for _ in range(3000):
        read = read_event_file(target)
        seen[",".join(p.kind for p in read.problems) or ("rows" if read.rows else "nothing")] += 1
    done.set()
    print(json.dumps(seen))
""")


def test_a_name_swapped_between_a_file_and_a_fifo_is_read_or_refused_never_blocked(keras_run, tmp_path):
    # Opening checks the path before opening (stat) and what was opened (fstat of a descriptor
    # opened non-blocking): a FIFO swapped in between the two must be refused too, neither block
    # the open nor read as an empty file.
    real = next((keras_run.path / "train").glob("*tfevents*"))
    result = run(code=SWAP.replace("sys.argv[1], sys.argv[2]", f"{str(tmp_path)!r}, {str(real)!r}"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert set(seen) <= {"rows", "not-a-file"}, seen
    assert seen.get("rows") and seen.get("not-a-file"), seen
