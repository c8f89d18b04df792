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

__all__ = ["duration", "epoch", "epochs_text", "nbytes", "number", "percent", "policy_name", "policy_text"]

Lines = list[tuple[str, str]]

EPOCHS_NOTE = 'Epochs are 1-based, as Keras prints them ("Epoch 7/30"); JSON output keeps them 0-based.'


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
        if name == "class" or (name != "monitor" and _same(value, default)):
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
