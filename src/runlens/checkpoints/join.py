"""Give each checkpoint its epoch's full-precision metrics from the logs.

Names hold rounded values (``{val_loss:.2f}``); the epoch frame (``runlens.read_epochs``) holds what
Keras logged. Joined on ``(run, epoch)``, a logged value replaces the name's, and a name value stays
where the logs have none for that epoch.

>>> table = join_epoch_metrics(table, runlens.read_epochs("runs/"))   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

_LOG_FOLDERS = ("train", "validation")  # Keras' TensorBoard callback writes RUN/train, RUN/validation


def join_epoch_metrics(table: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every metric column of ``epochs`` filled in at each row's ``(run, epoch)``.

    Runs match by name; when neither side's names match but each has exactly one run, those two
    are paired (checkpoints in ``ckpt/`` with logs in ``logs/``). ``metrics_from`` becomes
    ``"logs"`` on rows whose epoch the logs hold.

    Example:
        >>> joined = join_epoch_metrics(runlens.read_checkpoints("ckpt/"),
        ...                             runlens.read_epochs("logs/"))          # doctest: +SKIP
    """
    metrics = [c for c in epochs.columns if c not in ("run", "epoch", "wall_time")]
    logs = epochs[["run", "epoch", *metrics]].copy()
    ckpt_runs, log_runs = set(table["run"].dropna()), set(logs["run"])
    if not ckpt_runs & log_runs and len(ckpt_runs) == 1 and len(log_runs) == 1:
        logs["run"] = next(iter(ckpt_runs))
    logs["epoch"] = logs["epoch"].astype("Int64")
    logs["run"] = logs["run"].astype(table["run"].dtype)  # the same key type (names: NAME_DTYPE)
    logs["_found"] = True
    table = table.reset_index(drop=True)
    joined = table.merge(logs, on=["run", "epoch"], how="left", suffixes=("", "_logged"))
    found = joined.pop("_found").fillna(False).astype(bool)
    for metric in metrics:
        if metric in table.columns:
            logged = joined.pop(f"{metric}_logged").astype("Float64")
            joined[metric] = logged.fillna(table[metric].astype("Float64"))
        else:
            joined[metric] = joined[metric].astype("Float64")
    joined["metrics_from"] = joined["metrics_from"].where(~found, "logs").astype("str")
    return joined


def layout_logdir(root: Path, paths: Iterable[str]) -> Path | None:
    """The logdir of the bundled layout (``RUN/checkpoints`` beside ``RUN/train``), if there is one.

    >>> layout_logdir(Path("runs"), ["runs/exp1/checkpoints/e_01.keras"])   # doctest: +SKIP
    PosixPath('runs')
    """

    def has_logs(folder: Path) -> bool:
        return any((folder / name).is_dir() for name in _LOG_FOLDERS)

    if root.name == "checkpoints" and has_logs(root.parent):
        return root.parent
    for path in paths:
        folder = Path(path).parent
        if folder != root and folder.name == "checkpoints" and has_logs(folder.parent):
            return root
    return None
