"""The ``runlens`` command line: thin click commands over the public library API.

Each command lives in a module of this package named after it and only parses options, calls the
library and prints. A :class:`runlens.errors.RunlensError` becomes one ``Error: ...`` line on stderr and
the error's exit code (2 for bad input), never a traceback.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from runlens import __version__
from runlens.errors import DamagedDataWarning, RunlensError
from runlens.textsafe import printable


class _Group(click.Group):
    """A click group that turns :class:`RunlensError` into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                # Commands list damaged files themselves (from df.attrs["problems"]).
                warnings.simplefilter("ignore", DamagedDataWarning)
                warnings.showwarning = _show_warning  # others (a CacheWarning): one line each
                return super().invoke(ctx)
        except RunlensError as exc:
            click.echo(printable(f"Error: {exc}"), err=True)
            sys.exit(exc.exit_code)


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    click.echo(printable(f"Warning: {message}"), err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runlens")
def main() -> None:
    """Find out when your training runs should have stopped.

    \b
    Examples:
        runlens ls logs/
        runlens report logs/
        runlens export logs/ -o scalars.parquet
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
