"""Numbers, epochs and policies as the report writes them for humans.

Epochs are printed 1-based (as Keras prints "Epoch 7"), numbers rounded for reading, a policy as
its class with the settings that differ from its framework's defaults.

>>> epochs_text([4, 5, 29])
'5, 6 and 30'
>>> duration(3725.0), nbytes(812032)
('1 h 02 min', '793.0 KiB')
>>> policy_text({"class": "keras.EarlyStopping", "monitor": "val_loss", "patience": 5, "min_delta": 0.0})
'EarlyStopping(monitor=val_loss, patience=5)'
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

from runlens.policies.base import policy_class
from runlens.units import nbytes

__all__ = [
    "duration",
    "epoch",
    "epochs_text",
    "framework_text",
    "nbytes",
    "number",
    "percent",
    "point",
    "points_text",
    "policy_name",
    "policy_text",
    "units",
]

Lines = list[tuple[str, str]]

EPOCHS_NOTE = 'Epochs are 1-based, as Keras prints them ("Epoch 7/30"); JSON output keeps them 0-based.'

# How each framework's report numbers what its patience counts (JSON: 0-based indexes, see steps/epochs).
NUMBERING_NOTES = {
    "keras": EPOCHS_NOTE,
    "lightning": (
        "Validation checks are counted from 1; epochs and steps are Lightning's own (0-based, as its "
        "progress bar and checkpoint names print them); JSON output keeps checks 0-based."
    ),
    "transformers": (
        "Evaluations are named by the global step and the fractional epoch the HF Trainer logged them at; "
        "JSON output numbers them 0-based."
    ),
    "generic": (
        "Evaluations (one per logged value of the monitor) are counted from 1, steps as logged; JSON "
        "output numbers them 0-based."
    ),
}
# What the policy's patience counts in each framework, singular and plural.
UNITS = {
    "keras": ("epoch", "epochs"),
    "lightning": ("validation check", "validation checks"),
    "transformers": ("evaluation", "evaluations"),
    "generic": ("evaluation", "evaluations"),
}


def units(framework: str, n: int | None = None) -> str:
    """The unit a framework's patience counts, plural unless ``n == 1``.

    >>> units("lightning"), units("transformers", 1)
    ('validation checks', 'evaluation')
    """
    one, many = UNITS.get(framework, UNITS["generic"])
    return one if n == 1 else many


def point(
    framework: str, index: int | None, steps: Sequence[int | None], epochs: Sequence[float | None]
) -> str:
    """A 0-based evaluation as that framework's users know it ("-" for None): Keras "epoch 7";
    Lightning "validation check 7, epoch 13"; HF "evaluation at step 1200, epoch 2.4"; generic
    "evaluation 7 (step 1200)".

    >>> point("keras", 6, [], []), point("lightning", 6, [90] * 7, [13.0] * 7)
    ('epoch 7', 'validation check 7, epoch 13')
    >>> point("transformers", 2, [400, 800, 1200], [0.8, 1.6, 2.4])
    'evaluation at step 1200, epoch 2.4'
    """
    if index is None:
        return "-"
    if framework == "keras" or index >= len(steps):
        return f"{units(framework, 1)} {index + 1}"
    step, e = steps[index], epochs[index]
    if framework == "lightning":
        return f"validation check {index + 1}, " + (f"epoch {e:g}" if e is not None else f"step {step}")
    if framework == "transformers":
        return f"evaluation at step {step}" + ("" if e is None else f", epoch {round(e, 2):g}")
    return f"evaluation {index + 1} (step {step})"


def points_text(framework: str, indexes: Sequence[int | None], steps: Sequence, epochs: Sequence) -> str:
    """Several evaluations in words: Keras' "epoch(s) 5, 6 and 30", else each as :func:`point`."""
    if framework == "keras":
        return f"epoch(s) {epochs_text(indexes)}"
    items = [point(framework, i, steps, epochs) for i in indexes]
    if len(items) > 4:  # an HF schedule changes the rate at every logging step
        return f"{items[0]}; {items[1]}; ... and {items[-1]} ({len(items)} in all)"
    if len(items) <= 1:
        return "".join(items) or "none"
    return f"{'; '.join(items[:-1])} and {items[-1]}"


def epoch(e: int | None) -> str:
    """A 0-based epoch as Keras prints it (1-based); "-" for None."""
    return "-" if e is None else str(e + 1)


def epochs_text(epochs: Sequence[int | None]) -> str:
    """0-based epochs as a 1-based list in words (unknown epochs as "?")."""
    items = ["?" if e is None else str(e + 1) for e in epochs]
    if len(items) <= 1:
        return "".join(items) or "none"
    return f"{', '.join(items[:-1])} and {items[-1]}"


def number(value: float | None) -> str:
    """A metric value to 6 significant digits ("n/a" for None)."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None or math.isnan(fraction) else f"{100 * fraction:.1f}%"


def duration(seconds: float | None) -> str:
    """Seconds for reading: "3.61 s", "4 min 05 s", "1 h 02 min" ("n/a" for None/NaN)."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def policy_name(described: dict[str, Any]) -> str:
    """The class name of a described policy (``{"class": "keras.EarlyStopping", ...}``), with its
    framework unless it is Keras' (``lightning.EarlyStopping``).

    >>> policy_name({"class": "keras.EarlyStopping"}), policy_name({"class": "torch.ReduceLROnPlateau"})
    ('EarlyStopping', 'torch.ReduceLROnPlateau')
    """
    framework, _, name = described["class"].partition(".")
    return name if framework == "keras" else described["class"]


def policy_text(described: dict[str, Any], *, direction: str | None = None) -> str:
    """A described policy as its class and the settings that differ from the framework's
    defaults (the monitor always, with ``direction`` when given)."""
    parameters = inspect.signature(policy_class(described["class"])).parameters
    parts = []
    for name, value in described.items():
        default = parameters[name].default if name in parameters else inspect.Parameter.empty
        named = name in ("monitor", "metric_for_best_model")  # the metric: always said
        if name == "class" or (not named and _same(value, default)):
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if name == "monitor" and direction:
            text += f" ({direction})"
        parts.append(f"{name}={text}")
    return f"{policy_name(described)}({', '.join(parts)})"


def _same(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty or type(value) is bool or type(default) is bool:
        return value is default
    return value == default


def framework_text(framework: str) -> str:
    """Which framework wrote the runs and which of its policies replays them, with which defaults."""
    own = {
        "lightning": "Lightning's TensorBoardLogger logs; replayed with Lightning's EarlyStopping, whose "
        "patience counts validation checks (its defaults: monitor val_loss, patience 3, mode min)",
        "transformers": "HF Trainer logs; replayed with the Trainer's EarlyStoppingCallback, whose patience "
        "counts evaluations (its defaults: patience 1 on eval_loss, threshold 0, against the Trainer's "
        "best_metric); training ends with the last evaluation's weights (load_best_model_at_end=True loads "
        "the best evaluation's instead: its regret is 0)",
        "generic": "no framework's layout, one evaluation per logged value of the monitor; replayed with "
        "Lightning's EarlyStopping (patience counts evaluations; defaults patience 3, mode min)",
    }[framework]
    return f"{framework}: {own}; --patience, --min-delta, --monitor and --mode set its arguments"
