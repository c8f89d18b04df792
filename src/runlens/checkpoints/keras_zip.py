"""``.keras`` archives: is this zip one Keras wrote, and is it whole?

Keras 3 and tf-keras (``saving_lib._save_model_to_fileobj`` / ``save_model``) write a zip holding
``metadata.json`` (first: ``json.dumps({"keras_version": ..., "date_saved": ...})``, stored, not
compressed), ``config.json`` (the serialised model: a JSON object with ``class_name``) and
``model.weights.h5`` (or ``model.weights.npz``). So:

- a readable zip is a Keras archive when its ``metadata.json`` has ``keras_version`` or its
  ``config.json`` has ``class_name``; it is then valid when every member is there and passes its
  CRC-32 check; any other zip is not a checkpoint;
- a zip without its central directory (a save cut short) is a Keras archive cut short when its
  first local member is ``metadata.json`` and the bytes present start with ``{"keras_version"``;
  otherwise nothing proves Keras wrote it.

>>> with open("model.keras", "rb") as f:              # doctest: +SKIP
...     check_keras_archive(f).valid
True
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from typing import Any, BinaryIO

from runlens.checkpoints.validate import Validity
from runlens.checkpoints.zip_head import ZIP_ERRORS as _ZIP_ERRORS
from runlens.checkpoints.zip_head import first_member, is_zip
from runlens.jsondata import loads

_METADATA, _CONFIG = "metadata.json", "config.json"
_WEIGHTS = ("model.weights.h5", "model.weights.npz")
_MAX_JSON = 64 << 20  # a metadata.json / config.json declared larger is not read (a zip bomb guard)
_KERAS_METADATA_START = b'{"keras_version"'


def check_keras_archive(file: BinaryIO) -> Validity:
    """The verdict on an open ``.keras`` file (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(file)
    except _ZIP_ERRORS as exc:
        return _cut_short(file, exc)
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        metadata, damage = _json_member(archive, members.get(_METADATA))
        config, config_damage = _json_member(archive, members.get(_CONFIG))
        proven = (isinstance(metadata, dict) and "keras_version" in metadata) or (
            isinstance(config, dict) and "class_name" in config
        )
        if not proven:
            if damage or config_damage:
                why = damage or config_damage
                return Validity(
                    False, f"damaged zip ({why}): cannot tell whether Keras wrote it", checkpoint=None
                )
            return Validity(
                False, "not a Keras archive: a zip without Keras' metadata.json/config.json", checkpoint=False
            )
        version, saved = _metadata_fields(metadata)
        missing = [m for m in (_CONFIG, _METADATA) if m not in members]
        if not any(w in members for w in _WEIGHTS):
            missing.append(" or ".join(_WEIGHTS))
        if missing:
            return Validity(
                False, f"incomplete Keras archive: no {', '.join(missing)} inside", version, saved
            )
        try:
            bad = archive.testzip()
        except _ZIP_ERRORS as exc:
            return Validity(False, f"corrupted: {exc}", version, saved)
        if bad is not None:
            return Validity(False, f"corrupted: member {bad} fails its CRC check", version, saved)
        if not isinstance(metadata, dict):
            return Validity(False, "metadata.json is not a JSON object", version, saved)
    return Validity(True, None, version, saved)


def _json_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None) -> tuple[Any, str | None]:
    """(the member parsed as JSON or None, what made it unreadable or None)."""
    if info is None or info.file_size > _MAX_JSON:
        return None, None
    try:
        data = archive.read(info)
    except _ZIP_ERRORS as exc:
        return None, f"{info.filename}: {exc}"
    try:
        return loads(data), None
    except ValueError:  # not JSON, or nested thousands deep: not Keras' file
        return None, None


def _metadata_fields(metadata: Any) -> tuple[str | None, datetime | None]:
    """Keras' version and ``date_saved`` (a naive local time, as Keras writes it): a ``datetime``,
    not a pandas Timestamp, so that a report's worker processes check archives without pandas."""
    if not isinstance(metadata, dict):
        return None, None
    version = metadata.get("keras_version")
    try:  # datetime.strptime: a tenth of pd.to_datetime's cost, per file
        saved = datetime.strptime(metadata.get("date_saved"), "%Y-%m-%d@%H:%M:%S")
    except (TypeError, ValueError):
        saved = None
    return (str(version) if version is not None else None), saved


def _cut_short(file: BinaryIO, exc: Exception) -> Validity:
    """A zip without a readable central directory: Keras' when its first member is Keras' metadata."""
    if not is_zip(file):
        return Validity(False, "not a Keras archive: not a zip file", checkpoint=False)
    first = first_member(file, limit=_MAX_JSON, unsized=len(_KERAS_METADATA_START))
    if first is None:
        return Validity(
            False, "a zip cut short in its first header: cannot tell whether Keras wrote it", checkpoint=None
        )
    data = first.data
    if first.name != _METADATA.encode() or not first.stored or not data.startswith(_KERAS_METADATA_START):
        return Validity(
            False,
            f"not a readable zip ({exc}) and its first member is not Keras' metadata.json: "
            "cannot tell whether Keras wrote it",
            checkpoint=None,
        )
    try:
        version, saved = _metadata_fields(loads(data)) if len(data) == first.size else (None, None)
    except ValueError:
        version, saved = None, None
    return Validity(False, f"not a readable zip (cut short while saving?): {exc}", version, saved)
