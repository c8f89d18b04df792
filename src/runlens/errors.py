"""The errors and warnings runlens raises.

Every problem with the user's input is a :class:`RunlensError` whose message names the file or option
at fault and what to do. The CLI prints it as one line and exits with ``exit_code``.
Damaged data that runlens reads around is reported with a :class:`DamagedDataWarning` (and, for
event files, in ``df.attrs["problems"]``), never with an exception.
"""

from __future__ import annotations

from runlens.textsafe import shown


class RunlensError(Exception):
    """A problem with the input or options that the user has to fix.

    The message is one printable line: names from disk in it are shown escaped
    (:func:`runlens.textsafe.shown`), so no file name can drive the terminal a traceback or the
    CLI's ``Error:`` line is printed to, nor add a line to it.

    Example:
        >>> raise RunlensError("no event files under 'logs/'")
        Traceback (most recent call last):
        ...
        runlens.errors.RunlensError: no event files under 'logs/'
        >>> str(RunlensError("logs\\n== forged: not found"))
        'logs\\\\x0a== forged: not found'
    """

    exit_code: int = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(shown(message), *args)


class DamagedDataWarning(UserWarning):
    """Part of a file could not be read; everything intact around it was kept."""


class RunlensWarning(UserWarning):
    """Something was left out of a result (a run that gave no evaluation, say); the message says
    what and what to pass to get it."""


class CacheWarning(RunlensWarning):
    """A cache pack or folder was not used (damaged, or others could have written it), or could not
    be written: the event files were read instead, so the data is complete and exact."""
