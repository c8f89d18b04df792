"""Objects whose pickles run code when loaded: what a crafted checkpoint holds.

Tests pickle them into ``.ckpt`` files and pickles, and check that runlens' reader runs nothing.
"""

from __future__ import annotations

import os


class SystemCall:
    """Unpickled by a plain ``pickle.load``: runs ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class Exec:
    """Unpickled by a plain ``pickle.load``: runs ``exec(code)``."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        import builtins

        return (builtins.exec, (self.code,))
