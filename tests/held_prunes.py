"""Real ``runlens`` prune processes held at a chosen moment by the tests' own hooks (runlens itself
has no such hook): each runs a small script that wraps one function, then the real CLI.

- ``start_slow``: after its third deletion (``os.unlink``) the prune waits an hour to be killed, so
  that however slow the machine, a kill lands mid-apply; it prints ``unlinked PATH`` after each
  unlink (``wait_for_unlinks`` reads them) and waits 0.05 s after each of the first two.
- ``prunes_together``: two prunes; each plans, then waits at a barrier folder until the other has
  planned too, so both call ``apply_prune`` at the same moment.

A test starts ``process = start_slow(["checkpoints", "prune", str(root), ...], tmp_path)``, then
``wait_for_unlinks(process, 3)`` returns once three files are gone and the prune waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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


def start_slow(argv: list[str], scripts: Path) -> subprocess.Popen:
    """``runlens <argv>`` started with the slow ``os.unlink`` (its script written into ``scripts``),
    stdout and stderr piped as text."""
    script = scripts / "slow_prune.py"
    script.write_text(SLOW)
    return subprocess.Popen(
        [sys.executable, str(script), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_unlinks(process: subprocess.Popen, count: int) -> None:
    """Read ``process``' output (the plan is printed first) up to its ``count``-th unlink; fail
    with its stderr if it ends before."""
    unlinked = 0
    while unlinked < count:
        line = process.stdout.readline()
        assert line, f"the prune ended before its unlink #{count}: {process.stderr.read()}"
        unlinked += line.startswith("unlinked")


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
