"""Each framework's policies in the report: which class replays its runs, with which defaults, and
how the CLI's framework-neutral options (``--monitor``, ``--patience``, ``--min-delta``, ``--mode``,
``--lr-*``) map onto that class' own arguments.

A report replays every run with the stopping policy of the framework that wrote it, with that
framework's defaults (what a user who added the callback with no arguments got):

- ``keras``: runlens' report default, ``keras.EarlyStopping(patience=5, restore_best_weights=True)``
  (see :mod:`runlens.report.build`);
- ``lightning``: ``lightning.EarlyStopping("val_loss")``: Lightning's defaults (patience 3,
  ``mode="min"``), ``monitor`` being required there and ``val_loss`` the name its docs use;
- ``transformers``: ``transformers.EarlyStoppingCallback()``: patience 1 on ``eval_loss`` (the
  ``metric_for_best_model="loss"`` the Trainer uses when none is set);
- ``generic`` (no framework's layout, read by a ``--monitor`` tag): Lightning's EarlyStopping on
  that tag. Nothing says which callback such a run had; Lightning's counts evaluations, needs no
  name convention for its direction (``mode="min"`` unless ``--mode max``) and is what a plain
  PyTorch loop's early stopping most often mirrors.

A ``mode="auto"`` (the CLI's default) means the framework's own default: ``min`` for Lightning
(it has no auto), ``greater_is_better=None`` for HF (max unless the name ends with ``loss``).
``--min-delta`` is Lightning's ``min_delta`` and HF's ``early_stopping_threshold``; the sweep tries
the framework's own patience setting (:attr:`sweep_grid` of each class).

The learning-rate replay of these runs is torch's ``ReduceLROnPlateau`` (Lightning and the HF
Trainer step it on the monitored value: once per epoch under Lightning, once per evaluation under
HF); ``--lr-min-delta`` becomes its ``threshold`` with ``threshold_mode="abs"`` (Keras'
``min_delta`` meaning), the other ``--lr-*`` options keep their names.

>>> stopping_arguments("transformers", patience=3, mode="max", monitor="accuracy")
{'early_stopping_patience': 3, 'metric_for_best_model': 'accuracy', 'greater_is_better': True}
>>> default_policy("lightning", stopping_arguments("lightning"))
EarlyStopping(monitor='val_loss', min_delta=0.0, patience=3, mode='min', check_finite=True, stopping_threshold=None, divergence_threshold=None)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runlens.checkpoints.hf_folder import MAX_JSON
from runlens.errors import RunlensError, RunlensWarning
from runlens.events.sources import open_binary
from runlens.jsondata import loads
from runlens.policies.base import check_kind, policy_class
from runlens.policies.runs import is_evals_frame

if TYPE_CHECKING:
    from runlens.events.found import ReadFound

__all__ = [
    "STOPPING_CLASSES",
    "check_policy_frameworks",
    "default_policy",
    "framework_frames",
    "lr_arguments",
    "lr_policy",
    "setting_name",
    "stopping_arguments",
    "trainer_state_notes",
]

# framework -> the registered stopping policy its runs are replayed with (keras: see build_report)
STOPPING_CLASSES: dict[str, str] = {
    "lightning": "lightning.EarlyStopping",
    "transformers": "transformers.EarlyStoppingCallback",
    "generic": "lightning.EarlyStopping",
}
LR_CLASS = "torch.ReduceLROnPlateau"
# The monitor each framework's runs are replayed on when none is given (generic: the read tag).
DEFAULT_MONITORS: dict[str, str] = {"lightning": "val_loss", "transformers": "loss"}


def stopping_arguments(
    framework: str,
    *,
    monitor: str | None = None,
    patience: int | None = None,
    min_delta: float | None = None,
    mode: str = "auto",
) -> dict[str, Any]:
    """The CLI's neutral stopping options as ``framework``'s own class arguments (None: the
    framework's default, left out)."""
    if framework == "transformers":
        args: dict[str, Any] = {"early_stopping_patience": patience, "early_stopping_threshold": min_delta}
        args["metric_for_best_model"] = monitor
        args["greater_is_better"] = {"min": False, "max": True}.get(mode)
    else:
        args = {"monitor": monitor, "patience": patience, "min_delta": min_delta}
        args["mode"] = mode if mode in ("min", "max") else None
    return {k: v for k, v in args.items() if v is not None}


# The report's framework-neutral sweep keys, as a framework's class names its settings.
SETTING_NAMES: dict[str, dict[str, str]] = {
    "transformers": {"patience": "early_stopping_patience", "min_delta": "early_stopping_threshold"},
}


def setting_name(policy: Any, key: str) -> str:
    """``key`` (a sweep grid key such as ``patience``) as ``policy``'s own setting name.

    >>> import runlens.transformers
    >>> setting_name(runlens.transformers.EarlyStoppingCallback(), "patience")
    'early_stopping_patience'
    """
    if key in policy.settings():
        return key
    return SETTING_NAMES.get(getattr(policy, "framework", ""), {}).get(key, key)


def lr_arguments(given: Mapping[str, Any], *, mode: str = "auto") -> dict[str, Any]:
    """The CLI's ``--lr-*`` options (Keras' names without ``lr_``) as torch ReduceLROnPlateau's.

    >>> lr_arguments({"factor": 0.5, "min_delta": 0.01}, mode="max")
    {'factor': 0.5, 'threshold': 0.01, 'threshold_mode': 'abs', 'mode': 'max'}
    """
    args = {k: v for k, v in given.items() if k not in ("min_delta", "monitor", "mode", "semantics")}
    if given.get("min_delta") is not None:
        args.update(threshold=given["min_delta"], threshold_mode="abs")
    if mode in ("min", "max"):
        args["mode"] = mode
    return args


def default_policy(framework: str, given: Any, *, monitor: str | None = None) -> Any:
    """The stopping policy for ``framework``'s runs: ``given`` when it is a policy object, else
    that framework's class built from ``given`` (a dict of its arguments) over its defaults;
    ``monitor`` is the tag a generic read used."""
    name = STOPPING_CLASSES[framework]
    if given is not None and not isinstance(given, Mapping):
        check_kind("early_stopping", given, "stopping", f"a runlens.{name}")
        return given
    args = dict(given or {})
    key = "metric_for_best_model" if framework == "transformers" else "monitor"
    if key not in args:
        default = monitor if framework == "generic" else DEFAULT_MONITORS.get(framework)
        if default is None:
            raise RunlensError("generic runs are replayed on a tag: pass --monitor (e.g. --monitor val/loss)")
        args[key] = default
    try:
        return policy_class(name)(**args)
    except TypeError as exc:
        raise RunlensError(f"{name}({args}): {exc}") from None


def check_policy_frameworks(early_stopping: Any, parts: Mapping[str, Any]) -> None:
    """A RunlensError when ``early_stopping`` is a policy object of a framework none of the runs
    is replayed with (a Keras EarlyStopping given for Lightning runs would be silently unused)."""
    if early_stopping is None or isinstance(early_stopping, Mapping):
        return
    used = {"keras" if name == "keras" else STOPPING_CLASSES[name].split(".")[0] for name in parts}
    framework = getattr(early_stopping, "framework", None)
    if framework not in used:
        found = ", ".join(parts)
        raise RunlensError(
            f"early_stopping is a {framework} policy, but no run here is replayed with one (runs found: "
            f"{found}); give each framework's policy as policies={{framework: policy}}"
        )


def lr_policy(given: Any, *, direction: str) -> Any:
    """The torch ReduceLROnPlateau asked for non-Keras runs (a policy, or a dict of its arguments
    whose ``mode`` defaults to the stopping policy's ``direction``), or None."""
    if given is None or not isinstance(given, Mapping):
        return given
    try:
        return policy_class(LR_CLASS)(**{"mode": direction, **given})
    except TypeError as exc:
        raise RunlensError(f"reduce_lr={dict(given)!r}: {exc}") from None


_ORDER = ("keras", "lightning", "transformers", "generic")
_EVAL_ONLY = ("framework", "eval", "step")


def framework_frames(
    source: Any,
    *,
    framework: str = "auto",
    monitor: str | None = None,
    runs: Any = None,
    executor: Executor | None = None,
    on_read: Callable[[ReadFound], None] | None = None,
) -> tuple[dict[str, pd.DataFrame] | None, ReadFound | None]:
    """The runs of ``source`` by framework (Keras first): a logdir read with
    :func:`runlens.read_evals`, or an evaluation frame split by its ``framework`` column. Keras runs
    come back as an epoch frame (as :func:`runlens.read_epochs` gives it), the others as evaluation
    frames (``runs``: read only those, as :func:`runlens.read_evals` selects them; ``executor``:
    the one its :func:`runlens.read_scalars` reads the files with; ``on_read``: called with what
    the read found as soon as it is done, as :func:`runlens.evals.read_evals_found` says). None for an
    epoch frame (nothing to split). Beside the parts, what the read of a logdir found
    (:class:`runlens.events.found.ReadFound`; None for a frame): the report takes the runs'
    hparams from it instead of listing and scanning the logdir again."""
    found = None
    if isinstance(source, pd.DataFrame):
        if not is_evals_frame(source):
            return None, None
        frame = source
    elif isinstance(source, (str, os.PathLike)):
        from runlens.evals import read_evals_found

        with warnings.catch_warnings():  # the report says itself which monitor is not logged
            warnings.filterwarnings("ignore", ".*no run logged monitor", RunlensWarning)
            frame, found = read_evals_found(
                source, framework=framework, monitor=monitor, runs=runs, executor=executor, on_read=on_read
            )
    else:
        return None, None  # build_report says what it needs
    # pandas deep-copies attrs at every step; read_evals' (every run's folder and framework) are
    # big on a sweep: split a frame without them, each part getting only the problems.
    problems = frame.attrs.get("problems", [])
    if frame is source:  # the caller's frame: its attrs stay as they are
        frame = frame.copy(deep=False)
    frame.attrs = {}
    names = frame["framework"].astype(str)
    parts = {}
    for name in (n for n in _ORDER if (names == n).any()):
        part = frame[(names == name).to_numpy()].reset_index(drop=True)
        part = part.loc[:, [c for c in part.columns if c in _KEYS or part[c].notna().any()]]
        if name == "keras":
            part = _epoch_frame(part)
        part.attrs = {"problems": problems}
        parts[name] = part
    return parts, found


_KEYS = ("run", "framework", "eval", "step", "epoch", "wall_time")


def _epoch_frame(part: pd.DataFrame) -> pd.DataFrame:
    """Keras runs of an evaluation frame as read_epochs gives them (``eval == epoch``)."""
    epochs = part.drop(columns=list(_EVAL_ONLY))
    epochs["epoch"] = part["eval"].to_numpy(dtype=np.int64)
    epochs["run"] = epochs["run"].cat.remove_unused_categories()
    return epochs


def trainer_state_notes(root: Path, records: list[Any], policy: Any) -> None:
    """Add a note to each HF run whose Trainer recorded its own EarlyStoppingCallback settings
    (``checkpoint-<step>/trainer_state.json`` beside ``runs/``, the latest checkpoint's; plain JSON)
    when they differ from the replayed ones, saying how to replay them."""
    own = policy.keyword_arguments()
    for record in records:
        parts = Path(record.run).parts
        if len(parts) < 2 or parts[-2] != "runs":
            continue  # not TensorBoardCallback's output_dir/runs/<date>_<host> layout
        states = sorted(
            (root / Path(*parts[:-2])).glob("checkpoint-*/trainer_state.json"),
            key=lambda path: _step(path.parent.name),
        )
        if not states:
            continue
        try:
            with open_binary(str(states[-1])) as stream:  # a FIFO planted there: refused, not waited on
                raw = stream.read(MAX_JSON + 1)  # a larger file is not read whole: not the Trainer's
            state = loads(raw) if len(raw) <= MAX_JSON else {}
            args = state["stateful_callbacks"]["EarlyStoppingCallback"]["args"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no callback recorded (or not the Trainer's file, or a huge or nested one): nothing to say
        if not isinstance(args, dict) or all(args.get(k) == v for k, v in own.items()):
            continue
        given = ", ".join(f"{k}={v}" for k, v in args.items())
        where = states[-1].relative_to(root).as_posix()
        flag = f" (--patience {args['early_stopping_patience']})" if "early_stopping_patience" in args else ""
        record.notes.append(
            f"the run's own EarlyStoppingCallback ({where}): {given}; the report replays "
            f"{policy.name} with its settings above, give the run's{flag} to replay what it ran with"
        )


def _step(name: str) -> int:
    tail = name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else -1
