"""torch's learning-rate policies, replayed offline: ``runlens.torch.ReduceLROnPlateau``.

Pure replays: importing this needs no torch, and does not stand in for it: code that does
``import torch`` gets the real one (absolute imports never resolve to ``runlens.torch``).

>>> import runlens.torch
>>> runlens.torch.ReduceLROnPlateau(patience=0).replay([1.0, 1.0], initial_lr=0.1).reduced_at
(1,)
"""

if __name__ != "runlens.torch":  # pragma: no cover - only when Python runs inside src/runlens/
    # The current folder comes first on sys.path, so `import torch` found this file instead of the
    # real torch: fail loudly rather than stand in for it.
    raise ImportError(
        f"{__file__} was imported as {__name__!r}; run Python outside src/runlens/ to get the real torch"
    )

from runlens.policies.torch.plateau import ReduceLROnPlateau, TorchPlateauResult

__all__ = ["ReduceLROnPlateau", "TorchPlateauResult"]
