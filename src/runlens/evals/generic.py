"""Any logdir, read by one tag: one evaluation per logged value of ``monitor`` (``val/loss``, say).

Tags keep their names; ``step`` is the step the monitor was logged at; ``epoch`` is a tag named
``epoch`` logged at that same step, when there is one. Other tags attach by window (see
:mod:`runlens.evals.steps`).
"""

from __future__ import annotations

import pandas as pd

from runlens.evals.steps import step_evals
from runlens.textsafe import tag_list

EPOCH_TAG = "epoch"


def evals(long: pd.DataFrame, monitor: str | None) -> pd.DataFrame:
    """One evaluation per logged value of ``monitor`` (none without one)."""
    return step_evals(long, lambda tag: tag == monitor, epoch_tag=EPOCH_TAG)


def no_evals(tags: set[str], monitor: str | None) -> str:
    """Why a generic run gave no evaluation, and what to pass."""
    if monitor is None:
        return (
            f"not a Keras, Lightning or HF Trainer layout; tags: {tag_list(tags)}; pass monitor='<tag>' "
            "to read one evaluation per logged value of that tag"
        )
    return f"no tag {monitor!r}; tags: {tag_list(tags)}; pass monitor= one of them"
