"""The one shape every replayed policy has: settings in, ``replay(values)`` out, a frozen result.

A policy object mirrors one framework class (``keras.callbacks.EarlyStopping``,
``lightning.pytorch.callbacks.EarlyStopping``, ``torch.optim.lr_scheduler.ReduceLROnPlateau``, ...):
its constructor takes that class' arguments with that framework's defaults, ``settings()`` says them
back as a dict (constructor order, JSON-ready: ``type(p)(**p.settings())`` is ``p`` again), and
``replay(values, ...)`` decides on a sequence of logged values exactly as the framework would,
returning a frozen dataclass. ``metric`` names the logged value it reads and ``direction`` which way
is better: that is all :func:`runlens.replay`, :func:`runlens.sweep` and the report ask of a policy,
so they never look at its class.

Every index in a result is 0-based into the values replayed (one value per evaluation the
framework's patience counts: a Keras epoch, a Lightning validation check, an HF evaluation), and
``None`` when the event does not happen:

- a **stopping** result has ``stopped_at`` (the evaluation after which training stops), ``best_at``
  (the framework's best when training ends) and, where the framework restores weights,
  ``restored_at`` (whose weights ``fit`` returns; without it: the last evaluation trained);
- a **learning-rate** result has ``learning_rates`` (entry ``i``: the rate in effect while value
  ``i`` was produced), ``reduced_at`` (indexes after whose value the rate was cut) and ``final_lr``;
  an LR policy's ``replay`` takes the starting rate as ``initial_lr=``.

Optional capabilities (a policy without them still works everywhere, only slower or plainer):

- ``trace_runs(values, present, lengths)`` + ``traced`` (the name of one setting, e.g.
  ``"patience"``): one pass over many runs (rows of ``(runs, evaluations)`` arrays padded with
  ``present=False`` past each run's length) that answers every value of that setting at once;
  :func:`runlens.sweep` and :func:`runlens.replay` (hence the report) use it. The returned object's
  ``decisions(settings) -> (stopped, restored)`` and ``best_epochs(stopped)`` give ``(runs,
  settings)`` arrays of indexes (-1: none). The plain ``replay`` stays the reference the pass is
  tested against. (Keras' EarlyStopping also has ``trace(values)``, the same pass for one run.)
- ``replay_runs(values, present)``: the same arrays, one pass for the policy's own setting,
  giving ``(stopped, best)`` per run (-1: none), for a policy that restores no weights (each run
  ends with its last trained epoch's); what Lightning's and HF's stopping policies have. The
  plain ``replay`` stays the reference here too.
- ``sweep_grid``: what :func:`runlens.sweep` tries when given no grid; ``preference()``: among
  settings that save the same, the smaller is recommended (e.g. the more patient one).

Adding a policy is one module (under a framework folder when it is not Keras') holding the class
and its result, plus one line in :data:`POLICIES`; see docs/policies.md ("Adding a policy").

>>> from runlens.policies.base import StoppingResult
>>> import runlens
>>> isinstance(runlens.EarlyStopping(patience=1).replay([1.0, 2.0]), StoppingResult)
True
>>> runlens.EarlyStopping(patience=1).replace(patience=3).settings()["patience"]
3
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

PolicyKind = Literal["stopping", "lr"]
Direction = Literal["min", "max"]

_P = TypeVar("_P", bound="PolicyBase")


@runtime_checkable
class StoppingResult(Protocol):
    """What every stopping replay answers (indexes into the values replayed, None: never)."""

    @property
    def stopped_at(self) -> int | None: ...

    @property
    def best_at(self) -> int | None: ...


@runtime_checkable
class LRResult(Protocol):
    """What every learning-rate replay answers."""

    @property
    def learning_rates(self) -> tuple[float, ...]: ...

    @property
    def reduced_at(self) -> tuple[int, ...]: ...

    @property
    def final_lr(self) -> float: ...


@runtime_checkable
class Policy(Protocol):
    """A replayable policy: its framework, kind, settings, the metric it reads, and its replay."""

    framework: ClassVar[str]  # "keras", "lightning", "transformers", "torch"
    kind: ClassVar[PolicyKind]

    @property
    def metric(self) -> str | None: ...  # the logged name it reads; None: given by the caller (torch)

    @property
    def direction(self) -> Direction: ...

    def settings(self) -> dict[str, Any]: ...

    def replay(self, values: Any, /, **options: Any) -> Any: ...


# "<framework>.<class name>" -> "<module>:<class name>": every policy runlens knows, imported on use.
POLICIES: dict[str, str] = {
    "keras.EarlyStopping": "runlens.policies.early_stopping:EarlyStopping",
    "keras.ReduceLROnPlateau": "runlens.policies.plateau:ReduceLROnPlateau",
    "lightning.EarlyStopping": "runlens.policies.lightning.early_stopping:EarlyStopping",
    "transformers.EarlyStoppingCallback": "runlens.policies.transformers.early_stopping:EarlyStoppingCallback",
    "torch.ReduceLROnPlateau": "runlens.policies.torch.plateau:ReduceLROnPlateau",
}


class PolicyBase:
    """What every policy class shares: its name, a repr, equality, ``replace`` and the framework's
    keyword arguments, all derived from :meth:`settings`.

    >>> import runlens
    >>> runlens.ReduceLROnPlateau(patience=2)
    ReduceLROnPlateau(monitor='val_loss', factor=0.1, patience=2, mode='auto', min_delta=0.0001, cooldown=0, min_lr=0.0, semantics='keras3')
    >>> runlens.EarlyStopping(patience=2).keyword_arguments()["patience"], runlens.EarlyStopping().name
    (2, 'keras.EarlyStopping')
    """

    framework: ClassVar[str]
    kind: ClassVar[PolicyKind]
    # Settings that are not arguments of the framework class (runlens' own, like ``semantics``, or
    # another object's, like HF's TrainingArguments): left out of keyword_arguments().
    extra_settings: ClassVar[tuple[str, ...]] = ()

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The registry name, ``"<framework>.<class name>"`` (a key of :data:`POLICIES`)."""
        return f"{self.framework}.{type(self).__name__}"

    def keyword_arguments(self) -> dict[str, Any]:
        """The settings the framework's own class takes: ``FrameworkClass(**p.keyword_arguments())``
        builds the live callback these settings describe."""
        return {k: v for k, v in self.settings().items() if k not in self.extra_settings}

    def replace(self: _P, **changes: Any) -> _P:
        """A copy with some settings changed (checked as the constructor checks them)."""
        return type(self)(**{**self.settings(), **changes})

    def described(self) -> dict[str, Any]:
        """``{"class": name, **settings()}``: the policy as JSON-ready data."""
        return {"class": self.name, **self.settings()}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.settings().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.settings() == other.settings()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.settings().items())))


def policy_class(name: str) -> type:
    """The policy class registered as ``name`` (e.g. ``"keras.EarlyStopping"``).

    >>> policy_class("keras.EarlyStopping").__name__
    'EarlyStopping'
    """
    import importlib

    from runlens.errors import RunlensError

    target = POLICIES.get(name)
    if target is None:
        raise RunlensError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def check_kind(option: str, policy: Any, kind: PolicyKind, example: str) -> None:
    """A RunlensError unless ``policy`` is a policy of ``kind`` (its class is never looked at)."""
    from runlens.errors import RunlensError

    if getattr(policy, "kind", None) != kind or not callable(getattr(policy, "replay", None)):
        what = "a stopping policy" if kind == "stopping" else "a learning-rate policy"
        raise RunlensError(
            f"{option} must be {example} or another {what} (runlens.policies.base.POLICIES), "
            f"got {type(policy).__name__}"
        )
