"""Lightning's TensorBoardLogger logs -> one row per validation check.

Tags keep the names ``self.log`` gave them (``val_loss``, ``train_loss_epoch``, ``lr-Adam``), as
Lightning's callbacks monitor them. A validation check is a step at which a validation metric was
logged: a tag that says validation in one of its ``/`` parts (``val_loss``, ``valid/acc``,
``loss/val``; see :func:`~runlens.evals.detect.is_validation_tag`) or the ``monitor`` given (so a
run monitoring ``train_loss_epoch`` without validation counts its epochs). Each check's epoch is the
``epoch`` scalar Lightning logs with every ``log_metrics`` call at the same step.
"""

from __future__ import annotations

import pandas as pd

from runlens.evals.detect import is_validation_tag
from runlens.evals.steps import step_evals
from runlens.textsafe import tag_list

EPOCH_TAG = "epoch"


def evals(long: pd.DataFrame, monitor: str | None) -> pd.DataFrame:
    """The validation checks of the Lightning runs in ``long`` (see :mod:`runlens.evals.steps`)."""
    return step_evals(long, lambda tag: is_validation_tag(tag) or tag == monitor, epoch_tag=EPOCH_TAG)


def no_evals(tags: set[str], monitor: str | None) -> str:
    """Why a Lightning run gave no check, and what to pass."""
    if monitor is not None:
        return f"no tag {monitor!r} and no validation tag (val*/valid*/validation*); tags: {tag_list(tags)}"
    return (
        f"no validation tag (val*/valid*/validation*); tags: {tag_list(tags)}; pass monitor='<name>' "
        "to count one check per logged value of that tag"
    )
