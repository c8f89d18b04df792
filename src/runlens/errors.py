"""The errors and warnings runlens raises.

Every problem with the user's input is a :class:`RunlensError` whose message names the file or option
at fault and what to do. The CLI prints it as one line and exits with ``exit_code``.
Damaged data that runlens reads around is reported with a :class:`DamagedDataWarning` (and, for
event files, in ``df.attrs["problems"]``), never with an exception.
"""

from __future__ import annotations


class RunlensError(Exception):
    """A problem with the input or options that the user has to fix.

    Example:
        >>> raise RunlensError("no event files under 'logs/'")
        Traceback (most recent call last):
        ...
        runlens.errors.RunlensError: no event files under 'logs/'
    """

    exit_code: int = 2


class DamagedDataWarning(UserWarning):
    """Part of a file could not be read; everything intact around it was kept."""


class CacheWarning(UserWarning):
    """A cache pack or folder was not used (damaged, or others could have written it), or could not
    be written: the event files were read instead, so the data is complete and exact."""
