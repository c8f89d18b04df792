"""``RUN/runlens.json``: the manifest the bundled Keras callbacks keep (read and written without TF).

:mod:`runlens.keras` rewrites it atomically (temp file, fsync, ``os.replace``) at train begin, at
every epoch end and at train end, so a crash leaves the last complete version. Schema version 1
(epochs 0-based, times ISO 8601 UTC, floats that JSON cannot hold as ``"NaN"``/``"Infinity"``/
``"-Infinity"``; :func:`read_manifest` turns them back into floats):

- ``schema`` (``"runlens-manifest"``), ``schema_version`` (1), ``run_dir`` (absolute, when written)
- ``status``: ``"running"`` (during training -- and forever if the process died: see
  ``ended_normally``), ``"completed"`` (all epochs), ``"stopped_early"`` (EarlyStopping stopped
  it), ``"stopped"`` (another callback set ``model.stop_training``)
- ``ended_normally``: false until ``on_train_end`` of the latest attempt ran; ``"running"`` with a
  stale ``updated_at`` and ``ended_normally: false`` means the process did not end normally
- ``started_at`` (first attempt), ``updated_at``, ``ended_at`` (null until train end)
- ``versions``: ``runlens``, ``keras``, ``tensorflow``, ``python``; ``process``: ``pid``, ``host``
- ``config``: ``monitor``, ``mode``, ``direction`` (``min``/``max``), ``early_stopping`` and
  ``reduce_lr`` (the Keras arguments used, or null), ``keep_best``, ``keep_last``,
  ``save_weights_only``, ``checkpoint_template``, ``checkpoint_template_no_value``,
  ``histogram_freq``, ``update_freq``
- ``hparams``: name -> bool/number/string
- ``attempts``: one per ``fit`` call: ``started_at``, ``initial_epoch`` (null until the first epoch
  began), ``ended_at``, ``ended_normally``
- ``epochs_trained`` (epochs recorded), ``last_epoch`` (null before the first epoch ends)
- ``epochs``: per epoch of the surviving history (a resumed attempt replaces the epochs it
  re-trains): ``epoch``, ``wall_time`` (Unix seconds at its end), ``logs`` (Keras' logs: name ->
  float), ``learning_rate`` (the rate used during the epoch, or null), ``early_stopping``
  (``wait``, ``best``, ``best_epoch`` after the epoch: Keras' EarlyStopping state) and
  ``reduce_lr`` (``wait``, ``best``, ``cooldown_counter`` and ``lr_after``, the rate the epoch's
  decision left), each null when not configured,
  ``checkpoint`` (path relative to the run, or null)
- ``early_stopping`` (null when not configured): ``stopped_epoch`` (null: did not stop),
  ``best_epoch``, ``best_value``, ``restored`` (whether Keras restored the best weights at train
  end; null before), ``restored_epoch`` (the epoch whose weights the model held when fit returned)
- ``reduce_lr`` (null when not configured): ``reductions``: ``[{epoch, old_lr, new_lr}]`` -- at the
  end of ``epoch`` the rate went from ``old_lr`` (used during it) to ``new_lr``
- ``checkpoints``: ``folder`` (``"checkpoints"``), ``kept``: ``[{path, epoch, value}]`` on disk after
  the latest retention (``value``: the monitored value, null when the epoch had none), ``removed``
  (files deleted by retention so far)

>>> manifest = read_manifest("runs/exp1")                 # doctest: +SKIP
>>> manifest["early_stopping"]["stopped_epoch"], manifest["status"]   # doctest: +SKIP
(11, 'stopped_early')
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from runlens.atomic import atomic_output
from runlens.errors import RunlensError
from runlens.events.sources import open_binary
from runlens.jsondata import NestedTooDeep, loads

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "ended_runs",
    "find_manifests",
    "read_manifest",
    "run_manifest",
    "says_ended",
    "write_manifest",
]

MANIFEST_NAME = "runlens.json"
#: Larger is not a manifest runlens wrote (a 100,000-epoch run's is tens of MB): refused, not loaded.
MAX_MANIFEST_BYTES = 256 << 20
SCHEMA = "runlens-manifest"
SCHEMA_VERSION = 1
STATUSES = ("running", "completed", "stopped_early", "stopped")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))
_OPT_DICT = (dict, type(None))
_TOP: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "schema_version": (int,),
    "run_dir": (str,),
    "status": (str,),
    "ended_normally": (bool,),
    "started_at": (str,),
    "updated_at": (str,),
    "ended_at": _OPT_STR,
    "versions": (dict,),
    "config": (dict,),
    "hparams": (dict,),
    "attempts": (list,),
    "epochs_trained": (int,),
    "last_epoch": _OPT_INT,
    "epochs": (list,),
    "early_stopping": _OPT_DICT,
    "reduce_lr": _OPT_DICT,
    "checkpoints": (dict,),
}
_EPOCH: dict[str, tuple[type, ...]] = {
    "epoch": (int,),
    "wall_time": _NUMBER,
    "logs": (dict,),
    "learning_rate": _OPT_NUMBER,
    "early_stopping": _OPT_DICT,
    "reduce_lr": _OPT_DICT,
    "checkpoint": _OPT_STR,
}
_CONFIG: dict[str, tuple[type, ...]] = {
    "monitor": (str,),
    "mode": (str,),
    "direction": (str,),
    "early_stopping": _OPT_DICT,
    "reduce_lr": _OPT_DICT,
    "keep_best": (int,),
    "keep_last": (int,),
    "checkpoint_template": (str,),
}


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a run folder (or the ``runlens.json`` file itself), checked against the schema.

    Raises :class:`RunlensError` naming the file when it is missing, not JSON, or not a runlens
    manifest of a schema this version reads. Non-finite floats come back as floats.

    Example:
        >>> m = read_manifest("runs/exp1")                               # doctest: +SKIP
        >>> [r["epoch"] for r in m["reduce_lr"]["reductions"]]            # doctest: +SKIP
        [14, 21]
    """
    file = _manifest_file(path)
    try:
        with open_binary(str(file)) as stream:  # a FIFO planted as runlens.json: refused, not waited on
            raw = stream.read(MAX_MANIFEST_BYTES + 1)  # a huge file planted there: not read whole
    except FileNotFoundError:
        raise RunlensError(
            f"{file}: no manifest; runlens.keras.callbacks(run_dir) writes one into each run folder"
        ) from None
    except OSError as exc:
        raise RunlensError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise RunlensError(
            f"{file}: larger than {MAX_MANIFEST_BYTES >> 20} MiB, not a manifest runlens writes; not read"
        )
    try:
        data = loads(raw)  # bytes: text that is not UTF-8 is a ValueError too
    except NestedTooDeep:  # arrays or objects nested thousands deep
        raise RunlensError(f"{file}: nested too deeply to be a manifest runlens writes; not read") from None
    except ValueError as exc:
        raise RunlensError(f"{file}: not valid JSON ({exc}); the manifest is damaged") from None
    _validate(data, file)
    return _decoded(data)


def write_manifest(run_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` to ``run_dir/runlens.json`` atomically: a reader (or a crash) sees the old
    file or the new one, never a mix. Non-finite floats are written as strings.

    >>> write_manifest("runs/exp1", manifest)          # doctest: +SKIP
    PosixPath('runs/exp1/runlens.json')
    """
    from runlens.export import json_ready  # pandas: not imported to read manifests (a report's workers do)

    target = Path(run_dir) / MANIFEST_NAME
    text = json.dumps(json_ready(manifest), allow_nan=False, indent=1) + "\n"
    with atomic_output(target, what="the manifest") as partial:
        partial.write_text(text, encoding="utf-8")
    return target


def find_manifests(path: str | os.PathLike[str]) -> dict[str, Path]:
    """``{run: manifest file}`` for every ``runlens.json`` under ``path``; runs are named as
    :func:`runlens.read_epochs` names them (relative to ``path``, '/'-separated, '.' for ``path``).

    >>> find_manifests("sample_logs")            # doctest: +SKIP
    {'improving': PosixPath('sample_logs/improving/runlens.json'), ...}
    """
    root = Path(path)
    if root.is_file():
        return {".": root} if root.name == MANIFEST_NAME else {}
    found = {}
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        if MANIFEST_NAME in files:
            found[Path(folder).relative_to(root).as_posix()] = Path(folder, MANIFEST_NAME)
    return found


def run_manifest(root: str | os.PathLike[str], run: str) -> Path | None:
    """``run``'s manifest file under ``root`` (``root/run/runlens.json``; run ``"."``: ``root``'s
    own), or None when it has none: what :func:`find_manifests` gives for ``run``, without walking
    ``root``. As that walk lists files, any entry named ``runlens.json`` that is not a folder
    counts (a broken link too: reading it then says what is wrong).

    >>> run_manifest("sample_logs", "improving")          # doctest: +SKIP
    PosixPath('sample_logs/improving/runlens.json')
    """
    file = os.path.join(root, run, MANIFEST_NAME)  # a string: a sweep asks this of thousands of runs
    try:
        mode = os.lstat(file).st_mode
    except OSError:  # none there, or a folder that cannot be looked in (the walk skips it too)
        return None
    if stat.S_ISLNK(mode):  # os.walk files a link by its target: a folder's is no file
        try:
            mode = os.stat(file).st_mode
        except OSError:  # a broken link: listed as a file by the walk
            return Path(file)
    return None if stat.S_ISDIR(mode) else Path(file)


def run_manifests(root: str | os.PathLike[str], runs: Iterable[str]) -> dict[str, tuple[str, Any]]:
    """For each of ``runs`` whose folder under ``root`` has a manifest (:func:`run_manifest`): its
    path relative to ``root`` and either the manifest (:func:`read_manifest`) or, when it cannot be
    read, the error's message. Imports no pandas: a report's workers read a sweep's so.

    >>> run_manifests("sample_logs", ["overfits", "lightning"])["overfits"][0]   # doctest: +SKIP
    'overfits/runlens.json'
    """
    found: dict[str, tuple[str, Any]] = {}
    for run in runs:
        path = run_manifest(root, run)
        if path is None:
            continue
        name = Path(os.path.relpath(path, root)).as_posix()
        try:
            found[run] = (name, read_manifest(path))
        except RunlensError as exc:
            found[run] = (name, str(exc))
    return found


def ended_runs(root: str | os.PathLike[str], runs: Iterable[str]) -> set[str]:
    """The checkpoint runs under ``root`` (named as :func:`runlens.read_checkpoints` names them)
    whose ``runlens.json`` says the last fit ended normally: no runlens.keras fit is writing their
    checkpoints, so a prune need not wait ``min_age`` for them (``plan_prune(settled_runs=...)``).

    This is what makes a fresh clone's sample runs prunable at once (git gives every file the time
    of the checkout). A fit that continues such a run rewrites its manifest (``ended_normally``
    false) before it saves anything, and the bundle moves each checkpoint into place whole
    (``os.replace``); read the checkpoints first, then this, and a fit starting in between is seen.
    A manifest that is missing, damaged or says anything else leaves the run to ``min_age``.

    >>> ended_runs("sample_logs", ["overfits", "no_such_run"])          # doctest: +SKIP
    {'overfits'}
    """
    base = Path(root)
    ended = set()
    for run in runs:
        folder = base if run == "." else base / run
        # RUN/checkpoints/ given as root holds run ".": its manifest is in the folder above
        candidates = [folder, folder.parent] if folder.name == "checkpoints" else [folder]
        for candidate in candidates:
            if not (candidate / MANIFEST_NAME).is_file():
                continue
            try:
                manifest = read_manifest(candidate)
            except RunlensError:
                continue
            if says_ended(manifest):
                ended.add(run)
            break
    return ended


def says_ended(manifest: Any) -> bool:
    """Whether ``manifest`` (:func:`read_manifest`'s; anything else, e.g. the error a read gave:
    no) says the run's last fit ended normally: what :func:`ended_runs` asks of each.

    >>> says_ended({"ended_normally": True, "status": "completed"}), says_ended("not valid JSON")
    (True, False)
    """
    return (
        isinstance(manifest, dict)
        and manifest.get("ended_normally") is True
        and manifest.get("status") != "running"
    )


def _manifest_file(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    return file / MANIFEST_NAME if file.is_dir() else file


def _validate(data: Any, file: Path) -> None:
    def bad(what: str) -> RunlensError:
        return RunlensError(f"{file}: not a runlens manifest: {what}")

    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise bad(f"'schema' is not {SCHEMA!r}")
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise bad("'schema_version' is not a whole number >= 1")
    if version > SCHEMA_VERSION:
        raise RunlensError(
            f"{file}: manifest schema version {version} is newer than this runlens reads "
            f"({SCHEMA_VERSION}); upgrade runlens"
        )
    _check_fields(data, _TOP, "", bad)
    if data["status"] not in STATUSES:
        raise bad(f"'status' {data['status']!r} is not one of {', '.join(STATUSES)}")
    _check_fields(data["config"], _CONFIG, "config.", bad)
    for i, record in enumerate(data["epochs"]):
        if not isinstance(record, dict):
            raise bad(f"epochs[{i}] is not an object")
        _check_fields(record, _EPOCH, f"epochs[{i}].", bad)


def _check_fields(
    data: dict[str, Any],
    fields: dict[str, tuple[type, ...]],
    where: str,
    bad: Callable[[str], RunlensError],
) -> None:
    for key, types in fields.items():
        if key not in data:
            raise bad(f"'{where}{key}' is missing")
        value = data[key]
        if type(value) in types:  # what JSON gives is exactly one of them: a sweep's 64,000 fields
            continue
        if isinstance(value, bool) and bool not in types:  # JSON true is not a number here
            raise bad(f"'{where}{key}' is {value!r}, expected {_names(types)}")
        special = float in types and isinstance(value, str) and value in _SPECIAL
        if not isinstance(value, types) and not special:
            raise bad(f"'{where}{key}' is {value!r}, expected {_names(types)}")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _decoded(data: dict[str, Any]) -> dict[str, Any]:
    """Turn the strings standing for non-finite floats back into floats, in numeric fields only."""
    for record in data["epochs"]:
        logs = record["logs"]
        if any(type(v) is str for v in logs.values()):  # most runs log no inf or nan
            record["logs"] = {k: _number(v) for k, v in logs.items()}
        record["learning_rate"] = _number(record["learning_rate"])
        for policy in ("early_stopping", "reduce_lr"):
            if record[policy] is not None:
                record[policy]["best"] = _number(record[policy].get("best"))
    if data["early_stopping"] is not None:
        data["early_stopping"]["best_value"] = _number(data["early_stopping"].get("best_value"))
    if data["reduce_lr"] is not None:
        for reduction in data["reduce_lr"].get("reductions", []):
            reduction["old_lr"] = _number(reduction.get("old_lr"))
            reduction["new_lr"] = _number(reduction.get("new_lr"))
    for kept in data["checkpoints"].get("kept", []):
        kept["value"] = _number(kept.get("value"))
    return data


def _number(value: Any) -> Any:
    return _SPECIAL.get(value, value) if isinstance(value, str) else value
