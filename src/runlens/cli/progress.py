"""A "reading LOGDIR..." line on stderr, only when reading is slow and stderr is a terminal.

A timer thread writes the message once ``delay`` seconds have passed with the work still going;
the line is completed with the time taken when the work ends. Nothing is written when the work is
quick or the stream is not a terminal (a pipe, a file, a test runner).

>>> import io
>>> with delayed_notice("reading logs...", stream=io.StringIO()):   # not a terminal: silent
...     pass
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from runlens.textsafe import shown


@contextmanager
def delayed_notice(message: str, *, stream: TextIO | None = None, delay: float = 0.5) -> Iterator[None]:
    """Write ``message`` to ``stream`` (default: ``sys.stderr``) if the block outlasts ``delay`` s."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()):
        yield
        return
    lock = threading.Lock()
    state = {"done": False, "shown": False}

    def show() -> None:
        with lock:
            if not state["done"]:
                stream.write(shown(message))  # the message names the logdir: shown escaped
                stream.flush()
                state["shown"] = True

    start = time.monotonic()
    timer = threading.Timer(delay, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["shown"]:
                stream.write(f" done ({time.monotonic() - start:.1f} s)\n")
                stream.flush()
