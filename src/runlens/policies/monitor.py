"""Which way a metric should go, and when a value counts as an improvement.

The one comparison every policy shares (EarlyStopping, ReduceLROnPlateau, the sweep, checkpoint
ranking and runlens' own Keras callbacks), as Keras factors it into ``MonitorCallback``:

- ``semantics="keras3"`` (Keras 3.x): ``mode="auto"`` knows ``loss`` and the directions of Keras'
  built-in metrics (anything else is an error asking for an explicit mode); an improvement is
  ``float32(value - delta) < float32(best)`` (``>`` in max mode) with ``delta = -abs(min_delta)`` in
  min mode and ``+abs(min_delta)`` in max mode; the subtraction happens in float64 (Keras hands
  callbacks Python floats) and the comparison in float32 on the TensorFlow backend, whose CPU kernels
  treat float32 subnormals as zero. There is no best before the first value: it always improves.
- ``semantics="keras2"`` (tf-keras 2.x): ``mode="auto"`` goes by the name (each callback its own
  rule, see :func:`metric_direction`), comparisons are float64, the best starts at +/-inf, and
  ReduceLROnPlateau compares ``value < best - min_delta`` (``>`` and ``+`` in max mode) with
  ``min_delta`` taken as given (its sign is not dropped).
- ``semantics="keras2-numpy1"``: tf-keras 2.x running on NumPy 1.x (TensorFlow <= 2.17). It decides
  as keras2 does; only ReduceLROnPlateau's new rate is computed differently (see
  :mod:`runlens.policies.plateau`).

>>> metric_direction("val_accuracy")
'max'
>>> m = Monitor.create("val_loss", mode="auto", min_delta=0.1, semantics="keras3")
>>> m.improves(0.45, 0.5), m.improves(0.35, 0.5)
(False, True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from runlens.arguments import Mode, Semantics, choice, finite_number
from runlens.errors import RunlensError
from runlens.policies.base import Direction, PolicyBase

CallbackKind = Literal["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"]

# Log names Keras 3 gives its built-in metrics (the string passed to compile(), or the default name
# of a metric object), by the direction the metric declares (`_direction` "up"/"down"). Metrics that
# declare none (Mean, Sum, TruePositives, ...) are left out: Keras 3 cannot resolve them either.
# tests/test_policy_monitor.py checks this table against the metrics of an installed Keras.
_KERAS3_MAX = frozenset(
    """
    accuracy acc Accuracy binary_accuracy BinaryAccuracy categorical_accuracy CategoricalAccuracy
    sparse_categorical_accuracy SparseCategoricalAccuracy top_k_categorical_accuracy
    TopKCategoricalAccuracy sparse_top_k_categorical_accuracy SparseTopKCategoricalAccuracy
    auc AUC precision Precision recall Recall precision_at_recall recall_at_precision
    sensitivity_at_specificity specificity_at_sensitivity f1_score F1Score fbeta_score f_beta_score
    FBetaScore r2_score R2Score cosine_similarity CosineSimilarity pearson_correlation
    PearsonCorrelation concordance_correlation ConcordanceCorrelation binary_io_u BinaryIoU io_u
    mean_io_u one_hot_io_u one_hot_mean_io_u
    """.split()
)
_KERAS3_MIN = frozenset(
    """
    mse MSE mean_squared_error MeanSquaredError root_mean_squared_error RootMeanSquaredError
    mae MAE mean_absolute_error MeanAbsoluteError mape MAPE mean_absolute_percentage_error
    MeanAbsolutePercentageError msle MSLE mean_squared_logarithmic_error
    MeanSquaredLogarithmicError logcosh log_cosh_error LogCoshError bce BCE binary_crossentropy
    BinaryCrossentropy categorical_crossentropy CategoricalCrossentropy
    sparse_categorical_crossentropy SparseCategoricalCrossentropy hinge Hinge squared_hinge
    SquaredHinge categorical_hinge CategoricalHinge kl_divergence KLDivergence poisson Poisson
    """.split()
)
# Keras makes metric object names unique with a suffix: a second AUC() logs as "auc_1".
_UNIQUE_SUFFIX = re.compile(r"_\d+$")

_F32_TINY = float(np.finfo(np.float32).tiny)


def metric_direction(
    monitor: str,
    mode: Mode = "auto",
    semantics: Semantics = "keras3",
    *,
    callback: CallbackKind = "EarlyStopping",
) -> Direction:
    """Whether ``monitor`` should go down (``"min"``) or up (``"max"``), as Keras decides it.

    ``mode="min"``/``"max"`` is returned as is. ``mode="auto"``:

    - keras3: strip one ``val_`` prefix; ``loss`` is min; a built-in Keras metric name (or that name
      with Keras' ``_<n>`` uniqueness suffix, like ``auc_1``) has that metric's direction; anything
      else raises :class:`RunlensError` asking for an explicit mode (Keras 3 raises too). ``callback``
      makes no difference.
    - keras2 and keras2-numpy1 (tf-keras 2.x), by ``callback``: ``EarlyStopping`` is max when the
      name ends with ``acc``/``accuracy``/``auc``; ``ReduceLROnPlateau`` when it contains ``acc``;
      ``ModelCheckpoint`` when it contains ``acc`` or starts with ``fmeasure``; otherwise min.

    >>> metric_direction("val_auc_2"), metric_direction("val_auc", semantics="keras2",
    ...                                                  callback="ReduceLROnPlateau")
    ('max', 'min')
    """
    choice("semantics", semantics, Semantics)
    choice("callback", callback, CallbackKind)
    choice("mode", mode, Mode)
    if not isinstance(monitor, str) or not monitor:
        raise RunlensError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
    if mode != "auto":
        return mode  # type: ignore[return-value]
    if semantics != "keras3":
        return _keras2_direction(monitor, callback)
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    for candidate in (name, _UNIQUE_SUFFIX.sub("", name)):
        if candidate in _KERAS3_MAX:
            return "max"
        if candidate in _KERAS3_MIN:
            return "min"
    raise RunlensError(
        f"cannot tell whether monitor {monitor!r} should be minimized or maximized: it is not a "
        "built-in Keras metric; pass mode='min' or mode='max'"
    )


def _keras2_direction(monitor: str, callback: str) -> Direction:
    if callback == "EarlyStopping":
        up = monitor.endswith(("acc", "accuracy", "auc"))
    elif callback == "ReduceLROnPlateau":
        up = "acc" in monitor
    else:
        up = "acc" in monitor or monitor.startswith("fmeasure")
    return "max" if up else "min"


@dataclass(frozen=True)
class Monitor:
    """The improvement test of one policy: direction, ``min_delta`` and Keras version rules.

    An improvement check is ``better(lhs(value), threshold(best))``: :meth:`lhs` and
    :meth:`threshold` map whole arrays at once, so replays convert each series once and then only
    compare floats (exact: both sides hold values of the comparison precision).

    >>> m = Monitor.create("val_loss", mode="auto", min_delta=0.0, semantics="keras3")
    >>> m.improves(0.1, None), m.improves(float("nan"), 1.0)
    (True, False)
    """

    name: str
    direction: Direction
    min_delta: float
    semantics: Semantics
    callback: CallbackKind = "EarlyStopping"

    @classmethod
    def create(
        cls,
        monitor: str,
        *,
        mode: Mode = "auto",
        min_delta: float = 0.0,
        semantics: Semantics = "keras3",
        callback: CallbackKind = "EarlyStopping",
    ) -> Monitor:
        """Resolve ``mode`` and validate ``min_delta`` (any finite number, as Keras accepts)."""
        direction = metric_direction(monitor, mode, semantics, callback=callback)
        return cls(monitor, direction, finite_number("min_delta", min_delta), semantics, callback)

    @property
    def _delta_on_best(self) -> bool:
        # tf-keras 2.x ReduceLROnPlateau: `value < best - min_delta`, min_delta's sign kept.
        return self.semantics != "keras3" and self.callback == "ReduceLROnPlateau"

    @property
    def initial_threshold(self) -> float | None:
        """The threshold before any value was seen: None (keras3: the first value always improves)."""
        if self.semantics == "keras3":
            return None
        return math.inf if self.direction == "min" else -math.inf

    def lhs(self, values: np.ndarray) -> np.ndarray:
        """The value side of the comparison, in its precision (float64 array holding it exactly)."""
        values = np.asarray(values, dtype=np.float64)
        if self._delta_on_best:
            return values
        delta = abs(self.min_delta) if self.direction == "max" else -abs(self.min_delta)
        shifted = values - delta
        return _as_float32(shifted) if self.semantics == "keras3" else shifted

    def threshold(self, best: np.ndarray | float) -> np.ndarray:
        """What a value (or a baseline) becomes as the reference once it is the best."""
        best = np.asarray(best, dtype=np.float64)
        if self.semantics == "keras3":
            return _as_float32(best)
        if self._delta_on_best:
            return best - self.min_delta if self.direction == "min" else best + self.min_delta
        return best

    def better(self, lhs: Any, threshold: Any) -> Any:
        """True when a prepared value beats a prepared threshold (None: nothing to beat); on
        arrays, element-wise (the batched replay, :mod:`runlens.policies.traces`, compares with it).

        >>> m = Monitor.create("val_loss", mode="min")
        >>> m.better(0.5, None), m.better(np.array([0.4, 0.6, np.nan]), np.array([0.5, 0.5, 0.5])).tolist()
        (True, [True, False, False])
        """
        if threshold is None:
            return True
        return lhs < threshold if self.direction == "min" else lhs > threshold

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` improves on ``best`` (None: no best yet), exactly as Keras decides."""
        reference = self.initial_threshold if best is None else float(self.threshold(best))
        return self.better(float(self.lhs(np.array([value]))[0]), reference)


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Round to float32 as TensorFlow converts a Python float, subnormals flushed to zero."""
    with np.errstate(over="ignore"):
        out = np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)
    out[np.abs(out) < _F32_TINY] = 0.0
    return out


def as_epoch_values(values: Any, *, name: str = "values") -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch values -> (float64 array, bool array "a value was logged"), position = epoch.

    In a list or numpy array, ``None`` and ``pd.NA`` mean the epoch has no value and NaN is a logged
    NaN. A pandas Series (or pandas array) says it with ``isna()``, as everywhere in pandas: in a
    nullable ``Float64`` column (epoch frames) NA is "not logged" and NaN a logged NaN; in a plain
    float64 column NaN is pandas' own missing marker, so it means "not logged" (a CSV log read with
    pandas, say).

    >>> v, present = as_epoch_values([0.5, None, float("nan")])
    >>> present.tolist()
    [True, False, True]
    """
    if isinstance(values, (pd.Series, pd.Index, ExtensionArray)):
        present = ~np.asarray(values.isna(), dtype=bool)
        try:
            floats = np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RunlensError(f"{name} must hold numbers: {exc}") from None
        return floats, present
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise RunlensError(f"{name} must be a sequence of per-epoch numbers, got {type(values).__name__}")
    items = list(values)
    present = np.array([v is not None and v is not pd.NA for v in items], dtype=bool)
    try:
        floats = np.array([float(v) if p else math.nan for v, p in zip(items, present)], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RunlensError(f"{name} must hold numbers, None or NaN: {exc}") from None
    return floats, present


class MonitoredPolicy(PolicyBase):
    """What the replayed Keras callbacks share: their :class:`Monitor` and a repr in Keras' terms.

    ``semantics`` is runlens' own setting (which Keras decides), not an argument of Keras' class.

    >>> from runlens import EarlyStopping
    >>> EarlyStopping(patience=2)
    EarlyStopping(monitor='val_loss', min_delta=0.0, patience=2, mode='auto', baseline=None, restore_best_weights=False, start_from_epoch=0, semantics='keras3')
    >>> EarlyStopping(monitor="val_accuracy").metric, EarlyStopping(monitor="val_accuracy").direction
    ('val_accuracy', 'max')
    """

    framework: ClassVar[str] = "keras"
    extra_settings: ClassVar[tuple[str, ...]] = ("semantics",)
    monitor: Monitor

    @property
    def semantics(self) -> str:
        return self.monitor.semantics

    @property
    def metric(self) -> str:
        """The Keras ``logs`` key the policy reads (``monitor``)."""
        return self.monitor.name

    @property
    def direction(self) -> Direction:
        """Which way ``monitor`` improves, as ``mode`` resolved it."""
        return self.monitor.direction

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments, in Keras' order."""
        raise NotImplementedError
