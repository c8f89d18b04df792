"""Pure replays of training-control policies on logged values; no I/O.

- :mod:`~runlens.policies.base`: the protocol every policy speaks and the ``POLICIES`` registry;
- :mod:`~runlens.policies.monitor`: metric direction and the improvement test the Keras policies share;
- :mod:`~runlens.policies.early_stopping`: :class:`EarlyStopping` (``runlens.EarlyStopping``);
- :mod:`~runlens.policies.plateau`: :class:`ReduceLROnPlateau` (``runlens.ReduceLROnPlateau``);
- ``lightning/``, ``transformers/``, ``torch/``: the other frameworks' policies;
- :mod:`~runlens.policies.runs`: per-run series of an epoch frame, decisions, savings and regret;
- :mod:`~runlens.policies.learning_rate`: the one learning-rate replay path (starting-rate rule);
- :mod:`~runlens.policies.replay`: ``runlens.replay`` (one row per run);
- :mod:`~runlens.policies.sweep`: ``runlens.sweep`` (a grid of settings across runs).

Callers (replay, sweep, the report) use only the protocol, never a policy's class.
"""
