"""Printing helpers shared by the commands (no logic of their own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runlens.textsafe import printable

if TYPE_CHECKING:
    import pandas as pd

RUNS_HELP = (
    "Only these runs (repeatable): a name or glob as ls prints runs (exp/train) or as report does "
    "(exp, Keras' exp/train + exp/validation)."
)


def echo_frame(frame: pd.DataFrame) -> None:
    """Print a whole table, never elided."""
    import pandas as pd

    if frame.empty:
        click.echo("(nothing)")
        return
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        click.echo(printable(frame.to_string(index=False)))


def echo_problems(problems: list[dict[str, object]]) -> None:
    """Print the problems met while reading (they are also warnings for library users)."""
    if problems:
        click.echo(f"\n{len(problems)} problem(s) while reading (every intact record was kept):", err=True)
        for problem in problems:
            click.echo(printable(f"  {problem['message']}"), err=True)
