"""Pure replays of training-control policies on logged values; no I/O.

- :mod:`~runlens.policies.monitor`: metric direction and the improvement test every policy shares;
- :mod:`~runlens.policies.early_stopping`: :class:`EarlyStopping` (``runlens.EarlyStopping``);
- :mod:`~runlens.policies.plateau`: :class:`ReduceLROnPlateau` (``runlens.ReduceLROnPlateau``);
- :mod:`~runlens.policies.runs`: per-run series of an epoch frame, savings and regret;
- :mod:`~runlens.policies.replay`: ``runlens.replay`` (one row per run);
- :mod:`~runlens.policies.sweep`: ``runlens.sweep`` (a grid of settings across runs).
"""
