"""Keras callbacks that write a run in the layout runlens reads best (imports keras/tensorflow).

This is the only runlens package that imports Keras; ``import runlens`` never does. Import it
explicitly::

    import runlens.keras

    model.fit(x, y, validation_data=(xv, yv), epochs=100,
              callbacks=runlens.keras.callbacks("runs/exp1", early_stopping={"patience": 5}))

``RUN/`` then holds ``train/`` and ``validation/`` (TensorBoard), ``checkpoints/`` (the best
``keep_best`` and last ``keep_last``), ``history.csv`` and ``runlens.json`` (see
:mod:`runlens.manifest`); read it with ``runlens.read_epochs``, ``runlens.read_checkpoints``,
``runlens.read_hparams`` and ``runlens.read_manifest``. The order of the callbacks is explained in
:mod:`runlens.keras.bundle`.
"""

from runlens.keras.bundle import callbacks
from runlens.keras.checkpoint import BestKCheckpoint
from runlens.keras.csv_history import ResumableCSVLogger
from runlens.keras.hparams_summary import HParamsSummary
from runlens.keras.run_manifest import RunManifest

__all__ = ["BestKCheckpoint", "HParamsSummary", "ResumableCSVLogger", "RunManifest", "callbacks"]
