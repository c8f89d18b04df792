"""The ``runlens`` command line: thin click commands over the public library API.

Each command lives in a module of this package named after it and only parses options, calls the
library and prints. A :class:`runlens.errors.RunlensError` becomes one ``Error: ...`` line on stderr and
the error's exit code (2 for bad input), never a traceback; so does a usage error (a missing argument,
an unknown option, a bad value: exit code 2).

The command modules import the library (pandas, numpy, matplotlib) inside their commands, never at
module level: ``--help``, ``--version`` and usage errors answer without loading any of it
(tests/test_cli_startup.py).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import warnings
from typing import Any

import click

from runlens import __version__
from runlens.cli.output import say
from runlens.errors import DamagedDataWarning, RunlensError
from runlens.options import DISTRIBUTION
from runlens.textsafe import shown


class _Group(click.Group):
    """A click group that turns :class:`RunlensError` and usage errors into one line and an exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                # Commands list damaged files themselves (from df.attrs["problems"]).
                warnings.simplefilter("ignore", DamagedDataWarning)
                warnings.showwarning = _show_warning  # others (a CacheWarning): one line each
                return super().invoke(ctx)
        except click.UsageError as exc:  # from a subcommand's options or arguments
            raise _one_line(exc) from None
        except RunlensError as exc:
            say(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)


def _one_line(exc: click.UsageError) -> click.UsageError:
    """``exc`` without click's "Usage: ..." and "Try ..." lines (shown when an error has a
    context): its message, and where the help is, on the one ``Error:`` line. A group called
    without a command still prints its help (click's NoArgsIsHelpError)."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return exc
    message = " ".join(line.strip() for line in exc.format_message().splitlines()).rstrip(".")
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return click.UsageError(shown(message + where))


def run() -> None:
    """The ``runlens`` console script and ``python -m runlens``: :data:`main` with fewer garbage
    collections, then the process ends without the interpreter's teardown.

    Tearing down frees every object one by one -- the modules, and a sweep's report (a 2,000-run
    report holds about a million of them): about 0.13 s of a 1.5 s report, for nothing. So once
    ``main`` has exited, every exit handler registered after this one has run (handlers run last
    registered first: the library's -- multiprocessing, temporary folders, ``weakref.finalize`` --
    registered later, while the command ran) and stdout and stderr are flushed, the process ends
    with ``main``'s exit status via ``os._exit``. Where that cannot be done as Python would (an
    exception other than ``SystemExit``, a flush that fails, as into a closed pipe), Python ends
    the process the usual way. Tests call :data:`main` itself (click's ``CliRunner``).
    """
    # A command runs once and ends. Python's default (a collection every 700 allocations, a full
    # one every 100 of those) made full collections walk the million objects pandas, the library
    # and a sweep's report hold, several times per report: 0.15 s of a 1.5 s report, for nothing.
    # Young objects are still collected, every 100,000 allocations (worker processes inherit it).
    gc.set_threshold(100_000, 50, 1000)
    ended: dict[str, Any] = {}
    atexit.register(_end_now, ended)
    try:
        main()
    except SystemExit as exc:
        ended["status"] = exc.code
        raise


def _end_now(ended: dict[str, Any]) -> None:
    if "status" not in ended:
        return
    status = ended["status"]
    if status is None:
        status = 0
    elif not isinstance(status, int):
        status = 1  # Python printed the message already (click never exits so)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # Python reports it and picks the status itself
    os._exit(status)


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    say(f"Warning: {message}", err=True)


@click.group("runlens", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="runlens", message=f"%(prog)s %(version)s (pip package: {DISTRIBUTION})"
)
def main() -> None:
    """Find out when your training runs should have stopped.

    \b
    Examples:
        runlens ls logs/
        runlens report logs/
        runlens export logs/ -o scalars.csv
    """


# Every command module defines one click command (or group); registering it is one line here.
from runlens.cli.export import export_command  # noqa: E402
from runlens.cli.ls import ls_command  # noqa: E402

main.add_command(ls_command)
main.add_command(export_command)
from runlens.cli.checkpoints import checkpoints_group  # noqa: E402

main.add_command(checkpoints_group)
from runlens.cli.report import report_command  # noqa: E402

main.add_command(report_command)
