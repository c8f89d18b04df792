"""HF Trainer ``checkpoint-<global_step>/`` folders: is this one the Trainer wrote, and is it whole?

``Trainer._save_checkpoint`` (transformers/trainer.py) writes into ``OUTPUT/checkpoint-<step>/`` the
model (``model.safetensors``, sharded as ``model-0000k-of-0000n.safetensors`` + an index, or
``pytorch_model.bin`` without safetensors; ``adapter_model.*`` for PEFT), ``training_args.bin``,
``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth`` and, last, ``trainer_state.json``
(``TrainerState.save_to_json``: plain JSON with ``global_step``, ``epoch``, ``log_history``,
``best_metric``, ``best_global_step``, ``best_model_checkpoint``). The verdict on a folder, from
its content alone (no ``.bin``/``.pt``/``.pth`` file is ever unpickled):

- ``trainer_state.json`` parses into such a dict: an HF checkpoint, valid when its weights are
  complete -- every ``.safetensors`` file's header parses and its tensors exactly fill the file
  (the format's own rule, safetensors' ``Metadata::validate``), a ``pytorch_model.bin`` is a zip
  whose members pass their CRC checks -- and every other torch file (``optimizer.pt``, ...) is a
  zip with its table of contents (not cut short);
- ``trainer_state.json`` cut short (text that starts like the Trainer's JSON): an HF checkpoint
  cut short, invalid;
- no ``trainer_state.json`` but the Trainer's other files, an empty folder, weights in a layout
  runlens does not check (DeepSpeed ``global_step*/``, FSDP sub-folders), or a folder that
  changes while it is read: cannot tell -- reported, never deleted;
- anything else (a folder of ``.keras`` files that happens to be called ``checkpoint-3``): not a
  checkpoint; :func:`runlens.read_checkpoints` then looks inside it as in any folder.

>>> inspect_hf_folder("checkpoint-12", dir_fd=output_fd)[1].valid      # doctest: +SKIP
True
"""

from __future__ import annotations

import math
import os
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from runlens.checkpoints.folders import FolderIdentity, folder_identity
from runlens.checkpoints.nofollow import DIR_FLAGS, open_regular
from runlens.checkpoints.torch_zip import NotTorchZip, pickle_member
from runlens.checkpoints.validate import Validity, inspect_held
from runlens.checkpoints.zip_head import ZIP_ERRORS
from runlens.jsondata import loads

TRAINER_STATE = "trainer_state.json"
_WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_TRAINER_FILES = {
    "training_args.bin",
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "rng_state.pth",
    *_WEIGHTS,
    *_INDEXES,
}
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")
_STATE_KEYS = ('"log_history"', '"global_step"', '"best_model_checkpoint"', '"best_metric"')
_UNDETERMINED = "cannot tell: "  # a problem that leaves it undetermined rather than invalid
MAX_JSON = 256 << 20  # trainer_state.json grows with log_history; larger files are not read
MAX_HEADER = 100_000_000  # safetensors' own limit on its JSON header
# bits per element of each safetensors dtype (safetensors 0.8's Dtype: 22 of them)
_SAFETENSORS_BITS = {
    "F4": 4,
    **dict.fromkeys(("F6_E2M3", "F6_E3M2"), 6),
    **dict.fromkeys(("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"), 8),
    **dict.fromkeys(("U16", "I16", "F16", "BF16"), 16),
    **dict.fromkeys(("U32", "I32", "F32"), 32),
    **dict.fromkeys(("U64", "I64", "F64", "C64"), 64),
}


@dataclass(frozen=True)
class TrainerContent:
    """What ``trainer_state.json`` says: the step and fractional epoch, the metrics logged at that
    step (evaluation and training logs merged, Trainer keys: ``eval_loss``, ``loss``, ...), and the
    Trainer's best (``best_metric_name``: the logged key whose value at ``best_global_step`` is
    ``best_metric``, when exactly one is)."""

    global_step: int
    epoch: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    best_model_checkpoint: str | None = None
    best_metric: float | None = None
    best_global_step: int | None = None
    best_metric_name: str | None = None


def inspect_hf_folder(name: str, *, dir_fd: int | None = None) -> tuple[FolderIdentity | None, Validity]:
    """``(identity, verdict)`` of the folder ``name`` (relative to ``dir_fd``), read through
    descriptors opened without following symlinks; a folder that changes while it is read gets
    the verdict "cannot tell" (it is being written)."""
    return inspect_held(
        lambda: os.open(name, DIR_FLAGS, dir_fd=dir_fd), folder_identity, lambda fd, _: check_hf_folder(fd)
    )


def check_hf_folder(fd: int) -> Validity:
    """The verdict on the folder open at ``fd`` (see the module docstring)."""
    top = {name: os.lstat(name, dir_fd=fd) for name in os.listdir(fd)}
    state_stat = top.get(TRAINER_STATE)
    if state_stat is None or not stat.S_ISREG(state_stat.st_mode):
        if not top:
            return _undetermined("an empty folder")
        if top.keys() & _TRAINER_FILES:
            return _undetermined(
                f"HF Trainer files but no {TRAINER_STATE} (a save cut short before its last file?)"
            )
        return Validity(
            False,
            f"not an HF Trainer checkpoint: no {TRAINER_STATE} and none of the Trainer's files",
            checkpoint=False,
        )
    if state_stat.st_size > MAX_JSON:
        return _undetermined(f"{TRAINER_STATE} is larger than runlens reads ({state_stat.st_size:,} bytes)")
    text = _read(fd, TRAINER_STATE)
    content = trainer_content(text)
    if content is None:
        start = text[:4096].decode("utf-8", "replace").lstrip()
        if start.startswith("{") and any(key in text for key in (k.encode() for k in _STATE_KEYS)):
            return Validity(False, f"{TRAINER_STATE} is cut short or damaged (not JSON the Trainer wrote)")
        return _undetermined(f"{TRAINER_STATE} is not the Trainer's JSON")
    problem = _weights_problem(fd, top) or _torch_files_problem(fd, top)
    epoch = _zero_based_epoch(content.epoch)
    if problem is None:
        return Validity(True, epoch=epoch, step=content.global_step, content=content)
    if problem.startswith(_UNDETERMINED):
        return _undetermined(problem.removeprefix(_UNDETERMINED))
    return Validity(False, problem, epoch=epoch, step=content.global_step, content=content)


def trainer_content(text: bytes) -> TrainerContent | None:
    """The content of a ``trainer_state.json`` (None unless it is the Trainer's JSON)."""
    try:
        state = loads(text)
    except ValueError:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        return None
    step = state.get("global_step")
    if not _whole(step):
        return None
    metrics: dict[str, float] = {}
    at_best: dict[str, float] = {}
    best_step = state.get("best_global_step") if _whole(state.get("best_global_step")) else None
    for entry in state["log_history"]:
        if not isinstance(entry, dict):
            continue
        numbers = {k: float(v) for k, v in entry.items() if _number(v) and k not in ("step", "epoch")}
        if entry.get("step") == step:
            metrics.update(numbers)
        if best_step is not None and entry.get("step") == best_step:
            at_best.update(numbers)
    best = float(state["best_metric"]) if _number(state.get("best_metric")) else None
    named = [k for k, v in at_best.items() if best is not None and v == best]
    checkpoint = state.get("best_model_checkpoint")
    return TrainerContent(
        global_step=step,
        epoch=float(state["epoch"]) if _number(state.get("epoch")) else None,
        metrics=metrics,
        best_model_checkpoint=checkpoint if isinstance(checkpoint, str) and checkpoint else None,
        best_metric=best,
        best_global_step=best_step,
        best_metric_name=named[0] if len(named) == 1 else None,
    )


def safetensors_problem(fd: int, size: int) -> str | None:
    """What is wrong with the ``.safetensors`` file open at ``fd`` (None: whole): its 8-byte
    header length and JSON header must fit the file, and its tensors' byte ranges must follow
    each other from the end of the header to the end of the file, each as long as its shape
    and dtype say (the format's rules, as safetensors' ``Metadata::validate`` checks them)."""
    if size < 8:
        return "cut short before its header"
    (length,) = struct.unpack("<Q", os.pread(fd, 8, 0))
    if length > MAX_HEADER or 8 + length > size:
        return f"its header length ({length:,} bytes) does not fit the file (cut short?)"
    try:
        header = loads(os.pread(fd, length, 8))
    except ValueError:
        return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return "its __metadata__ is not a map of strings"
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if isinstance(dtype, str) and dtype not in _SAFETENSORS_BITS:
            return (
                f"{_UNDETERMINED}tensor {name[:80]!r} has dtype {dtype[:20]!r}, which runlens does not know"
            )
        span = _tensor_span(entry, size)
        if span is None:
            return f"tensor {name[:80]!r} has no valid dtype, shape and offsets"
        spans.append(span)
    end = 0
    for begin, stop in sorted(spans):
        if begin != end:
            return "its tensors do not follow each other"
        end = stop
    if end != size - 8 - length:
        return f"its tensors need {end:,} bytes after the header, the file holds {size - 8 - length:,} (cut short?)"
    return None


def _tensor_span(entry: Any, size: int) -> tuple[int, int] | None:
    """A tensor's ``(begin, end)`` offsets if its entry is well formed and its byte length is
    what its dtype and shape need (a shape can claim no more elements than the file has bits)."""
    if not isinstance(entry, dict):
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(_whole(d) for d in shape)):
        return None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_whole(o) for o in offsets)):
        return None
    begin, stop = offsets
    if not isinstance(dtype, str) or dtype not in _SAFETENSORS_BITS:
        return None
    elements = 1
    for dimension in shape:
        elements *= dimension
        if elements > size * 8:
            return None
    bits = elements * _SAFETENSORS_BITS[dtype]
    if stop < begin or bits % 8 or (stop - begin) * 8 != bits:
        return None
    return begin, stop


def _weights_problem(fd: int, top: dict[str, os.stat_result]) -> str | None:
    files = [name for name in _WEIGHTS if name in top]
    for index in (name for name in _INDEXES if name in top):
        shards = _index_shards(fd, index, top)
        if isinstance(shards, str):
            return shards
        files += shards
    if not files:
        if any(stat.S_ISDIR(info.st_mode) for info in top.values()):
            return (
                f"{_UNDETERMINED}weights in a layout runlens does not check (DeepSpeed or FSDP sub-folders?)"
            )
        return "no weights file (model.safetensors or pytorch_model.bin)"
    for name in files:
        if name not in top or not stat.S_ISREG(top[name].st_mode):
            return f"{name} is missing or not a regular file"
        problem = _file_problem(fd, name, crc=True)
        if problem is not None:
            undetermined = problem.startswith(_UNDETERMINED)
            return (_UNDETERMINED if undetermined else "") + f"{name}: {problem.removeprefix(_UNDETERMINED)}"
    return None


def _index_shards(fd: int, index: str, top: dict[str, os.stat_result]) -> list[str] | str:
    """The shard files a ``*.index.json`` names, or what is wrong with it."""
    if not stat.S_ISREG(top[index].st_mode) or top[index].st_size > MAX_JSON:
        return f"{index} is not a regular file runlens reads"
    try:
        weight_map = loads(_read(fd, index)).get("weight_map")
    except (ValueError, AttributeError):
        return f"{index} is not the JSON index the Trainer writes"
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        return f"{index} has no weight_map"
    shards = sorted(set(weight_map.values()))
    if any("/" in shard or shard in ("", ".", "..") for shard in shards):
        return f"{index} names a shard outside the folder"
    return shards


def _torch_files_problem(fd: int, top: dict[str, os.stat_result]) -> str | None:
    """Optimizer, scheduler, RNG and argument files must be zips with their table of contents."""
    for name, info in sorted(top.items()):
        weights = name.startswith(("pytorch_model", "adapter_model"))  # checked with their CRCs
        if name.endswith(_TORCH_SUFFIXES) and not weights and stat.S_ISREG(info.st_mode):
            problem = _file_problem(fd, name, crc=False)
            if problem is not None:
                return f"{name}: {problem}"
    return None


def _file_problem(fd: int, name: str, *, crc: bool) -> str | None:
    """A weights or torch file checked through a descriptor (a .safetensors header, or a zip)."""
    try:
        file_fd, info = open_regular(name, dir_fd=fd)
    except OSError as exc:
        return f"cannot open: {exc.strerror or exc}"
    try:
        if name.endswith(".safetensors"):
            return safetensors_problem(file_fd, info.st_size)
        with os.fdopen(file_fd, "rb", closefd=False) as file:
            return _zip_problem(file, crc=crc)
    finally:
        os.close(file_fd)


def _zip_problem(file: Any, *, crc: bool) -> str | None:
    try:
        with zipfile.ZipFile(file) as archive:
            pickle_member(archive)
            bad = archive.testzip() if crc else None
    except NotTorchZip:
        return "not a torch.save zip"
    except ZIP_ERRORS as exc:
        return f"not a complete zip (cut short?): {exc}"
    return None if bad is None else f"member {bad} fails its CRC check"


def _read(fd: int, name: str) -> bytes:
    file_fd, _ = open_regular(name, dir_fd=fd)
    with os.fdopen(file_fd, "rb") as file:
        return file.read(MAX_JSON + 1)


def _zero_based_epoch(progress: float | None) -> int | None:
    """HF's fractional epoch progress (1.0 at the end of the first epoch) -> the 0-based epoch the
    save happened in."""
    if progress is None or not math.isfinite(progress) or progress <= 0:
        return None
    return max(math.ceil(progress - 1e-9) - 1, 0)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _undetermined(why: str) -> Validity:
    return Validity(False, f"{why}: cannot tell whether the HF Trainer wrote it", checkpoint=None)
