"""HF Trainer's ``EarlyStoppingCallback`` replayed on logged values, with the Trainer's best metric.

Read from ``transformers/trainer_callback.py`` (``EarlyStoppingCallback.check_metric_value`` and
``on_evaluate``) and ``transformers/trainer.py`` (``Trainer._determine_best_metric``). On each
evaluation, first the callback (it runs inside ``Trainer.evaluate``):

- the value improved iff the Trainer has no ``best_metric`` yet, or it beats ``best_metric``
  (``np.greater``/``np.less``) *and* ``abs(value - best_metric) > early_stopping_threshold``;
- improved: ``counter = 0``, else ``counter += 1``; training stops when ``counter >= patience``;

then the Trainer's own update: ``best_metric`` starts at -/+inf and takes every value that beats it
strictly -- *without* the threshold. So the callback compares each value with the previous
evaluation's best, not with the last value that cleared the threshold: slow steady progress, each
step smaller than the threshold, keeps resetting nothing yet keeps moving the bar (the quirk
``runlens`` reproduces). The first evaluation always resets the counter, even a NaN (the Trainer's
best then stays +/-inf, and the next finite value clears any threshold). Arithmetic is float64.

An evaluation without the metric (None) is skipped as the callback skips it (a warning in HF); the
Trainer itself raises ``KeyError`` there when the metric is missing from all of the evaluation's
metrics, so such values only come from evaluations on several datasets.

>>> es = EarlyStoppingCallback(3, 0.01)
>>> r = es.replay([1.0, 0.995, 0.991, 0.987])
>>> r.stopped_at, r.best_at, r.counter
(3, 3, (0, 1, 2, 3))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from runlens.arguments import count, flag, number
from runlens.errors import RunlensError
from runlens.options import SWEEP_PATIENCE
from runlens.policies.base import Direction, PolicyBase, PolicyKind
from runlens.policies.monitor import as_epoch_values

__all__ = ["EarlyStoppingCallback", "TransformersStoppingResult"]


@dataclass(frozen=True)
class TransformersStoppingResult:
    """What the HF EarlyStoppingCallback would have done with one run's evaluations (0-based).

    Attributes:
        stopped_at: the evaluation after which training stops (None: it never stops).
        best_at: the evaluation whose value is the Trainer's ``best_metric`` when training ends
            (``state.best_global_step``'s evaluation; None when no value beat +/-inf).
        best_metric: the Trainer's ``best_metric`` then (+/-inf after only NaNs; None before any
            evaluation).
        counter: the callback's ``early_stopping_patience_counter`` after each evaluation run.
    """

    stopped_at: int | None
    best_at: int | None
    best_metric: float | None
    counter: tuple[int, ...]


class EarlyStoppingCallback(PolicyBase):
    """Replay of ``transformers.EarlyStoppingCallback`` with the TrainingArguments it reads.

    Args:
        early_stopping_patience: evaluations without improvement before stopping (0 stops at the
            first evaluation, as in HF).
        early_stopping_threshold: how much a value must beat the Trainer's best by to count.
        metric_for_best_model: TrainingArguments' name of the metric (``"loss"`` and
            ``"eval_loss"`` are the same: the Trainer prefixes ``eval_``).
        greater_is_better: None: False when the name ends with ``"loss"``, else True (as
            ``TrainingArguments.__post_init__``).

    >>> EarlyStoppingCallback(metric_for_best_model="accuracy").monitor
    'eval_accuracy'
    """

    framework: ClassVar[str] = "transformers"
    kind: ClassVar[PolicyKind] = "stopping"
    # TrainingArguments' settings, not the callback's: left out of keyword_arguments()
    extra_settings: ClassVar[tuple[str, ...]] = ("metric_for_best_model", "greater_is_better")
    sweep_grid: ClassVar[dict[str, tuple]] = {"early_stopping_patience": SWEEP_PATIENCE}

    def __init__(
        self,
        early_stopping_patience: int = 1,
        early_stopping_threshold: float = 0.0,
        *,
        metric_for_best_model: str = "loss",
        greater_is_better: bool | None = None,
    ) -> None:
        if not isinstance(metric_for_best_model, str) or not metric_for_best_model:
            raise RunlensError(
                f"metric_for_best_model must be a metric name such as 'loss', got {metric_for_best_model!r}"
            )
        greater_is_better = flag("greater_is_better", greater_is_better, none=True)
        if greater_is_better is None:
            greater_is_better = not metric_for_best_model.endswith("loss")
        self.early_stopping_patience = count("early_stopping_patience", early_stopping_patience)
        self.early_stopping_threshold = number("early_stopping_threshold", early_stopping_threshold)
        self.metric_for_best_model = metric_for_best_model
        self.greater_is_better = greater_is_better

    @property
    def monitor(self) -> str:
        """The key the callback reads: ``eval_`` + ``metric_for_best_model`` unless it has it."""
        name = self.metric_for_best_model
        return name if name.startswith("eval_") else f"eval_{name}"

    @property
    def metric(self) -> str:
        """The logged key the callback reads (:attr:`monitor`)."""
        return self.monitor

    @property
    def direction(self) -> Direction:
        return "max" if self.greater_is_better else "min"

    def preference(self) -> tuple:
        """Among settings that save as much, the sweep prefers more patience, then a smaller
        threshold."""
        return (-self.early_stopping_patience, abs(self.early_stopping_threshold))

    def settings(self) -> dict[str, Any]:
        """The callback's arguments, then the TrainingArguments it reads (``greater_is_better``
        resolved)."""
        return {
            "early_stopping_patience": self.early_stopping_patience,
            "early_stopping_threshold": self.early_stopping_threshold,
            "metric_for_best_model": self.metric_for_best_model,
            "greater_is_better": self.greater_is_better,
        }

    def replay(self, values: Any) -> TransformersStoppingResult:
        """Replay on one value per evaluation (None/pd.NA: an evaluation without the metric).

        >>> EarlyStoppingCallback(2).replay([float("nan"), 5.0, 6.0, 7.0]).stopped_at
        3
        """
        floats, present = as_epoch_values(values, name="values")
        beats = (lambda a, b: a > b) if self.greater_is_better else (lambda a, b: a < b)  # np.greater/less
        threshold = self.early_stopping_threshold
        best: float | None = None  # TrainerState.best_metric
        best_at, stopped_at, counter = None, None, 0
        counters: list[int] = []
        for evaluation, (value, logged) in enumerate(zip(floats.tolist(), present.tolist())):
            should_stop = False
            if logged:
                # EarlyStoppingCallback.on_evaluate -> check_metric_value
                if best is None or (beats(value, best) and abs(value - best) > threshold):
                    counter = 0
                else:
                    counter += 1
                should_stop = counter >= self.early_stopping_patience
                # Trainer._determine_best_metric, after evaluate() returns
                if best is None:
                    best = -math.inf if self.greater_is_better else math.inf
                if beats(value, best):
                    best, best_at = value, evaluation
            counters.append(counter)
            if should_stop:  # control.should_training_stop
                stopped_at = evaluation
                break
        return TransformersStoppingResult(stopped_at, best_at, best, tuple(counters))

    def replay_runs(self, values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`replay` of many runs at once, as :func:`runlens.policies.runs.decide_runs` asks:
        ``values`` and ``present`` are ``(runs, evaluations)`` arrays (past a run's length,
        ``present`` is False). Gives, per run, the evaluation it stops at and its best, -1 where
        none (the callback restores no weights): the evaluations walked once, numpy over the runs,
        deciding as :meth:`replay` does (float64 throughout, as Python's floats there);
        tests/test_stopping_in_one_pass.py holds it to :meth:`replay` run by run.

        >>> EarlyStoppingCallback(1).replay_runs(
        ...     np.array([[1.0, 2.0, 0.5], [3.0, 2.0, 1.0]]), np.ones((2, 3), bool))
        (array([ 1, -1]), array([0, 2]))
        """
        runs, evaluations = values.shape
        beats = np.greater if self.greater_is_better else np.less
        best = np.full(runs, -math.inf if self.greater_is_better else math.inf)  # once one is logged
        seen = np.zeros(runs, dtype=bool)  # TrainerState.best_metric is set (None before)
        counter = np.zeros(runs, dtype=np.int64)
        best_at = np.full(runs, -1, dtype=np.int64)
        stopped = np.full(runs, -1, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            for evaluation in range(evaluations):
                value = values[:, evaluation]
                judged = present[:, evaluation] & (stopped < 0)  # evaluations after a stop never happen
                kept = ~seen | (beats(value, best) & (np.abs(value - best) > self.early_stopping_threshold))
                counter = np.where(judged & kept, 0, counter + (judged & ~kept))
                stopped[judged & (counter >= self.early_stopping_patience)] = evaluation
                seen |= judged
                improved = judged & beats(value, best)
                best = np.where(improved, value, best)
                best_at[improved] = evaluation
        return stopped, best_at
