"""Files that appear whole or not at all: every file runlens writes (``report -o``, ``export -o``,
``runlens.json``, the bundle's ``history.csv`` rewrite) goes through :func:`atomic_output`.

The content is written under a temporary name in the target's folder (``.NAME.XXXXXXXX.partial``,
created exclusively, with the permissions a plain ``open(path, "w")`` gives under the umask),
fsynced, and renamed over the target only once complete; the folder is fsynced after the rename.
A write that fails midway (full disk, an exception while rendering) removes the temporary file and
leaves what was at the target untouched: a reader, or a crash, sees the old file or the new one,
never a mix. The target name itself is replaced: a symlink there is replaced by the file, never
written through.

>>> with atomic_output("report.txt") as partial:          # doctest: +SKIP
...     partial.write_text("done\\n")
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from runlens.errors import RunlensError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, what: str = "the output") -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; on success it replaces ``path``.

    An ``OSError`` (opening, writing, renaming) becomes a :class:`RunlensError` naming ``path``
    and ``what`` was written; any exception removes the temporary file first.
    """
    target = Path(path)
    try:
        partial = _create_partial(target)
    except OSError as exc:
        raise _cannot_write(target, what, exc) from None
    try:
        yield partial
        fsync_path(partial)
        os.replace(partial, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        if isinstance(exc, OSError):
            raise _cannot_write(target, what, exc) from None
        raise
    fsync_path(target.parent)


def _create_partial(target: Path) -> Path:
    """A new, empty file beside ``target``, created exclusively (never an existing file or link)."""
    for _ in range(100):
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return partial
    raise FileExistsError(f"no free temporary name beside {target}")


def _cannot_write(target: Path, what: str, exc: OSError) -> RunlensError:
    why = exc.strerror or exc
    return RunlensError(
        f"{target}: cannot write {what} ({why}); nothing was changed there, pick another path"
    )


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a folder (after a rename in it); best effort where the OS cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open folders; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
