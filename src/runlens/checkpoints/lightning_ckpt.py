"""Lightning ``.ckpt`` files: is this a checkpoint Lightning wrote, is it whole, and what it says.

Lightning saves ``trainer.save_checkpoint``'s dict with ``torch.save`` into a stream and writes the
bytes out at once (lightning/fabric/utilities/cloud_io.py, ``_atomic_save``); the dict holds
``epoch`` (0-based ``current_epoch``), ``global_step``, ``pytorch-lightning_version``,
``state_dict``, ``loops`` and, unless only weights were saved, ``callbacks`` -- one state per
stateful callback under its ``state_key``: ``ModelCheckpoint{...}`` with ``monitor``,
``best_model_path``, ``best_model_score``, ``best_k_models`` (path -> score), ``current_score``
and ``last_model_path``; ``EarlyStopping{...}`` with ``wait_count``, ``best_score``, ...
(lightning/pytorch/trainer/connectors/checkpoint_connector.py, ``dump_checkpoint``;
callbacks/model_checkpoint.py and early_stopping.py, ``state_dict``).

The verdict (:func:`check_lightning_checkpoint`), read through :mod:`.torch_zip` without running
anything:

- a readable ``torch.save`` zip whose pickle is a dict with ``pytorch-lightning_version`` (or all
  of ``epoch``, ``global_step`` and ``state_dict``) is a Lightning checkpoint; it is valid when
  every member passes its CRC check and every tensor storage the pickle refers to is there, whole;
- any other file (a plain ``torch.save`` of a state dict, another zip, text) is not a checkpoint;
- a zip whose ``data.pkl`` cannot be read, or a zip cut short (no central directory) whose first
  member is not a readable Lightning ``data.pkl``, cannot be told apart from someone else's damaged
  data: reported, never deleted. A zip cut short whose first member is a readable Lightning
  ``data.pkl`` is a Lightning checkpoint cut short (invalid).
- a member compressed with anything but ``stored``: ``torch.save`` never writes one, so nothing
  proves Lightning wrote the file ("cannot tell"), and nothing is decompressed.

>>> with open("epoch=3-step=16.ckpt", "rb") as f:          # doctest: +SKIP
...     check_lightning_checkpoint(f).content.epoch
3
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from runlens.checkpoints.safe_pickle import PickleError
from runlens.checkpoints.torch_zip import (
    MAX_PICKLE,
    NotTorchZip,
    TorchSave,
    check_members,
    missing_storages,
    open_torch_zip,
    read_torch_pickle,
    scalar,
)
from runlens.checkpoints.validate import Validity
from runlens.checkpoints.zip_head import ZIP_ERRORS, first_member, is_zip

_VERSION_KEY = "pytorch-lightning_version"
_CHECKPOINT_CALLBACK = "ModelCheckpoint"


@dataclass(frozen=True)
class ModelCheckpointState:
    """One ``ModelCheckpoint`` callback's state as saved in a checkpoint. Paths are as Lightning
    stored them (absolute paths of the machine that trained); scores are Python floats (None:
    not set, or a tensor that could not be read)."""

    monitor: str | None
    best_model_path: str | None
    best_model_score: float | None
    best_k_models: dict[str, float | None]
    current_score: float | None
    last_model_path: str | None


@dataclass(frozen=True)
class LightningContent:
    """What a Lightning checkpoint says about itself."""

    epoch: int | None
    global_step: int | None
    version: str | None
    model_checkpoints: list[ModelCheckpointState] = field(default_factory=list)
    early_stopping: list[dict[str, Any]] = field(default_factory=list)

    def own_scores(self, name: str) -> dict[str, float]:
        """The score each ModelCheckpoint gave the file ``name`` (this checkpoint) when it saved
        it: its entry in ``best_k_models`` (set before the save), or ``current_score`` when it
        is the ``last_model_path``."""
        scores = {}
        for state in self.model_checkpoints:
            if state.monitor is None:
                continue
            named = {os.path.basename(path): score for path, score in state.best_k_models.items()}
            if named.get(name) is not None:
                scores[state.monitor] = named[name]
            elif state.current_score is not None and _named(state.last_model_path, name):
                scores[state.monitor] = state.current_score
        return scores


def is_lightning_dict(obj: Any) -> bool:
    """Whether a checkpoint's pickled object is Lightning's checkpoint dict."""
    if not isinstance(obj, dict):
        return False
    return _VERSION_KEY in obj or {"epoch", "global_step", "state_dict"} <= obj.keys()


def check_lightning_checkpoint(file: BinaryIO) -> Validity:
    """The verdict on an open ``.ckpt`` file (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(file)
    except ZIP_ERRORS as exc:
        return _cut_short(file, exc)
    with archive:
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):
            return _undetermined("a zip with compressed members, which torch.save never writes")
        try:
            saved = open_torch_zip(archive)
        except NotTorchZip:
            return Validity(
                False, "not a Lightning checkpoint: a zip without torch.save's data.pkl", checkpoint=False
            )
        except (PickleError, *ZIP_ERRORS) as exc:
            return _undetermined(f"its data.pkl cannot be read ({exc})")
        if not is_lightning_dict(saved.obj):
            return Validity(
                False,
                "not a Lightning checkpoint: a torch.save file without Lightning's epoch, global_step "
                "and state_dict",
                checkpoint=False,
            )
        try:
            bad = check_members(saved)  # first: the scalars read below come from what it kept
        except ZIP_ERRORS as exc:
            return _invalid(f"corrupted: {exc}", lightning_content(saved))
        content = lightning_content(saved)
        if bad is not None:
            return _invalid(f"corrupted: member {bad} fails its CRC check", content)
        missing = missing_storages(saved)
        if missing:
            return _invalid(f"incomplete: {'; '.join(missing[:3])}", content)
        if content.epoch is None or content.global_step is None:
            return _invalid("its epoch or global_step is not a whole number", content)
    return Validity(True, epoch=content.epoch, step=content.global_step, content=content)


def lightning_content(saved: TorchSave) -> LightningContent:
    """The epoch, step and callback states of a Lightning checkpoint dict."""
    obj = saved.obj
    epoch, step = obj.get("epoch"), obj.get("global_step")
    version = obj.get(_VERSION_KEY)
    callbacks = obj.get("callbacks")
    checkpoints, stopping = [], []
    for key, state in callbacks.items() if isinstance(callbacks, dict) else ():
        if not isinstance(key, str) or not isinstance(state, dict):
            continue
        if key.startswith(_CHECKPOINT_CALLBACK):
            checkpoints.append(_model_checkpoint(state, saved))
        elif key.startswith("EarlyStopping"):
            stopping.append({k: _plain(v, saved) for k, v in state.items() if isinstance(k, str)})
    return LightningContent(
        epoch=_whole(epoch),
        global_step=_whole(step),
        version=version if isinstance(version, str) else None,
        model_checkpoints=checkpoints,
        early_stopping=stopping,
    )


def _model_checkpoint(state: dict[Any, Any], saved: TorchSave) -> ModelCheckpointState:
    best_k = state.get("best_k_models")
    return ModelCheckpointState(
        monitor=_text(state.get("monitor")),
        best_model_path=_text(state.get("best_model_path")),
        best_model_score=_number(state.get("best_model_score"), saved),
        best_k_models={
            path: _number(score, saved)
            for path, score in (best_k.items() if isinstance(best_k, dict) else ())
            if isinstance(path, str)
        },
        current_score=_number(state.get("current_score"), saved),
        last_model_path=_text(state.get("last_model_path")),
    )


def _named(path: str | None, name: str) -> bool:
    return bool(path) and os.path.basename(path) == name


def _plain(value: Any, saved: TorchSave) -> Any:
    """Scalars as they are, tensors of one number as that number, anything else as None."""
    if value is None or isinstance(value, (str, bool)):
        return value
    return scalar(value, saved)


def _number(value: Any, saved: TorchSave) -> float | None:
    number = scalar(value, saved)
    return None if number is None else float(number)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _invalid(reason: str, content: LightningContent) -> Validity:
    return Validity(False, reason, epoch=content.epoch, step=content.global_step, content=content)


def _undetermined(why: str) -> Validity:
    return Validity(False, f"{why}: cannot tell whether Lightning wrote it", checkpoint=None)


def _cut_short(file: BinaryIO, exc: Exception) -> Validity:
    """A zip without a readable central directory: Lightning's when its first member is a
    readable Lightning ``data.pkl``."""
    if not is_zip(file):
        return Validity(False, "not a Lightning checkpoint: not a zip file", checkpoint=False)
    first = first_member(file, limit=MAX_PICKLE, unsized=MAX_PICKLE)
    if first is None:
        return _undetermined("a zip cut short in its first header")
    folder, _, name = first.name.decode("utf-8", "replace").partition("/")
    if name != "data.pkl" or not folder or not first.stored:
        return _undetermined(f"not a readable zip ({exc}) and its first member is not torch.save's data.pkl")
    try:
        obj, _ = read_torch_pickle(first.data)
    except PickleError:
        return _undetermined(f"not a readable zip ({exc}) and its data.pkl is cut short too")
    if not is_lightning_dict(obj):
        return _undetermined(f"not a readable zip ({exc}) and its data.pkl is not Lightning's")
    epoch, step = _whole(obj.get("epoch")), _whole(obj.get("global_step"))
    return Validity(False, f"not a readable zip (cut short while saving?): {exc}", epoch=epoch, step=step)
