"""HF Trainer's TensorBoardCallback logs -> one row per evaluation.

The callback writes every ``Trainer.log`` dict at ``state.global_step`` after
``rewrite_logs`` (transformers/integrations/integration_utils.py) turned ``eval_x`` into
``eval/x``, ``test_x`` into ``test/x`` and every other key ``k`` into ``train/k``. That is undone
here, so columns carry the Trainer's own keys: ``eval_loss``, ``eval_<metric>``, ``loss``,
``learning_rate``, ``grad_norm``. An evaluation is a step with ``eval/*`` tags; its epoch is HF's
``train/epoch`` at that step: the Trainer's fractional epoch *progress* (1.0 at the end of the
first epoch, 0.5 halfway through it), as in ``trainer_state.json``'s ``log_history``.
"""

from __future__ import annotations

import pandas as pd

from runlens.evals.steps import step_evals
from runlens.textsafe import tag_list

EPOCH_TAG = "train/epoch"


def trainer_key(tag: str) -> str:
    """The Trainer's log key of a TensorBoard tag (``rewrite_logs`` undone).

    >>> [trainer_key(t) for t in ("eval/loss", "test/acc", "train/learning_rate", "custom")]
    ['eval_loss', 'test_acc', 'learning_rate', 'custom']
    """
    for prefix, key_prefix in (("eval/", "eval_"), ("test/", "test_"), ("train/", "")):
        if tag.startswith(prefix):
            return key_prefix + tag[len(prefix) :]
    return tag


def evals(long: pd.DataFrame, monitor: str | None) -> pd.DataFrame:
    """The evaluations of the HF runs in ``long`` (``monitor`` decides nothing: every evaluation
    logs all its metrics at once)."""
    return step_evals(long, lambda tag: tag.startswith("eval/"), epoch_tag=EPOCH_TAG, rename=trainer_key)


def no_evals(tags: set[str], monitor: str | None) -> str:
    """Why an HF run gave no evaluation."""
    return (
        f"no eval/* tags (was eval_strategy 'no'?); tags: {tag_list(tags)}; pass framework='generic' "
        "and monitor='<tag>' to read one evaluation per logged value of a tag"
    )
