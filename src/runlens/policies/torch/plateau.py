"""torch's ``ReduceLROnPlateau`` replayed on logged values, in Python floats as torch computes.

Read from ``torch/optim/lr_scheduler.py`` (``ReduceLROnPlateau.step``, ``_is_better`` and
``_reduce_lr``). Per ``step(value)``:

- better? (min/rel ``value < best * (1 - threshold)``, min/abs ``value < best - threshold``,
  max/rel ``value > best * (threshold + 1)``, max/abs ``value > best + threshold``; NaN never is):
  ``best = value``, ``bad = 0``; else ``bad += 1``;
- in cooldown: ``cooldown_counter -= 1`` and ``bad = 0``;
- ``bad > patience`` (strictly: Keras' rule is ``>=``): ``new = max(lr * factor, min_lr)``, applied
  only when ``lr - new > eps``; then ``cooldown_counter = cooldown`` and ``bad = 0`` whether or not
  the rate changed.

``best`` starts at +inf (min) or -inf (max). One parameter group; a value that is None (not logged)
makes no ``step`` at all (Lightning skips a scheduler whose monitor is missing when its config says
``strict=False``).

>>> r = ReduceLROnPlateau(patience=1, factor=0.5).replay([1.0, 1.0, 1.0, 0.5], initial_lr=0.1)
>>> r.learning_rates, r.reduced_at, r.final_lr
((0.1, 0.1, 0.1, 0.05), (2,), 0.05)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from runlens.arguments import choice, count, finite_number
from runlens.errors import RunlensError
from runlens.policies.base import Direction, PolicyBase, PolicyKind
from runlens.policies.monitor import as_epoch_values

ThresholdMode = Literal["rel", "abs"]

__all__ = ["ReduceLROnPlateau", "TorchPlateauResult"]


@dataclass(frozen=True)
class TorchPlateauResult:
    """What torch's ReduceLROnPlateau would have done to the rate over one run's values.

    Attributes:
        learning_rates: entry ``i``: the rate in effect while value ``i`` was produced (entry 0 is
            ``initial_lr``).
        reduced_at: indexes after whose ``step`` the rate changed.
        final_lr: the rate after the last step.
        num_bad_epochs: the scheduler's ``num_bad_epochs`` after each value.
        best: the scheduler's ``best`` after the last step (+/-inf when nothing was better).
    """

    learning_rates: tuple[float, ...]
    reduced_at: tuple[int, ...]
    final_lr: float
    num_bad_epochs: tuple[int, ...]
    best: float


class ReduceLROnPlateau(PolicyBase):
    """Replay of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (its arguments and defaults, less
    the optimizer: ``replay`` takes the starting rate).

    torch's own checks raise here too, as :class:`RunlensError` naming the option (``factor < 1``,
    ``mode``, ``threshold_mode``); runlens also wants whole ``patience``/``cooldown`` >= 0 and
    finite numbers elsewhere, where torch would go on with nonsense.

    >>> ReduceLROnPlateau(patience=0, cooldown=1).replay([1, 1, 1, 1], initial_lr=1.0).reduced_at
    (1, 3)
    """

    framework: ClassVar[str] = "torch"
    kind: ClassVar[PolicyKind] = "lr"

    def __init__(
        self,
        mode: Direction = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: ThresholdMode = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.mode = choice("mode", mode, Direction)  # torch: "mode ... is unknown!"
        self.threshold_mode = choice("threshold_mode", threshold_mode, ThresholdMode)
        self.factor = finite_number("factor", factor)
        if self.factor >= 1.0:
            raise RunlensError(f"factor should be < 1.0 (the rate is multiplied by it), got {factor!r}")
        self.patience = count("patience", patience)
        self.threshold = finite_number("threshold", threshold)
        self.cooldown = count("cooldown", cooldown)
        self.min_lr = finite_number("min_lr", min_lr)
        self.eps = finite_number("eps", eps)

    @property
    def metric(self) -> None:
        """None: torch's scheduler takes the value in ``step(value)``, it names no metric (the
        caller says which; :func:`runlens.replay` uses the stopping policy's)."""
        return None

    @property
    def direction(self) -> Direction:
        return self.mode  # type: ignore[return-value]

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments, in torch's order."""
        return {
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "threshold_mode": self.threshold_mode,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "eps": self.eps,
        }

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def replay(self, values: Any, *, initial_lr: float) -> TorchPlateauResult:
        """Replay ``step(value)`` for each value, the optimizer starting at ``initial_lr``.

        >>> ReduceLROnPlateau(patience=0).replay([1.0, 1.0], initial_lr=0.1).final_lr
        0.010000000000000002
        """
        floats, present = as_epoch_values(values, name="values")
        lr = finite_number("initial_lr", initial_lr, minimum=0)
        best = math.inf if self.mode == "min" else -math.inf  # _reset: mode_worse
        bad, cooldown_counter = 0, 0
        rates: list[float] = []
        bads: list[int] = []
        reduced_at: list[int] = []
        for index, (current, logged) in enumerate(zip(floats.tolist(), present.tolist())):
            rates.append(lr)
            if logged:
                if self._is_better(current, best):
                    best, bad = current, 0
                else:
                    bad += 1
                if cooldown_counter > 0:
                    cooldown_counter -= 1
                    bad = 0  # ignore any bad epochs in cooldown
                if bad > self.patience:
                    new_lr = max(lr * self.factor, self.min_lr)
                    if lr - new_lr > self.eps:
                        lr = new_lr
                        reduced_at.append(index)
                    cooldown_counter = self.cooldown
                    bad = 0
            bads.append(bad)
        return TorchPlateauResult(tuple(rates), tuple(reduced_at), lr, tuple(bads), best)
