"""Shared fixtures: logdirs written once per session by real writers (see tests/writers.py).

Session fixtures are read-only: a test that damages or adds files works on ``copy_logdir(path)``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The text report follows COLUMNS (issue 13); pytest-xdist's workers set it to 80. The tests quote
# text as the report lays it out when the width is unknown (110); the width tests set their own.
os.environ["COLUMNS"] = "110"
sys.path.insert(0, str(Path(__file__).parent))  # `import writers` from any test module

import writers

# checkpoint_fits' fixtures (fitted, folder: a real ModelCheckpoint fit) for every test module
pytest_plugins = ["checkpoint_fits"]


class Written:
    """A logdir and the scalars written into it (``writers.Scalar`` records, runs relative to it)."""

    def __init__(self, path: Path, scalars: list[writers.Scalar]):
        self.path, self.scalars = path, scalars


@pytest.fixture(scope="session")
def tf_logdir(tmp_path_factory) -> Written:
    """Runs ``tf2`` (tf.summary.scalar), ``float64``/``float16``/``int64`` (tf.summary.write),
    ``tf1`` (TF1 FileWriter, float_val, metadata on first value only)."""
    root = tmp_path_factory.mktemp("tf_logdir")
    scalars = writers.rebase(writers.write_tf2_scalars(root / "tf2"), "tf2")
    for dtype in ("float64", "float16", "int64"):
        scalars += writers.rebase(writers.write_tf2_tensors(root / dtype, dtype=dtype), dtype)
    scalars += writers.rebase(writers.write_tf1_scalars(root / "tf1"), "tf1")
    return Written(root, scalars)


@pytest.fixture(scope="session")
def simple_value_logdir(tmp_path_factory) -> Written:
    """Runs ``tensorboardX``, ``tensorboardX/hparams`` and ``raw`` (see writers.write_simple_values)."""
    root = tmp_path_factory.mktemp("simple_value_logdir")
    return Written(root, writers.write_simple_values(root))


@pytest.fixture(scope="session")
def keras_run(tmp_path_factory) -> writers.KerasFit:
    """A 6-epoch Keras 3 fit validated every epoch."""
    return writers.keras_fit(tmp_path_factory.mktemp("keras_run"), epochs=6)


@pytest.fixture(scope="session")
def keras_sparse_validation_run(tmp_path_factory) -> writers.KerasFit:
    """A 6-epoch Keras 3 fit with ``validation_freq=2``: val_* only at epochs 1, 3, 5."""
    return writers.keras_fit(tmp_path_factory.mktemp("keras_sparse"), epochs=6, validation_freq=2)


@pytest.fixture(scope="session")
def keras_plateau_run(tmp_path_factory) -> writers.KerasFit:
    """An 8-epoch fit whose ReduceLROnPlateau (after TensorBoard) halves the rate on every
    non-improving epoch, with batch-level logging (``batch_*`` tags, ``update_freq="batch"``).

    An integer ``update_freq`` that does not divide the batches per epoch makes Keras drop
    ``epoch_*`` summaries (tensorflow/tensorboard#4975), so "batch" is used here.
    """
    import keras

    reduce = keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1, min_delta=1.0)
    return writers.keras_fit(
        tmp_path_factory.mktemp("keras_plateau"), epochs=8, callbacks=[reduce], update_freq="batch"
    )


@pytest.fixture(scope="session")
def keras_resumed_run(tmp_path_factory) -> writers.CrashResume:
    """A 5-epoch fit crashed at the end of epoch 2 and resumed: epoch 2 is logged twice."""
    return writers.keras_fit_crash_resume(tmp_path_factory.mktemp("keras_resumed"), epochs=5, crash_epoch=2)


@pytest.fixture
def copy_logdir(tmp_path):
    """``copy_logdir(src) -> Path``: a private copy of a session logdir to damage or extend."""

    def copy(src: Path) -> Path:
        return Path(shutil.copytree(src, tmp_path / Path(src).name))

    return copy


@pytest.fixture(scope="session")
def sweep_logdir(tmp_path_factory) -> Path:
    """50 trials x at most 30 epochs of benchmarks/make_sweep.py's Keras sweep (its files are
    checked record by record against a real Keras fit), hparams recorded: the report's layout at
    sweep scale."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from make_sweep import make_keras_sweep

    root = tmp_path_factory.mktemp("sweep") / "sweep"
    make_keras_sweep(root, 50, 30, hparams=True)
    return root


@pytest.fixture(scope="session")
def sweep_report(sweep_logdir):
    import runlens

    return runlens.build_report(sweep_logdir)
