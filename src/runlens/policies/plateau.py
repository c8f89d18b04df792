"""ReduceLROnPlateau replayed on logged values, with the learning rate in float32 as Keras keeps it.

:meth:`ReduceLROnPlateau.replay` reads like Keras' ``ReduceLROnPlateau.on_epoch_end``
(``keras/src/callbacks/reduce_lr_on_plateau.py``). Per epoch with a value: in cooldown,
``cooldown_counter -= 1`` and ``wait = 0``; then if the value improves on the best it becomes the
best and ``wait = 0``; otherwise, out of cooldown, ``wait += 1`` and when ``wait >= patience`` and
``lr > float32(min_lr)`` the rate drops to ``max(lr * factor, min_lr)`` stored as float32,
``cooldown_counter = cooldown`` and ``wait = 0`` (when the rate is already at ``min_lr`` nothing is
reset). So ``cooldown=c`` suppresses ``c - 1`` epochs.

The new rate, by ``semantics``: Keras 3 multiplies the Python float rate in float64 and rounds the
result once to float32. tf-keras 2.x computes ``old_lr * factor`` with ``old_lr`` a
``numpy.float32`` (``tf_keras/src/callbacks.py``): NumPy >= 2 keeps that product in float32
(``"keras2"``), NumPy 1.x promoted it to float64 before the optimizer rounded it to float32
(``"keras2-numpy1"``: TensorFlow <= 2.17 ran on NumPy 1.x) -- the same arithmetic as Keras 3's, while
every comparison is tf-keras'. About one reduction in six lands one float32 step apart between the
two keras2 variants (patience 0, factor 0.1, values [1.0, 1.0], initial 0.1: 0.010000000707805157
under NumPy 2, 0.009999999776482582 under NumPy 1.26); tests/test_keras2_numpy1.py replays cases
recorded with the real tf-keras on NumPy 1.26 (``scripts/record_keras2_numpy1.py``).

Which rate a run logged for an epoch depends on the callback order (``logged_lr_timing``, see
:mod:`runlens.policies.learning_rate`, which also holds the starting-rate rule the report and
:func:`runlens.replay` share).

>>> r = ReduceLROnPlateau(patience=1, factor=0.5).replay([1.0, 1.0, 0.5, 0.6], initial_lr=0.1)
>>> r.learning_rates, r.reduced_at
((0.10000000149011612, 0.10000000149011612, 0.05000000074505806, 0.05000000074505806), (1, 3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from runlens.arguments import LRTiming, Semantics, choice, count, finite_number
from runlens.errors import RunlensError
from runlens.policies.base import PolicyKind
from runlens.policies.learning_rate import diverges_at
from runlens.policies.monitor import Monitor, MonitoredPolicy, as_epoch_values

__all__ = ["PlateauResult", "ReduceLROnPlateau"]


@dataclass(frozen=True)
class PlateauResult:
    """What ReduceLROnPlateau would have done to the learning rate over one run's values.

    Attributes:
        learning_rates: the (float32) rate used during each epoch.
        reduced_at: epochs at whose end the rate was reduced.
        final_lr: the rate after the last epoch's decision.
        wait: Keras' ``wait`` counter after each epoch.
        diverges_at: with ``logged_lr``: the first epoch trained with a rate other than the one the
            run really used; metrics from that epoch on are counterfactual. None when the replayed
            schedule matches the log over all epochs (or no log was given).
    """

    learning_rates: tuple[float, ...]
    reduced_at: tuple[int, ...]
    final_lr: float
    wait: tuple[int, ...]
    diverges_at: int | None = None


class ReduceLROnPlateau(MonitoredPolicy):
    """Replay of ``keras.callbacks.ReduceLROnPlateau`` (same arguments and defaults, keyword-only).

    Args:
        monitor: the logged metric, e.g. ``"val_loss"``.
        factor: the rate is multiplied by this on a plateau (``0 <= factor < 1``).
        patience: epochs without improvement before reducing.
        mode: ``"auto"``, ``"min"`` or ``"max"``; see :func:`runlens.policies.monitor.metric_direction`.
        min_delta: smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound of the rate.
        semantics: ``"keras3"`` (Keras 3.x), ``"keras2"`` (tf-keras 2.x on NumPy >= 2) or
            ``"keras2-numpy1"`` (tf-keras 2.x on NumPy 1.x). runlens' own setting, not Keras'.

    >>> ReduceLROnPlateau(patience=2).replay([1, 1, 1, 1], initial_lr=1e-3).reduced_at
    (2,)
    """

    kind: ClassVar[PolicyKind] = "lr"

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        semantics: Semantics = "keras3",
    ) -> None:
        self.monitor = Monitor.create(
            monitor, mode=mode, min_delta=min_delta, semantics=semantics, callback="ReduceLROnPlateau"
        )
        self.factor = finite_number("factor", factor)
        if not 0.0 <= self.factor < 1.0:
            raise RunlensError(f"factor must be >= 0 and < 1 (the rate is multiplied by it), got {factor!r}")
        self.patience = count("patience", patience)
        self.cooldown = count("cooldown", cooldown)
        self.min_lr = finite_number("min_lr", min_lr)
        if self.min_lr < 0:
            raise RunlensError(f"min_lr must be >= 0, got {min_lr!r}")
        self.mode = mode

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments, in Keras' order."""
        m = self.monitor
        return {
            "monitor": m.name,
            "factor": self.factor,
            "patience": self.patience,
            "mode": self.mode,
            "min_delta": m.min_delta,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "semantics": m.semantics,
        }

    def replay(
        self,
        values: Any,
        *,
        initial_lr: float,
        logged_lr: Any = None,
        logged_lr_timing: LRTiming = "used",
    ) -> PlateauResult:
        """Replay on per-epoch values, starting from ``initial_lr``.

        ``logged_lr`` (per-epoch, None/NA where not logged) is compared in float32 with the replayed
        schedule to find ``diverges_at``; ``logged_lr_timing`` says which rate the run logged for an
        epoch: ``"used"`` (the rate used during it) or ``"after"`` (the rate after its decision).

        >>> p = ReduceLROnPlateau(patience=1)
        >>> p.replay([2, 2, 2], initial_lr=0.1, logged_lr=[0.1, 0.1, 0.1]).diverges_at
        2
        """
        choice("logged_lr_timing", logged_lr_timing, LRTiming)
        floats, present = as_epoch_values(values)
        lr = _float32(finite_number("initial_lr", initial_lr))
        if lr < 0:
            raise RunlensError(f"initial_lr must be >= 0, got {initial_lr!r}")
        monitor = self.monitor
        lhs = monitor.lhs(floats).tolist()
        thresholds = monitor.threshold(floats).tolist()
        threshold = monitor.initial_threshold
        wait, cooldown_counter = 0, 0
        rates: list[float] = []
        waits: list[int] = []
        reduced_at: list[int] = []
        for epoch, logged in enumerate(present.tolist()):
            rates.append(lr)
            if logged:
                if cooldown_counter > 0:
                    cooldown_counter -= 1  # Keras also zeroes wait here; in cooldown it is 0 already
                if monitor.better(lhs[epoch], threshold):
                    threshold = thresholds[epoch]
                    wait = 0
                elif cooldown_counter == 0:
                    wait += 1
                    if wait >= self.patience and lr > _float32(self.min_lr):
                        lr = self._reduced(lr)
                        reduced_at.append(epoch)
                        cooldown_counter = self.cooldown
                        wait = 0
            waits.append(wait)
        diverges = None
        if logged_lr is not None:
            logged, known = as_epoch_values(logged_lr, name="logged_lr")
            diverges = diverges_at(rates, lr, logged, known, logged_lr_timing)
        return PlateauResult(tuple(rates), tuple(reduced_at), lr, tuple(waits), diverges)

    def _reduced(self, lr: float) -> float:
        if self.semantics == "keras2":  # numpy.float32 * float stays float32 under NumPy >= 2
            product = float(np.float32(lr) * np.float32(self.factor))
            floor = _float32(self.min_lr)
            return floor if floor > product else product
        # keras3, and keras2-numpy1 (NumPy 1.x promotes the product to float64): one rounding
        return _float32(max(lr * self.factor, self.min_lr))


def _float32(x: float) -> float:
    return float(np.float32(x))
