"""Where event files live: run discovery and opening, on local disks or any fsspec filesystem.

A *run* is a folder holding event files (any file whose name contains ``tfevents``), named by its
path relative to the logdir with '/' separators, '.' for the logdir itself -- as TensorBoard names
runs. ``runs=`` selects folders by the names runlens prints (:func:`run_names`). A path with a
scheme (``s3://``, ``gs://``, ``memory://``, ...) is read through fsspec, streamed (never
downloaded whole to disk); ``storage_options`` are passed to its filesystem.

Only regular files are read. Anything else named like an event file -- a FIFO (opening it would
block until a writer came), a socket, a device, a symlink to one of those, a folder named like a
writer's event file -- is still listed, so that reading it reports a ``not-a-file`` problem
instead of blocking or vanishing silently (:func:`open_binary` refuses it).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from runlens.errors import RunlensError
from runlens.events.problems import Problem, ProblemKind
from runlens.options import install_hint

_STAMP = re.compile(r"tfevents\.(\d+)")
_DIGITS = re.compile(r"(\d+)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
KERAS_SPLITS = ("train", "validation")  # Keras' TensorBoard callback writes RUN/train and RUN/validation
_LISTED_RUNS = 12  # an error about runs= lists this many of the names there are
# A folder is listed as a (not-a-file) event file only when named as writers name event files: a
# run folder may well be called "tfevents_study", but not "events.out.tfevents.1699.host".
_WRITER_NAME = "events.out.tfevents."


@dataclass(frozen=True)
class EventFile:
    """One event file: its run, where it is (an OS path or a URL), and what identifies this version
    of it (local: device, inode, size, mtime and ctime in ns; remote: size and ETag/mtime)."""

    run: str
    path: str
    size: int
    signature: tuple


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for paths fsspec should open (``s3://bucket/logs``), False for local paths."""
    return bool(_SCHEME.match(str(path))) and not str(path).startswith("file://")


def find_event_files(
    path: str | os.PathLike[str],
    *,
    runs: str | Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[EventFile]:
    """Every event file under ``path`` (a logdir or one event file), grouped by run, each run's
    files in the order their names say they were written (:func:`written_order`; a read orders
    them again by their first record's wall time).

    ``runs`` keeps only the folders one of whose :func:`run_names` equals or glob-matches one of
    the given names or globs (``*`` also matches ``/``), before any file is read; a name or glob
    that selects nothing is a :class:`RunlensError` listing the names there are. Local symlinked
    folders are followed (people link runs together to compare them), each real folder once. A
    file given as ``path`` must be an event file (see :func:`_check_event_file`).

    >>> find_event_files("no/such/dir")
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: no/such/dir: no such file or folder; give a logdir or an event file
    """
    text = str(path)
    found = list(
        _find_remote(text, storage_options)
        if is_url(text)
        else _find_local(Path(text.removeprefix("file://")))
    )
    if not found:
        raise RunlensError(f"{path}: no event files (files named '*tfevents*') in it or below it")
    patterns = name_patterns(runs)
    if patterns is not None:
        found = _select_runs(found, patterns, path)
    found.sort(key=lambda f: f.run)
    return [found[i] for i in written_order(found)]


def run_names(folder: str) -> tuple[str, ...]:
    """The names a run folder answers to in ``runs=``: its own, as :func:`runlens.read_scalars` and
    ``runlens ls`` print it, and for Keras' ``train``/``validation`` folders also the run
    :func:`runlens.read_epochs`, :func:`runlens.read_hparams` and ``runlens report`` merge them into
    (``"."`` for a logdir that is one Keras run). So ``runs="exp1"`` selects all of Keras' run
    ``exp1`` everywhere, and ``runs="exp1/train"`` only its training folder.

    >>> run_names("exp1/train"), run_names("exp1"), run_names("validation")
    (('exp1/train', 'exp1'), ('exp1',), ('validation', '.'))
    """
    head, _, last = folder.rpartition("/")
    return (folder, head or ".") if last in KERAS_SPLITS else (folder,)


def _select_runs(found: list[EventFile], patterns: tuple[str, ...], path: object) -> list[EventFile]:
    """The files of the folders ``patterns`` select (see :func:`run_names`); every pattern must
    select something, or the error lists the names there are."""
    names = {run: run_names(run) for run in {f.run for f in found}}
    used: set[str] = set()
    chosen: set[str] = set()
    for run, aliases in names.items():
        hits = {p for p in patterns if any(matches(name, (p,)) for name in aliases)}
        if hits:
            chosen.add(run)
            used |= hits
    unmatched = [p for p in patterns if p not in used]
    if unmatched:
        known = sorted({name for aliases in names.values() for name in aliases})
        listed = ", ".join(known[:_LISTED_RUNS]) + (
            f", ... ({len(known) - _LISTED_RUNS} more)" if len(known) > _LISTED_RUNS else ""
        )
        raise RunlensError(
            f"{path}: no run matches runs={', '.join(map(repr, unmatched))}; the runs are: {listed}"
        )
    return [f for f in found if f.run in chosen]


def written_order(files: Sequence[EventFile], *, opened: Sequence[float | None] | None = None) -> list[int]:
    """The positions of ``files`` (sorted by run) in the order they were written, run by run: by
    when each file's writer opened it -- the wall time of its first record, where ``opened`` gives
    it (a fraction of a second tells apart files some writers open in one second; TF's writer
    stamps that record in whole seconds) -- then by the creation time in the name
    (``events.out.tfevents.<time>.<host>.<pid>.<counter>...``), then by the name with its numbers
    compared as numbers (counter 8 before counter 10, which decides between two files TF's writer
    opened in one second). The one place runlens decides the order of a run's files.

    >>> names = ["r/events.out.tfevents.20.h.1.10", "r/events.out.tfevents.20.h.1.8", "r/x.tfevents.1"]
    >>> written_order([EventFile("r", name, 0, ()) for name in names])
    [2, 1, 0]
    >>> written_order([EventFile("r", name, 0, ()) for name in names], opened=[5.0, 30.0, 40.0])
    [0, 1, 2]
    """

    def key(i: int) -> tuple:
        name = files[i].path.rsplit("/", 1)[-1]
        found = _STAMP.search(name)
        stamp = int(found.group(1)) if found else 0
        natural = [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]
        first = opened[i] if opened is not None else None
        return (first if first is not None else float(stamp), stamp, natural)

    order = list(range(len(files)))
    start = 0
    for end in range(1, len(files) + 1):
        if end == len(files) or files[end].run != files[start].run:
            if end - start > 1:  # a sweep has thousands of runs of one file: nothing to sort there
                order[start:end] = sorted(order[start:end], key=key)
            start = end
    return order


def _find_local(root: Path) -> Iterable[EventFile]:
    if root.is_file():
        _check_event_file(str(root), partial(open, root, "rb"))
        yield _local_file(".", str(root))
        return
    if not root.is_dir():
        if not os.path.exists(root):
            raise RunlensError(f"{root}: no such file or folder; give a logdir or an event file")
        yield _local_file(".", str(root))  # a FIFO, socket, device...: a problem when opened
        return
    seen: set[tuple[int, int]] = set()
    folders = [(str(root), ".")]
    while folders:
        folder, run = folders.pop()
        try:
            st = os.stat(folder)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:  # a symlink cycle or a second link to the same run
            continue
        seen.add((st.st_dev, st.st_ino))
        for entry in entries:
            try:
                is_folder = entry.is_dir()  # follows symlinks
            except OSError:
                is_folder = False
            if is_folder:
                folders.append((entry.path, entry.name if run == "." else f"{run}/{entry.name}"))
            if "tfevents" in entry.name and (not is_folder or entry.name.startswith(_WRITER_NAME)):
                yield _local_file(run, entry.path)


def _local_file(run: str, path: str) -> EventFile:
    try:
        st = os.stat(path)
    except OSError:  # a broken link: reported as unreadable when read
        return EventFile(run, path, 0, ())
    return EventFile(
        run, path, st.st_size, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    )


def _check_event_file(path: str, opener: Callable[[], BinaryIO]) -> None:
    """Refuse a file given as the logdir that is not an event file: one named like an event file
    (TensorBoard's own test: ``tfevents`` in the name) is read, damage and all; any other must start
    with a TFRecord frame whose length CRC holds (an event file renamed). Without this check any file
    would be read as a damaged event file and give an empty frame."""
    if "tfevents" in PurePosixPath(path).name:
        return
    try:
        with opener() as stream:
            head = stream.read(12)
    except OSError as exc:
        raise RunlensError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    from runlens.events.tfrecord import masked_crc  # numpy: not imported to list files (read_ahead)

    if len(head) == 12 and masked_crc(head[:8]) == int.from_bytes(head[8:], "little"):
        return
    raise RunlensError(
        f"{path}: not an event file (its name has no 'tfevents' and it does not start with a TFRecord); "
        "give a logdir or a TensorBoard event file"
    )


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path within it."""
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise RunlensError(f"{url}: reading URLs needs fsspec ({install_hint('remote')})") from exc
    try:
        return url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise RunlensError(
            f"{url}: no filesystem for this URL ({exc}); install its fsspec backend, e.g. s3fs"
        ) from exc


def _find_remote(url: str, storage_options: dict[str, Any] | None) -> Iterable[EventFile]:
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    try:
        if fs.isfile(root):
            _check_event_file(url, partial(fs.open, root, "rb"))
            listing = {root: fs.info(root)}
            base = str(PurePosixPath(root).parent)
        else:
            listing = fs.find(root, detail=True)
            base = root
    except FileNotFoundError:
        listing = None
    if not listing and not fs.exists(root):
        raise RunlensError(f"{url}: no such file or folder; give a logdir or an event file")
    for name, info in (listing or {}).items():
        if "tfevents" not in PurePosixPath(name).name or info.get("type") == "directory":
            continue
        folder = PurePosixPath(name).parent
        run = "." if str(folder) == base else folder.relative_to(base).as_posix()
        version = (
            info.get("ETag")
            or info.get("etag")
            or info.get("mtime")
            or info.get("LastModified")
            or info.get("created")
        )
        yield EventFile(
            run, fs.unstrip_protocol(name), int(info.get("size") or 0), (info.get("size"), str(version))
        )


class NotAFile(OSError):
    """A path named like an event file that is not a regular file (``what`` it is instead)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not a regular file ({what})")
        self.what = what


def open_binary(path: str, storage_options: dict[str, Any] | None = None) -> BinaryIO:
    """A binary stream of an event file, local or remote (streamed in blocks, not downloaded).

    A local path must be a regular file, else :class:`NotAFile` is raised: it is checked before
    opening (a FIFO or a device is never opened) and again on what was opened, which is opened
    non-blocking, so that a FIFO put in its place in between cannot block either (``O_NONBLOCK``
    changes nothing for reading a regular file).
    """
    if is_url(path):
        fs, inner = filesystem(path, storage_options)
        return fs.open(inner, "rb", block_size=1 << 22)
    local = path.removeprefix("file://")
    _check_regular(os.stat(local).st_mode)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(local, flags)
    try:
        _check_regular(os.fstat(fd).st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_NOT_FILES = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _check_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotAFile(next((what for test, what in _NOT_FILES if test(mode)), "a special file"))


def open_problem(path: str, exc: OSError) -> Problem:
    """The problem to report for an event file :func:`open_binary` (or reading it) failed on.

    >>> open_problem("x", NotAFile("a FIFO")).message
    'x: not a regular file (a FIFO); skipped'
    """
    if isinstance(exc, NotAFile):
        return Problem(
            path, ProblemKind.NOT_A_FILE, None, f"{path}: not a regular file ({exc.what}); skipped"
        )
    why = getattr(exc, "strerror", None) or exc
    return Problem(path, ProblemKind.UNREADABLE, None, f"{path}: cannot be read ({why}); skipped")


def name_patterns(selection: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a*"`` or ``["a", "b*"]`` as a tuple of patterns; None selects everything."""
    if selection is None:
        return None
    return (selection,) if isinstance(selection, str) else tuple(selection)


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``name`` equals or glob-matches one of ``patterns`` (``*`` also matches ``/``)."""
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)
