"""What the commands print and write, in one place (no logic of their own).

Every line the CLI prints goes through :func:`say`, which shows each line with
:func:`runlens.textsafe.shown`: names from disk (runs, files, tags, checkpoints, paths in messages)
are printed escaped -- a name's line break, escape sequence or bidi control is shown as
``\\x0a``, ``\\x1b``, ``\\u202e`` -- so no name can add a line, drive the terminal or reorder
what it shows. No other module of :mod:`runlens.cli` prints (a test holds them to it). Files
are written by :func:`write_output`, through :func:`runlens.atomic.atomic_output`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from runlens.atomic import atomic_output
from runlens.textsafe import shown, text_lines


def say(*lines: str, err: bool = False) -> None:
    """Print ``lines``, each as one line shown escaped (on stderr with ``err``)."""
    click.echo(text_lines(lines), nl=False, err=err)


def say_text(text: str) -> None:
    """Print a rendered document (a report) line by line, as :func:`say` does."""
    say(*text.removesuffix("\n").split("\n"))


if TYPE_CHECKING:
    import pandas as pd


def echo_frame(frame: pd.DataFrame) -> None:
    """Print a whole table, never elided; names in cells and headers shown escaped (before the
    columns are measured, so they stay aligned)."""
    import pandas as pd

    if frame.empty:
        say("(nothing)")
        return
    table = frame.rename(columns=shown)
    for column in table.columns:
        if isinstance(table[column].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(
            table[column]
        ):
            table[column] = [shown(value) if isinstance(value, str) else value for value in table[column]]
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        say(*table.to_string(index=False).split("\n"))


def echo_problems(problems: list[dict[str, object]]) -> None:
    """Print the problems met while reading (they are also warnings for library users)."""
    if problems:
        say("", f"{len(problems)} problem(s) while reading (every intact record was kept):", err=True)
        say(*(f"  {problem['message']}" for problem in problems), err=True)


def write_output(path: str | os.PathLike[str], text: str, *, what: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (:func:`runlens.atomic.atomic_output`)."""
    with atomic_output(path, what=what) as partial:
        partial.write_text(text, encoding="utf-8")
