"""Checkpoint file names of the bundle: ``{epoch}`` (1-based, as ModelCheckpoint) and the monitored value.

The default template is ``epoch_{epoch:03d}-<monitor>_{<monitor>:.6f}.keras`` (``.weights.h5`` with
``save_weights_only``), e.g. ``epoch_012-val_loss_0.451234.keras`` for epoch 11. An epoch whose
logs lack a field of the template (``validation_freq=2``: no ``val_loss`` every other epoch;
ModelCheckpoint raises ``KeyError`` there) is named by the *no-value template*, the template with
every value field replaced by ``none`` (``epoch_013-val_loss_none.keras``). Both templates parse back
with :class:`runlens.checkpoints.names.Template` and are recorded in ``runlens.json``.

>>> t = CheckpointNames.create("val_loss")
>>> t.name(11, {"val_loss": 0.4512345678, "loss": 0.3})
'epoch_012-val_loss_0.451235.keras'
>>> t.name(12, {"loss": 0.3})
'epoch_013-val_loss_none.keras'
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from runlens.checkpoints.names import Template, checkpoint_kind
from runlens.errors import RunlensError

NO_VALUE = "none"


@dataclass(frozen=True)
class CheckpointNames:
    """The template a run's checkpoints are named with, and its no-value twin."""

    template: str
    no_value: str

    @classmethod
    def create(
        cls, monitor: str, *, save_weights_only: bool = False, template: str | None = None
    ) -> CheckpointNames:
        """Check ``template`` (or build the default one) for ``monitor``; errors name the option."""
        suffix = ".weights.h5" if save_weights_only else ".keras"
        if template is None:
            if not monitor.isidentifier():
                raise RunlensError(
                    f"monitor {monitor!r} cannot appear in a file name template; pass "
                    "checkpoint_template='epoch_{epoch:03d}.keras' (or one with fields you log)"
                )
            template = f"epoch_{{epoch:03d}}-{monitor}_{{{monitor}:.6f}}{suffix}"
        if "/" in template or "\\" in template:
            raise RunlensError(
                f"checkpoint_template={template!r}: give a file name only; checkpoints always go "
                "into RUN/checkpoints/"
            )
        if checkpoint_kind(template) != ("weights" if save_weights_only else "keras"):
            raise RunlensError(
                f"checkpoint_template={template!r} must end in {suffix!r} "
                f"(save_weights_only={save_weights_only})"
            )
        fields = _fields(template)
        if "epoch" not in fields:
            raise RunlensError(f"checkpoint_template={template!r} needs an {{epoch}} field")
        Template(template)  # raises RunlensError when runlens could not parse the names back
        return cls(template, _without(template, set(fields) - {"epoch"}))

    def name(self, epoch: int, logs: dict[str, Any]) -> str:
        """The file name of 0-based ``epoch`` with these logs (the no-value template as soon as one
        field is missing, so that every name parses back with one of the two templates)."""
        complete = all(f == "epoch" or f in logs for f in _fields(self.template))
        return (self.template if complete else self.no_value).format(epoch=epoch + 1, **logs)

    def templates(self) -> list[str]:
        """Both templates, for :func:`runlens.read_checkpoints`."""
        return [self.template, self.no_value]


def _fields(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as exc:
        raise RunlensError(f"checkpoint_template={template!r} is not a format string: {exc}") from None


def _without(template: str, names: set[str]) -> str:
    """``template`` with the fields in ``names`` replaced by the literal ``none``.

    >>> _without("e{epoch:02d}-{val_loss:.2f}.keras", {"val_loss"})
    'e{epoch:02d}-none.keras'
    """
    parts = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name in names:
            parts.append(NO_VALUE)
        else:
            parts.append(
                "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
    return "".join(parts)
