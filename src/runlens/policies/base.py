"""The one shape every replayed policy has: settings in, ``replay(values)`` out, a frozen result.

A policy object mirrors one framework class (``keras.callbacks.EarlyStopping``,
``lightning.pytorch.callbacks.EarlyStopping``, ``torch.optim.lr_scheduler.ReduceLROnPlateau``, ...):
its constructor takes that class' arguments with that framework's defaults, ``settings()`` says them
back as a dict (constructor order, JSON-ready), and ``replay(values, ...)`` decides on a sequence of
logged values exactly as the framework would, returning a frozen dataclass.

Every index in a result is 0-based into the values replayed (one value per evaluation the
framework's patience counts: a Keras epoch, a Lightning validation check, an HF evaluation), and
``None`` when the event does not happen:

- a **stopping** result has ``stopped_at`` (the evaluation after which training stops), ``best_at``
  (the framework's best when training ends) and, where the framework restores weights,
  ``restored_at`` (whose weights ``fit`` returns);
- a **learning-rate** result has ``learning_rates`` (entry ``i``: the rate in effect while value
  ``i`` was produced), ``reduced_at`` (indexes after whose value the rate was cut) and ``final_lr``.

Adding a policy is one module (under a framework folder when it is not Keras') holding the class
and its result, plus one line in :data:`POLICIES`; see the README's contributor notes.

>>> from runlens.policies.base import StoppingResult
>>> import runlens
>>> isinstance(runlens.EarlyStopping(patience=1).replay([1.0, 2.0]), StoppingResult)
True
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

PolicyKind = Literal["stopping", "lr"]


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
    """A replayable policy: its framework, its kind, its settings and its replay."""

    framework: ClassVar[str]  # "keras", "lightning", "transformers", "torch"
    kind: ClassVar[PolicyKind]

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


class SettingsRepr:
    """A policy's repr in its framework's terms: the class name and :meth:`settings`.

    >>> import runlens
    >>> runlens.ReduceLROnPlateau(patience=2)
    ReduceLROnPlateau(monitor='val_loss', factor=0.1, patience=2, mode='auto', min_delta=0.0001, cooldown=0, min_lr=0.0, semantics='keras3')
    """

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.settings().items())
        return f"{type(self).__name__}({arguments})"


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
