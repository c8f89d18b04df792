"""``torch.save`` files read without torch and without running their pickle.

Since torch 1.6, ``torch.save`` writes a zip whose members all sit under one folder (``archive/``
when saving to a stream, as Lightning does): ``data.pkl`` (the pickled object, tensors replaced by
persistent ids), ``data/<key>`` (one member per tensor storage, raw bytes), ``byteorder``,
``version`` and a few more, every member stored uncompressed (torch/serialization.py,
``_save``/``persistent_id``; caffe2's ``PyTorchStreamWriter``). A tensor is pickled as a call of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` whose ``storage`` is the
persistent id ``("storage", torch.<Type>Storage, key, location, numel)``.

:func:`open_torch_zip` reads ``data.pkl`` with :func:`runlens.checkpoints.safe_pickle.read_pickle`
(nothing is imported or called); :func:`scalar` turns a number or a one-element tensor of it into a
Python number by reading its storage's bytes; :func:`missing_storages` says which storages the
pickle refers to that are not in the zip with their full size.

>>> with open("epoch=3-step=16.ckpt", "rb") as f, zipfile.ZipFile(f) as zf:   # doctest: +SKIP
...     saved = open_torch_zip(zf)
...     scalar(saved.obj["callbacks"][...]["best_model_score"], saved)
0.0088580
"""

from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from runlens.checkpoints.safe_pickle import Call, Global, Persistent, PickleError, read_pickle
from runlens.checkpoints.zip_head import ZIP_ERRORS

MAX_PICKLE = 256 << 20  # a data.pkl declared larger is not read (the weights are in other members)
# storage type -> (struct code, bytes per element); bfloat16 is the top half of a float32
_STORAGES: dict[str, tuple[str, int]] = {
    "DoubleStorage": ("d", 8),
    "FloatStorage": ("f", 4),
    "HalfStorage": ("e", 2),
    "BFloat16Storage": ("bf16", 2),
    "LongStorage": ("q", 8),
    "IntStorage": ("i", 4),
    "ShortStorage": ("h", 2),
    "CharStorage": ("b", 1),
    "ByteStorage": ("B", 1),
    "BoolStorage": ("?", 1),
    "ComplexFloatStorage": ("", 8),
    "ComplexDoubleStorage": ("", 16),
    "UntypedStorage": ("", 1),
}
_REBUILD = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}
_MAX_INDEX = 1 << 62  # offsets and sizes beyond this are damage, not a tensor
_SMALL_MEMBER = 64  # bytes: kept by check_members (a scalar's storage is 1-8 bytes)


class NotTorchZip(ValueError):
    """A zip, but not one ``torch.save`` wrote (no ``<folder>/data.pkl``)."""


@dataclass
class TorchSave:
    """An open ``torch.save`` zip: its member ``prefix`` (``archive``), the object ``data.pkl``
    holds (plain data and placeholders) and the persistent ids it refers to."""

    zip: zipfile.ZipFile
    prefix: str
    obj: Any
    persistent: list[Persistent] = field(default_factory=list)
    little_endian: bool = True
    small: dict[str, bytes] = field(default_factory=dict)  # members read by check_members


def check_members(saved: TorchSave) -> str | None:
    """The first member that fails its CRC check, or None (``ZipFile.testzip``, reading each
    member once); the small ones -- a scalar tensor's storage -- are kept in ``saved.small``, so
    :func:`scalar` reads no member again (a ``save_top_k=-1`` checkpoint holds one such tensor
    per ``best_k_models`` entry). Zip errors other than a bad CRC are raised."""
    for info in saved.zip.infolist():
        try:
            with saved.zip.open(info) as member:  # the CRC is checked when the end is read
                if info.file_size <= _SMALL_MEMBER:
                    saved.small[info.filename] = member.read()
                else:
                    while member.read(1 << 20):
                        pass
        except zipfile.BadZipFile:
            return info.filename
    return None


def pickle_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The ``<folder>/data.pkl`` member (:class:`NotTorchZip` if there is none)."""
    for info in archive.infolist():
        folder, _, name = info.filename.partition("/")
        if name == "data.pkl" and folder:
            return info
    raise NotTorchZip("a zip without torch.save's data.pkl")


def open_torch_zip(archive: zipfile.ZipFile) -> TorchSave:
    """Read the pickle of a ``torch.save`` zip (:class:`NotTorchZip`, :class:`PickleError`, or a
    zip error from :data:`ZIP_ERRORS` when it cannot be read)."""
    info = pickle_member(archive)
    if info.file_size > MAX_PICKLE:
        raise PickleError(f"data.pkl declares {info.file_size:,} bytes, more than runlens reads")
    persistent: list[Persistent] = []
    obj = read_pickle(archive.read(info), persistent=persistent)
    prefix = info.filename.partition("/")[0]
    order = _small_member(archive, f"{prefix}/byteorder")
    return TorchSave(archive, prefix, obj, persistent, little_endian=order != b"big")


def read_torch_pickle(data: bytes) -> tuple[Any, list[Persistent]]:
    """The object of a ``data.pkl`` found on its own (the first member of a zip cut short)."""
    persistent: list[Persistent] = []
    return read_pickle(data, persistent=persistent), persistent


def missing_storages(saved: TorchSave) -> list[str]:
    """Storages the pickle refers to that the zip lacks or holds with fewer bytes than
    ``numel x element size`` (a save cut short or pieced together); empty when complete."""
    members = {info.filename: info.file_size for info in saved.zip.infolist()}
    problems = []
    for persistent in saved.persistent:
        storage = _storage(persistent)
        if storage is None:
            problems.append("a persistent id that is not a tensor storage")
            continue
        kind, key, numel = storage
        name = f"{saved.prefix}/data/{key}"
        size = members.get(name)
        expected = numel * _STORAGES[kind][1] if kind in _STORAGES else None
        if size is None:
            problems.append(f"storage {key} is missing")
        elif expected is not None and size != expected:
            problems.append(f"storage {key} holds {size} bytes, not {expected}")
    return sorted(set(problems))


def scalar(value: Any, saved: TorchSave) -> float | int | None:
    """``value`` as a Python number: a number, or a one-element tensor (its storage's bytes
    decoded); None for anything else or a tensor that cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if not isinstance(value, Call) or not isinstance(value.func, Global):
        return None
    if (value.func.module, value.func.name) not in _REBUILD:
        return None
    args = value.args if isinstance(value.args, tuple) else ()
    if len(args) < 4 or not isinstance(args[0], Persistent):
        return None
    storage, offset, size = _storage(args[0]), args[1], args[2]
    if storage is None or not _index(offset) or not isinstance(size, tuple) or not all(map(_index, size)):
        return None
    kind, key, numel = storage
    code, width = _STORAGES.get(kind, ("", 0))
    if not code or math.prod(size) != 1 or offset >= numel:
        return None
    raw = _read_at(saved, f"{saved.prefix}/data/{key}", offset * width, width)
    if raw is None:
        return None
    order = "<" if saved.little_endian else ">"
    if code == "bf16":
        return struct.unpack(f"{order}f", (b"\0\0" + raw) if order == "<" else (raw + b"\0\0"))[0]
    number = struct.unpack(order + code, raw)[0]
    return int(number) if isinstance(number, bool) else number


def _storage(persistent: Persistent) -> tuple[str, str, int] | None:
    """(storage type name, key, element count) of a tensor storage's persistent id, or None."""
    pid = persistent.pid
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
        return None
    kind, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(kind, Global) or not isinstance(key, str) or not _index(numel):
        return None
    if "/" in key or key in ("", ".", ".."):
        return None
    return kind.name, key, numel


def _index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_INDEX


def _read_at(saved: TorchSave, name: str, offset: int, width: int) -> bytes | None:
    if name in saved.small:
        raw = saved.small[name][offset : offset + width]
        return raw if len(raw) == width else None
    try:
        info = saved.zip.getinfo(name)
        if offset + width > info.file_size:
            return None
        with saved.zip.open(info) as member:
            member.seek(offset)
            raw = member.read(width)
    except (KeyError, *ZIP_ERRORS):
        return None
    return raw if len(raw) == width else None


def _small_member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
        return archive.read(info).strip() if info.file_size <= 64 else None
    except (KeyError, *ZIP_ERRORS):
        return None
