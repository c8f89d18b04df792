"""runlens: when should this training run have stopped?

Read TensorBoard logdirs and checkpoint folders into pandas, replay Keras' EarlyStopping and
ReduceLROnPlateau offline exactly as Keras decides, rank and prune checkpoints safely.

>>> import runlens
>>> df = runlens.read_scalars("sample_logs")          # doctest: +SKIP
>>> epochs = runlens.read_epochs("sample_logs")       # doctest: +SKIP

The public API is re-exported here lazily: ``import runlens`` stays cheap and never imports
TensorFlow (only ``runlens.keras`` does).
"""

# No module-level imports: dir(runlens) lists the public API and nothing else.
__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "RunlensError": "runlens.errors",
    "DamagedDataWarning": "runlens.errors",
    "RunlensWarning": "runlens.errors",
    "CacheWarning": "runlens.errors",
    "read_scalars": "runlens.events.logdir",
    "read_epochs": "runlens.epochs",
    "epochs_from_scalars": "runlens.epochs",
    "read_evals": "runlens.evals",
    "evals_from_scalars": "runlens.evals",
    "find_event_files": "runlens.events.sources",
    "summarize_scalars": "runlens.events.summary",
    "write_frame": "runlens.export",
    "read_checkpoints": "runlens.checkpoints.index",
    "plan_prune": "runlens.checkpoints.plan",
    "plan_summary": "runlens.checkpoints.plan",
    "apply_prune": "runlens.checkpoints.prune",
    "PruneRefused": "runlens.checkpoints.errors",
    "KeepBestK": "runlens.checkpoints.retention",
    "KeepLastN": "runlens.checkpoints.retention",
    "KeepEveryN": "runlens.checkpoints.retention",
    "KeepNewerThan": "runlens.checkpoints.retention",
    "KeepRestoredEpoch": "runlens.checkpoints.retention",
    "KeepAny": "runlens.checkpoints.retention",
    "Ranking": "runlens.checkpoints.retention",
    "EarlyStopping": "runlens.policies.early_stopping",
    "EarlyStoppingResult": "runlens.policies.early_stopping",
    "ReduceLROnPlateau": "runlens.policies.plateau",
    "PlateauResult": "runlens.policies.plateau",
    "replay": "runlens.policies.replay",
    "sweep": "runlens.policies.sweep",
    "SweepResult": "runlens.policies.sweep",
    "build_report": "runlens.report.build",
    "render_report": "runlens.report.render",
    "Report": "runlens.report.model",
    "read_hparams": "runlens.hparams",
    "read_manifest": "runlens.manifest",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runlens' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["__version__", *_EXPORTS]


def __dir__() -> list[str]:
    """The public API only (not the submodules imported so far, nor this module's machinery)."""
    return sorted(__all__)
