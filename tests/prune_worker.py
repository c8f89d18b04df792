"""Real ``runlens checkpoints prune`` processes for the tests, started cheaply and killable.

Processes are forked by multiprocessing's forkserver, which imports runlens' CLI once: each prune
then starts in milliseconds instead of a second of imports, so a test can start many, run several
at once and ``kill -9`` them at random moments. Each one is the real CLI (``runlens.cli.main``),
its output written to a log file.

>>> process = start(["checkpoints", "prune", "runs/", ...], log="prune.log")   # doctest: +SKIP
>>> process.join(); process.exitcode                                          # doctest: +SKIP
0
"""

from __future__ import annotations

import multiprocessing
import os

_CONTEXT = None


def start(argv: list[str], *, log: str):
    """A started process running ``runlens <argv>`` with stdout and stderr going to ``log``."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(
            [
                "runlens.cli",
                "runlens.checkpoints.keras_hdf5",
                "runlens.checkpoints.lightning_ckpt",
                "runlens.checkpoints.hf_folder",
                "h5py",
                "prune_worker",
            ]
        )
    process = _CONTEXT.Process(target=run, args=(argv, log), daemon=True)
    process.start()
    return process


def run(argv: list[str], log: str) -> None:
    """The process' body: the CLI, as the ``runlens`` command runs it (exit code included)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from runlens.cli import main

    main(argv, prog_name="runlens")
