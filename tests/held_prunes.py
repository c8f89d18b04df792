"""Real ``runlens`` prune processes held at a chosen moment by the tests' own hooks (runlens itself
has no such hook): each runs a small script that wraps one function, then the real CLI.

- ``held_mid_prune``: after its third deletion (``os.unlink``) the prune waits an hour to be
  killed, so that however slow the machine, a kill lands mid-apply; it prints ``unlinked PATH``
  after each unlink and waits 0.05 s after each of the first two.
- ``prunes_together``: two prunes; each plans, then waits at a barrier folder until the other has
  planned too, so both call ``apply_prune`` at the same moment.

In a test: ``with held_mid_prune(["checkpoints", "prune", str(root), ...], tmp_path) as process:``
runs its block while three files are gone and the prune waits; after it, the prune is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SLOW = textwrap.dedent("""
    import os, sys, time
    real_unlink, unlinked = os.unlink, []
    def slow_unlink(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        unlinked.append(path)
        print("unlinked", path, flush=True)
        time.sleep(0.05 if len(unlinked) < 3 else 3600)
    os.unlink = slow_unlink
    from runlens.cli import main
    main(sys.argv[1:])
""")

TOGETHER = textwrap.dedent("""
    import os, sys, time
    import runlens.checkpoints.prune as prune  # the CLI imports apply_prune from here when it runs
    barrier, me = sys.argv[1], sys.argv[2]
    real = prune.apply_prune
    def together(*args, **kwargs):
        open(os.path.join(barrier, me), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
            time.sleep(0.0005)
        return real(*args, **kwargs)
    prune.apply_prune = together
    from runlens.cli import main
    main(sys.argv[3:])
""")


@contextmanager
def held_mid_prune(argv: list[str], scripts: Path) -> Iterator[subprocess.Popen]:
    """``runlens <argv>`` started with the slow ``os.unlink`` (its script written into
    ``scripts``), held after its third unlink while the with-block runs, then killed with SIGKILL
    (and on any error in the block); it yields the process (stdout and stderr piped as text)."""
    script = scripts / "slow_prune.py"
    script.write_text(SLOW)
    process = subprocess.Popen(
        [sys.executable, str(script), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        unlinked = 0
        while unlinked < 3:  # the plan is printed first, then one line per unlink
            line = process.stdout.readline()
            assert line, f"the prune ended before its third unlink: {process.stderr.read()}"
            unlinked += line.startswith("unlinked")
        yield process
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()


def prunes_together(commands: list[list[str]], barrier: Path, scripts: Path) -> list[tuple[int, str, str]]:
    """One process for each of the two ``runlens`` argvs in ``commands``, started at once and held
    at ``barrier`` (an empty folder; each leaves a file there) after planning until both have
    planned; (exit code, stdout, stderr) of each, in order, once both have ended."""
    assert len(commands) == 2, "the barrier waits for two"
    script = scripts / "together.py"
    script.write_text(TOGETHER)
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(barrier), str(i), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, argv in enumerate(commands)
    ]
    return [(p.wait(timeout=300), *p.communicate()) for p in processes]
