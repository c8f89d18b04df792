"""Keras' TensorBoard callback logs -> one row per epoch (``eval == epoch == step``).

The epoch frame of :func:`runlens.epochs_from_scalars` (``train``/``validation`` folders merged
under their parent, columns named as Keras' ``logs`` keys), with ``eval`` and ``step`` beside
``epoch``: Keras logs ``epoch_*`` tags at step = epoch and its patience counts epochs.
"""

from __future__ import annotations

import pandas as pd

from runlens.epochs import epochs_from_scalars
from runlens.textsafe import tag_list


def evals(long: pd.DataFrame, monitor: str | None) -> pd.DataFrame:
    """The epochs of the Keras runs in ``long``."""
    frame = epochs_from_scalars(long)
    epoch = frame.pop("epoch")
    frame.insert(1, "eval", epoch.to_numpy())
    frame.insert(2, "step", epoch.to_numpy())
    frame.insert(3, "epoch", epoch.to_numpy(dtype=float))
    return frame


def no_evals(tags: set[str], monitor: str | None) -> str:
    """Why a Keras run gave no epoch."""
    return f"no epoch_* tags; tags: {tag_list(tags)}"
