"""What the command line's options offer and default to, shared with the library functions behind them.

This module imports nothing but :mod:`runlens.errors`: the CLI builds its options from it, so
``runlens --help``, ``runlens CMD --help``, ``--version`` and usage errors answer without importing
pandas, numpy or matplotlib (the library modules that use these values import them from here).

Output files: the format follows the file's extension; an extension that names no format is an
error listing those that do (a text report silently written into ``report.pdf`` helps nobody).
``-`` is standard output.

>>> format_from_name("scalars.parquet", FRAME_SUFFIXES)
'parquet'
>>> format_from_name("report.pdf", REPORT_SUFFIXES)
Traceback (most recent call last):
...
runlens.errors.RunlensError: report.pdf: no output format has the extension '.pdf'; name the file .txt, .md, .markdown, .json, .html or .htm, or pass --format
"""

from __future__ import annotations

import os

from runlens.errors import RunlensError

DISTRIBUTION = "runlens-ml"  # the name to pip install (the import name and the command are runlens)
STDOUT = "-"  # as an output file name: standard output

# The frameworks whose runs are read and replayed each its own way (runlens.evals.detect): "generic" is
# a run of no known layout, one evaluation per logged value of the monitor.
FRAMEWORKS: tuple[str, ...] = ("keras", "lightning", "transformers", "generic")
CHECKPOINT_MIN_AGE = 300.0  # seconds: ModelCheckpoint may be writing a file this fresh
SWEEP_PATIENCE = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30)  # the report's EarlyStopping sweep

REPORT_FORMATS = ("text", "markdown", "json", "html")
REPORT_SORTS = ("run", "saved", "regret", "stop", "best")  # orders of the report's runs table
# Runs the report shows in detail: every run of a logdir of up to REPORT_SMALL_LOGDIR runs, else
# REPORT_DETAIL (runlens.report.build.overview.detail_runs says why).
REPORT_DETAIL = 5
REPORT_SMALL_LOGDIR = 8
REPORT_SUFFIXES = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
}
FRAME_FORMATS = ("csv", "parquet", "json")
FRAME_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".json": "json"}


def format_from_name(path: str | os.PathLike[str], suffixes: dict[str, str]) -> str:
    """The format ``suffixes`` (extension -> format) gives ``path``'s extension, or a
    :class:`RunlensError` listing the extensions there are."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in suffixes:
        return suffixes[suffix]
    named = list(suffixes)
    said = f"the extension '{suffix}'" if suffix else "no extension"
    raise RunlensError(
        f"{os.fspath(path)}: no output format has {said}; name the file "
        f"{', '.join(named[:-1])} or {named[-1]}, or pass --format"
    )


def install_hint(extra: str) -> str:
    """How to install an optional part of runlens.

    >>> install_hint("parquet")
    "pip install 'runlens-ml[parquet]'"
    """
    return f"pip install '{DISTRIBUTION}[{extra}]'"
