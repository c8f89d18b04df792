"""The words arguments may take, and the checks every public function runs on what it is given.

One place, so that every function and option refuses a bad value the same way: a
:class:`~runlens.errors.RunlensError` naming the option, what it must be, and what it got. Each
check returns the value as the code wants it (an ``int``, a ``float``, a ``bool``), so a NumPy
integer given as a count comes out a plain ``int`` (JSON-ready).

The vocabularies are ``Literal`` types, used in signatures; :func:`choice` checks a value against
one, and ``typing.get_args(Mode)`` lists its words (the CLI builds its ``--mode`` choices so).

This module imports nothing heavy (no NumPy, no pandas): the CLI uses it before it loads anything,
and every package may import it (``policies/`` included).

>>> count("patience", 3), finite_number("min_delta", 1e-3), choice("mode", "max", Mode)
(3, 0.001, 'max')
>>> count("keep_best", 0, minimum=1)
Traceback (most recent call last):
...
runlens.errors.RunlensError: keep_best must be a whole number >= 1, got 0
>>> choice("mode", "maximum", Mode)
Traceback (most recent call last):
...
runlens.errors.RunlensError: mode must be one of 'auto', 'min', 'max', got 'maximum'
"""

from __future__ import annotations

import math
import sys
from numbers import Integral, Real
from typing import Any, Literal, get_args, overload

from runlens.errors import RunlensError

# How a monitored metric improves: "auto" goes by its name, as the framework does.
Mode = Literal["auto", "min", "max"]
# Which Keras decides: Keras 3.x, tf.keras 2.x / tf-keras, or tf-keras on NumPy 1.x (see
# runlens.policies.monitor).
Semantics = Literal["keras3", "keras2", "keras2-numpy1"]
# Which learning rate a log holds for an epoch: the one used during it, or the one after
# ReduceLROnPlateau reduced it (ReduceLROnPlateau placed before TensorBoard).
LRTiming = Literal["used", "after"]


def choice(option: str, value: Any, vocabulary: Any) -> str:
    """``value`` if it is one of the words of ``vocabulary``: a ``Literal`` type, or a tuple.

    >>> choice("lr_timing", "used", LRTiming), choice("format", "csv", ("csv", "json"))
    ('used', 'csv')
    """
    words = get_args(vocabulary) or tuple(vocabulary)
    if value not in words:
        raise RunlensError(f"{option} must be one of {', '.join(map(repr, words))}, got {value!r}")
    return value


def count(option: str, value: Any, *, minimum: int = 0) -> int:
    """``value`` as an ``int`` >= ``minimum`` (Python or NumPy integers; a bool is refused).

    >>> count("patience", 1.5)
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: patience must be a whole number >= 0, got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise RunlensError(f"{option} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


@overload
def number(
    option: str, value: Any, *, minimum: float | None = ..., finite: bool = ..., none: Literal[False] = ...
) -> float: ...
@overload
def number(
    option: str, value: Any, *, minimum: float | None = ..., finite: bool = ..., none: bool
) -> float | None: ...
def number(
    option: str, value: Any, *, minimum: float | None = None, finite: bool = False, none: bool = False
) -> float | None:
    """``value`` as a ``float``: any real number but NaN (a bool is refused); infinities only
    without ``finite``; at least ``minimum`` when given; ``None`` passed through with ``none``.

    >>> number("min_age", float("inf"), minimum=0), number("baseline", None, none=True)
    (inf, None)
    >>> number("threshold", float("nan"))
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: threshold must be a number, got nan
    """
    if none and value is None:
        return None
    ok = not isinstance(value, bool) and isinstance(value, Real) and not math.isnan(value)
    ok = ok and (not finite or math.isfinite(value)) and (minimum is None or value >= minimum)
    if not ok:
        kind = "a finite number" if finite else "a number"
        at_least = "" if minimum is None else f" >= {minimum:g}"
        raise RunlensError(f"{option} must be {kind}{at_least}{' or None' if none else ''}, got {value!r}")
    return float(value)


def finite_number(option: str, value: Any, *, minimum: float | None = None) -> float:
    """``value`` as a finite ``float`` (see :func:`number`).

    >>> finite_number("min_delta", float("inf"))
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: min_delta must be a finite number, got inf
    """
    return number(option, value, minimum=minimum, finite=True)


@overload
def flag(option: str, value: Any, *, none: Literal[False] = ...) -> bool: ...
@overload
def flag(option: str, value: Any, *, none: bool) -> bool | None: ...
def flag(option: str, value: Any, *, none: bool = False) -> bool | None:
    """``value`` as a ``bool``: ``True`` or ``False`` (NumPy's too), not 0, 1 or "yes"; ``None``
    passed through with ``none``.

    >>> flag("check_finite", 1)
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: check_finite must be True or False, got 1
    """
    if none and value is None:
        return None
    numpy = sys.modules.get("numpy")  # a NumPy bool can only come from a program that loaded NumPy
    if isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_)):
        return bool(value)
    raise RunlensError(f"{option} must be True{', False or None' if none else ' or False'}, got {value!r}")
