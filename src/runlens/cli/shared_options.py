"""Options more than one command takes, declared once so that they offer, check and say the same
everywhere (values and vocabularies from :mod:`runlens.options` and :mod:`runlens.arguments`, which
import nothing heavy: ``--help`` stays fast).

Each is a click decorator, or a function of what differs between the commands (the help text,
the formats) that returns one:

>>> import click
>>> @click.command()
... @MODE
... @output_option("Write here.")
... def command(mode: str, output: str | None) -> None: ...
>>> [param.name for param in command.params]
['mode', 'output']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import click

from runlens.arguments import Mode
from runlens.options import CHECKPOINT_MIN_AGE, FRAMEWORKS

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

MODE: Decorator = click.option(
    "--mode",
    type=click.Choice(get_args(Mode)),
    default="auto",
    show_default=True,
    help="Whether lower or higher is better; auto goes by the name, as Keras does.",
)
RUNS: Decorator = click.option(
    "--runs",
    multiple=True,
    help="Only these runs (repeatable): a name or glob as ls prints runs (exp/train) or as report does "
    "(exp, Keras' exp/train + exp/validation).",
)
CACHE: Decorator = click.option(
    "--cache", is_flag=True, help="Keep decoded files in ~/.cache/runlens: re-reads parse only what changed."
)


def framework_option(help: str) -> Decorator:
    """``--framework``: auto (each run by its layout) or one of :data:`runlens.options.FRAMEWORKS`."""
    return click.option(
        "--framework", type=click.Choice(("auto", *FRAMEWORKS)), default="auto", show_default=True, help=help
    )


def min_age_option(help: str) -> Decorator:
    """``--min-age SECONDS``: checkpoints modified more recently are left as they are."""
    return click.option(
        "--min-age",
        type=click.FloatRange(min=0),
        default=CHECKPOINT_MIN_AGE,
        show_default=True,
        metavar="SECONDS",
        help=help,
    )


def format_option(formats: tuple[str, ...], default: str) -> Decorator:
    """``--format`` (the parameter ``fmt``): one of ``formats``; ``default`` says what is used without it."""
    return click.option(
        "--format", "fmt", type=click.Choice(formats), help=f"Output format.  [default: {default}]"
    )


def output_option(help: str, *, required: bool = False) -> Decorator:
    """``-o/--output``: a file to write, ``-`` for standard output (:data:`runlens.options.STDOUT`)."""
    return click.option(
        "-o", "--output", required=required, type=click.Path(dir_okay=False, allow_dash=True), help=help
    )
