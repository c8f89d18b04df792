"""HF Trainer's policies, replayed offline: ``runlens.transformers.EarlyStoppingCallback``.

Pure replays: importing this needs neither torch nor transformers.

>>> import runlens.transformers
>>> runlens.transformers.EarlyStoppingCallback().replay([1.0, 1.1]).stopped_at
1
"""

if __name__ != "runlens.transformers":  # pragma: no cover - only when Python runs inside src/runlens/
    # The current folder comes first on sys.path, so `import transformers` found this file instead of the
    # real transformers: fail loudly rather than stand in for it.
    raise ImportError(
        f"{__file__} was imported as {__name__!r}; run Python outside src/runlens/ to get the real transformers"
    )

from runlens.policies.transformers.early_stopping import EarlyStoppingCallback, TransformersStoppingResult

__all__ = ["EarlyStoppingCallback", "TransformersStoppingResult"]
