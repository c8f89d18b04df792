"""Lightning's policies, replayed offline: ``runlens.lightning.EarlyStopping``.

Pure replays: importing this needs neither torch nor lightning (and ``import torch`` elsewhere
still finds the real torch: runlens' modules are always reached as ``runlens.<name>``).

>>> import runlens.lightning
>>> runlens.lightning.EarlyStopping("val_loss").replay([1.0, 1.1, 1.2, 1.3]).stopped_at
3
"""

if __name__ != "runlens.lightning":  # pragma: no cover - only when Python runs inside src/runlens/
    # The current folder comes first on sys.path, so `import lightning` found this file instead of the
    # real lightning: fail loudly rather than stand in for it.
    raise ImportError(
        f"{__file__} was imported as {__name__!r}; run Python outside src/runlens/ to get the real lightning"
    )

from runlens.policies.lightning.early_stopping import (
    REASONS,
    EarlyStopping,
    LightningStoppingResult,
    can_stop_from,
)

__all__ = ["REASONS", "EarlyStopping", "LightningStoppingResult", "can_stop_from"]
