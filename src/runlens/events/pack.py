"""The scalar cache's pack file: one logdir's decoded rows, in a layout that holds only numbers
and text -- nothing in it can run code -- and that is checked whole before any of it is used.

Layout (integers little-endian)::

    header  8s magic | u32 format | u64 index length | u32 CRC-32C of the index
            | u32 CRC-32C of the 24 bytes before it
    index   JSON (ASCII): the logdir, each file's entry (signature, when written, where its rows
            are), each chunk's tag names, per-file read states, problems and plugins, and the
            list of column buffers (dtype, count, CRC-32C), in the order they follow
    buffers the columns' raw bytes, back to back, to the end of the file

A pack is used only if its header, index and every buffer match their CRC-32C, the buffers' stated
sizes add up to exactly the file's size (checked before anything is allocated, so memory is
bounded by the file: a small file claiming 2**40 rows costs nothing), every dtype is one a column
may have, and every count, code and reference in the index is in range. Anything else raises
:class:`PackError`; nothing here raises anything else on bad bytes.

>>> import tempfile
>>> rows = Rows(*(np.array(v, dtype=d) for v, d in zip([[0], [3], [1.5], [12.5], [False]], "<i2 <i8 <f8 <f8 ?".split())))
>>> chunk = ChunkRows(["loss"], [rows], np.array([1]), [{}], [ReadState("a")], [1.5])
>>> file = tempfile.TemporaryFile(buffering=0)
>>> write_pack(file, "logs", {"logs/a": Entry((1, 2, 3, 4, 5), 9.0, 0, 0)}, [chunk])
>>> size = file.tell()
>>> entries, chunks = read_pack(file.fileno(), "logs")
>>> entries["logs/a"], chunks[0].parts[0].value
(Entry(signature=(1, 2, 3, 4, 5), written=9.0, chunk=0, position=0), array([12.5]))
>>> _ = file.truncate(size - 1)
>>> read_pack(file.fileno(), "logs")
Traceback (most recent call last):
...
runlens.events.pack.PackError: damaged (its buffers' stated sizes do not match the file's size)
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import fields
from itertools import chain, repeat
from typing import Any, BinaryIO, NamedTuple

import crc32c as _crc32c
import numpy as np

from runlens.events.files import ChunkRows
from runlens.events.problems import Problem, ProblemKind
from runlens.events.records import ReadState
from runlens.events.rows import Rows
from runlens.jsondata import loads

MAGIC = b"RLSCALAR"
FORMAT = 1  # bump when the layout or the index's shape changes: packs of other formats are replaced
_SIGNED = struct.Struct("<8sIQI")  # magic, format, index length, index CRC: what the header's CRC covers
HEADER = struct.Struct(_SIGNED.format + "I")

# The dtypes each column may have (little-endian, as written on every machine).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "tag": ("<i2", "<i4", "<i8"),
    "step": ("<i8",),
    "wall_time": ("<f8",),
    "value": ("<f8",),
    "tensor": ("|b1",),
}
_COUNTS = ("<i8",)
# Buffers per readv: 1024 on Linux and macOS, at least 16 by POSIX (no sysconf: not POSIX, no cache).
_IOV_MAX = max(16, min(os.sysconf("SC_IOV_MAX"), 1024)) if hasattr(os, "sysconf") else 16
_DTYPES = frozenset(sum(_COLUMNS.values(), _COUNTS))
_ROW_FIELDS = tuple(f.name for f in fields(Rows))
assert set(_ROW_FIELDS) == set(_COLUMNS), "a Rows column without a pack dtype"
_PROBLEM_KINDS = frozenset(kind.value for kind in ProblemKind)
_STATE_FIELDS = ("path", "problems", "offset", "ordinal", "stopped", "track_checksum", "checksum")
assert tuple(f.name for f in fields(ReadState)) == _STATE_FIELDS, "ReadState is built by position"


class PackError(Exception):
    """The pack cannot be used (the message says why); ``quiet`` for a pack of another format,
    the normal state of a cache written by another runlens version."""

    def __init__(self, message: str, *, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class Entry(NamedTuple):  # a tuple: 10,000 entries are built without a Python call each (_entries)
    """One file's entry: the signature it had when read, when the entry was written
    (``time.time()``), and where its rows are (chunk, position in the chunk)."""

    signature: tuple
    written: float
    chunk: int
    position: int


# ---------------------------------------------------------------- writing


def encode_head(index: dict[str, Any], version: int = FORMAT) -> bytes:
    """The header and the index, ready to be followed by the index's buffers."""
    text = json.dumps(index, separators=(",", ":")).encode("ascii")  # names not UTF-8 come \\u-escaped
    head = _SIGNED.pack(MAGIC, version, len(text), _crc32c.crc32c(text))
    return head + struct.pack("<I", _crc32c.crc32c(head)) + text


def write_pack(out: BinaryIO, identity: str, entries: dict[str, Entry], chunks: list[ChunkRows]) -> None:
    """Write ``entries`` (by file identity) and the ``chunks`` they point into as one pack."""
    buffers: list[np.ndarray] = []

    def buffer(array: np.ndarray) -> int:
        buffers.append(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")))
        return len(buffers) - 1

    pointed: list[dict[int, str]] = [{} for _ in chunks]  # per chunk: position -> the first entry's path
    for path, entry in entries.items():
        pointed[entry.chunk].setdefault(entry.position, path)
    index = {
        "identity": identity,
        "chunks": [_chunk_index(chunk, buffer, paths) for chunk, paths in zip(chunks, pointed)],
        "entries": {
            "paths": list(entries),
            "signatures": [list(e.signature) for e in entries.values()],
            "written": [e.written for e in entries.values()],
            "chunks": [e.chunk for e in entries.values()],
            "positions": [e.position for e in entries.values()],
        },
    }
    index["buffers"] = [[b.dtype.str, len(b), _crc32c.crc32c(memoryview(b).cast("B"))] for b in buffers]
    out.write(encode_head(index))
    for b in buffers:
        out.write(memoryview(b).cast("B"))


def _chunk_index(chunk: ChunkRows, buffer: Callable[[np.ndarray], int], pointed: dict[int, str]) -> dict:
    """A chunk's part of the index. A state's path the same as the path of the entry pointing to it
    (nearly always) is left out (null), and each different set of plugins is listed once: a sweep's
    index is then a third smaller, and faster to load."""
    states = chunk.states
    sets: dict[tuple, int] = {}
    return {
        "tags": chunk.tags,
        "counts": buffer(np.asarray(chunk.counts, dtype=np.int64)),
        "parts": [[buffer(getattr(part, name)) for name in _ROW_FIELDS] for part in chunk.parts],
        "paths": [None if pointed.get(i) == s.path else s.path for i, s in enumerate(states)],
        "offsets": [s.offset for s in states],
        "ordinals": [s.ordinal for s in states],
        "checksums": [s.checksum for s in states],
        "stopped": [s.stopped for s in states],
        "tracked": [s.track_checksum for s in states],
        "problems": [
            [i, p.path, p.kind.value, p.offset, p.message, p.count]
            for i, s in enumerate(states)
            for p in s.problems
        ],
        "plugins": [sets.setdefault(tuple(plugins.items()), len(sets)) for plugins in chunk.plugins],
        "plugin_sets": [[list(pair) for pair in plugins] for plugins in sets],
        "first_wall_times": chunk.first_wall_times,
    }


# ---------------------------------------------------------------- reading


def read_pack(fd: int, identity: str) -> tuple[dict[str, Entry], list[ChunkRows]]:
    """The entries and chunks of the pack open as ``fd`` (read from its start), written for the
    logdir ``identity``; :class:`PackError` unless every check passes (see the module docstring)."""
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    head = _read(fd, HEADER.size)
    magic, version, index_size, index_crc, head_crc = HEADER.unpack(head)
    if magic != MAGIC or _crc32c.crc32c(head[: _SIGNED.size]) != head_crc:
        raise PackError("damaged (not a runlens pack, or its header is damaged)")
    if version != FORMAT:
        raise PackError(f"written in pack format {version}, not {FORMAT}", quiet=True)
    if index_size > size - HEADER.size:
        raise PackError(f"damaged (its index of {index_size} bytes is longer than the file)")
    text = _read(fd, index_size)
    if _crc32c.crc32c(text) != index_crc:
        raise PackError("damaged (the index's checksum does not match)")
    try:
        index = loads(text)
    except ValueError as exc:  # a CRC-valid index is one runlens wrote; be sure
        raise PackError(f"damaged (its index is not JSON: {exc})") from None
    _need(isinstance(index, dict), "index")
    if index.get("identity") != identity:
        raise PackError("damaged (it was written for another logdir)")
    arrays = _read_buffers(fd, index.get("buffers"), size - HEADER.size - index_size)
    chunks = [_chunk(chunk, arrays) for chunk in _typed(index.get("chunks"), {dict}, "chunks")]
    entries = _entries(index.get("entries"), chunks)
    for path, entry in entries.items():  # a path left out: that of the first entry pointing there
        state = chunks[entry.chunk].states[entry.position]
        if state.path is None:
            state.path = path
    _need(all(state.path is not None for chunk in chunks for state in chunk.states), "path")
    return entries, chunks


def _read(fd: int, size: int) -> bytearray:
    data = bytearray(size)  # size is at most the file's
    _read_into(fd, [memoryview(data)])
    return data


def _read_buffers(fd: int, specs: Any, available: int) -> list[np.ndarray]:
    """Every buffer, after checking that their stated sizes add up to the bytes ``available``
    (so no allocation exceeds the file), each read into its own array (the frame's assembly then
    frees them one by one) and matched with its CRC-32C."""
    stated = 0
    for spec in _typed(specs, {list}, "buffers"):
        _need(len(spec) == 3, "buffer")
        dtype, count, crc = spec
        _need(isinstance(dtype, str) and dtype in _DTYPES, "dtype")
        _need(_is_int(count) and count >= 0 and _is_int(crc) and 0 <= crc < 2**32, "buffer")
        stated += count * np.dtype(dtype).itemsize
    if stated != available:
        raise PackError("damaged (its buffers' stated sizes do not match the file's size)")
    arrays = [np.empty(count, dtype=dtype) for dtype, count, _ in specs]
    views = [memoryview(array).cast("B") for array in arrays]
    for start in range(0, len(views), _IOV_MAX):  # one system call for many columns
        _read_into(fd, views[start : start + _IOV_MAX])
    for view, (_, _, crc) in zip(views, specs):
        if _crc32c.crc32c(view) != crc:
            raise PackError("damaged (a column's checksum does not match)")
    return arrays


def _read_into(fd: int, views: list[memoryview]) -> None:
    """Fill ``views`` from ``fd``, in order."""
    views = [view for view in views if len(view)]
    while views:
        got = os.readv(fd, views)
        if not got:
            raise PackError("damaged (truncated)")
        while views and got >= len(views[0]):
            got -= len(views.pop(0))
        if views:
            views[0] = views[0][got:]


def _chunk(chunk: dict, arrays: list[np.ndarray]) -> ChunkRows:
    tags = _typed(chunk.get("tags"), {str}, "tags")
    counts = _array(chunk.get("counts"), arrays, _COUNTS)
    files = len(counts)
    parts = []
    for refs in _typed(chunk.get("parts"), {list}, "parts"):
        _need(len(refs) == len(_ROW_FIELDS), "part")
        columns = [_array(ref, arrays, _COLUMNS[name]) for ref, name in zip(refs, _ROW_FIELDS)]
        _need(len({len(c) for c in columns}) == 1, "part lengths")
        part = Rows(*columns)
        unsigned = part.tag.view(part.tag.dtype.str.replace("i", "u"))  # a negative code becomes huge
        _need(unsigned.max(initial=0) < len(tags), "tag codes")
        _need(part.tensor.view(np.uint8).max(initial=0) <= 1, "tensor flags")
        parts.append(part)
    rows = sum(len(p.tag) for p in parts)
    _need(bool(((counts >= 0) & (counts <= rows)).all()) and int(counts.sum()) == rows, "counts")
    paths = _typed(chunk.get("paths"), {str, type(None)}, "paths", files)
    offsets, ordinals = _ints(chunk.get("offsets"), files), _ints(chunk.get("ordinals"), files)
    checksums = _ints(chunk.get("checksums"), files, high=2**32)
    stopped = _typed(chunk.get("stopped"), {bool}, "flags", files)
    tracked = _typed(chunk.get("tracked"), {bool}, "flags", files)
    problems = [[] for _ in paths]
    states = list(map(ReadState, paths, problems, offsets, ordinals, stopped, tracked, checksums))
    for problem in _typed(chunk.get("problems"), {list}, "problems"):
        _need(len(problem) == 6, "problem")
        at, path, kind, offset, message, count = problem
        _need(
            _is_int(at) and 0 <= at < files and _is_int(count) and (offset is None or _is_int(offset)),
            "problem",
        )
        _need(isinstance(path, str) and isinstance(kind, str) and kind in _PROBLEM_KINDS, "problem")
        _need(isinstance(message, str), "problem")
        states[at].problems.append(Problem(path, kind, offset, message, count))
    sets = []
    for pairs in _typed(chunk.get("plugin_sets"), {list}, "plugins"):
        _typed(pairs, {list}, "plugins")
        _need(
            all(
                len(p) == 2 and _is_int(p[0]) and 0 <= p[0] < len(tags) and isinstance(p[1], str)
                for p in pairs
            ),
            "plugins",
        )
        sets.append(dict(pairs))
    plugins = [sets[k] for k in _ints(chunk.get("plugins"), files, high=len(sets))]  # shared: read only
    first = _typed(chunk.get("first_wall_times"), {float, type(None)}, "first wall times", files)
    return ChunkRows(tags, parts, counts, plugins, states, first)


def _entries(index: Any, chunks: list[ChunkRows]) -> dict[str, Entry]:
    _need(isinstance(index, dict), "entries")
    paths = _typed(index.get("paths"), {str}, "entries")
    count = len(paths)
    signatures = _typed(index.get("signatures"), {list}, "signatures", count)
    _need(set(map(type, chain.from_iterable(signatures))) <= {int, str, type(None)}, "signatures")
    written = _typed(index.get("written"), {float}, "entries", count)
    numbers = _ints(index.get("chunks"), count, high=len(chunks))
    positions = _ints(index.get("positions"), count)
    sizes = [len(chunk.counts) for chunk in chunks]
    _need(all(map(int.__lt__, positions, map(sizes.__getitem__, numbers))), "entries")
    values = zip(map(tuple, signatures), written, numbers, positions)
    return dict(zip(paths, map(tuple.__new__, repeat(Entry), values)))  # Entry(*v), without a Python call


def _array(ref: Any, arrays: list[np.ndarray], dtypes: tuple[str, ...]) -> np.ndarray:
    _need(_is_int(ref) and 0 <= ref < len(arrays) and arrays[ref].dtype.str in dtypes, "column")
    return arrays[ref]


def _typed(value: Any, types: set[type], what: str, length: int | None = None) -> list:
    """``value`` if it is a list (of ``length`` items) whose items are all of ``types``."""
    _need(isinstance(value, list) and (length is None or len(value) == length), what)
    _need(set(map(type, value)) <= types, what)  # map, not a loop: 10,000 items cost 0.1 ms
    return value


def _ints(value: Any, length: int, *, high: int = 2**63) -> list[int]:
    """``value`` if it is a list of ``length`` ints from 0 to ``high`` (exclusive)."""
    _typed(value, {int}, "numbers", length)
    _need(not value or (min(value) >= 0 and max(value) < high), "numbers")
    return value


def _is_int(value: Any) -> bool:
    return type(value) is int  # not bool


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise PackError(f"damaged (its index holds a malformed {what})")
