"""Why a prune does not go ahead: refusals exit with code 1 (bad options stay RunlensError, 2)."""

from __future__ import annotations

from runlens.errors import RunlensError


class PruneRefused(RunlensError):
    """The plan or its application would be unsafe, so nothing was (or will be) deleted.

    Example:
        >>> raise PruneRefused("run 'exp1' would keep no valid checkpoint")
        Traceback (most recent call last):
        ...
        runlens.checkpoints.errors.PruneRefused: run 'exp1' would keep no valid checkpoint
    """

    exit_code = 1


class PruneLocked(PruneRefused):
    """Another prune holds the folder's lock."""
