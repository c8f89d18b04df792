"""Real ModelCheckpoint output for the checkpoint tests: one tiny Keras 3 fit, written once.

The fit (8 epochs, learning rate 1.0, seed 1: val_loss falls until epoch 4, 0-based, then rises)
runs with TensorBoard and three ModelCheckpoint callbacks into the bundled layout::

    exp/train/, exp/validation/              TensorBoard logs           -> run "exp"
    exp/checkpoints/epoch_NN-V.VVVV.keras    every epoch                -> run "exp", kind keras
    exp/checkpoints/w.NNN-V.VV.weights.h5    every epoch, weights only  -> run "exp", kind weights
    exp/best/best_NN_V.VVe-01.keras          save_best_only=True        -> run "exp/best"

Tests get a private copy (``copy_fitted``) to damage, link or prune.

``keras_hdf5_once`` writes the HDF5 files real Keras versions save (Keras 3 and tf-keras, full
models and weights); ``write_data_h5`` writes HDF5 files that are not checkpoints (h5py datasets).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import writers

EPOCHS = 8
TEMPLATES = {
    "every": "epoch_{epoch:02d}-{val_loss:.4f}.keras",
    "weights": "w.{epoch:03}-{val_loss:.2f}.weights.h5",
    "best": "best_{epoch:02d}_{val_loss:.2e}.keras",
}
FOLDERS = {"every": "exp/checkpoints", "weights": "exp/checkpoints", "best": "exp/best"}
OLD = 1_000_000_000  # a modification time (2001) far outside any --min-age
NOW = OLD + 3600  # "now" for plans of copies made by copy_fitted: an hour after every mtime


@dataclass(frozen=True)
class Fitted:
    """A folder of real checkpoints and the logs Keras had at each epoch's end (full precision)."""

    root: Path
    logs: dict[int, dict[str, float]]

    def files(self, series: str) -> list[Path]:
        """The checkpoint files one ModelCheckpoint wrote, in epoch order."""
        suffix = ".weights.h5" if series == "weights" else ".keras"
        prefix = TEMPLATES[series].split("{")[0]
        return sorted(
            p
            for p in (self.root / FOLDERS[series]).iterdir()
            if p.name.startswith(prefix) and p.name.endswith(suffix)
        )

    def name_of(self, series: str, epoch: int) -> str:
        """The name ModelCheckpoint gives epoch ``epoch`` (0-based): ``format(epoch=epoch + 1, **logs)``."""
        return TEMPLATES[series].format(epoch=epoch + 1, **self.logs[epoch])

    def best_epochs(self) -> list[int]:
        """Epochs save_best_only saved: each strictly improved val_loss (min mode)."""
        saved, best = [], float("inf")
        for epoch, logs in sorted(self.logs.items()):
            if logs["val_loss"] < best:
                saved.append(epoch)
                best = logs["val_loss"]
        return saved


_CACHE: dict[str, Fitted] = {}


def fitted_once(tmp_path_factory) -> Fitted:
    """Fit once per test session (module fixtures of every checkpoint test module share it)."""
    if "fit" not in _CACHE:
        import keras

        root = tmp_path_factory.mktemp("checkpoint_fit")
        callbacks = [
            keras.callbacks.ModelCheckpoint(str(root / FOLDERS["every"] / TEMPLATES["every"])),
            keras.callbacks.ModelCheckpoint(
                str(root / FOLDERS["weights"] / TEMPLATES["weights"]), save_weights_only=True
            ),
            keras.callbacks.ModelCheckpoint(
                str(root / FOLDERS["best"] / TEMPLATES["best"]), save_best_only=True
            ),
        ]
        fit = writers.keras_fit(root / "exp", epochs=EPOCHS, lr_schedule=1.0, seed=1, callbacks=callbacks)
        _CACHE["fit"] = Fitted(root, fit.logs)
    return _CACHE["fit"]


def copy_fitted(fitted: Fitted, dest: Path, *, mtime: float | None = OLD) -> Fitted:
    """A private copy; every checkpoint's mtime set to ``mtime`` (None: keep the copied times)."""
    root = Path(shutil.copytree(fitted.root, dest, symlinks=True))
    if mtime is not None:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and "tfevents" not in path.name:
                os.utime(path, (mtime, mtime))
    return Fitted(root, fitted.logs)


#: file name -> who wrote it: every HDF5 layout the installed Keras 3 and tf-keras save
KERAS_HDF5 = {
    "k3_model.h5": "Keras 3 model.save (legacy_h5_format)",
    "k3_w.weights.h5": "Keras 3 save_weights (saving_lib.H5IOStore)",
    "tfk_model.h5": "tf-keras model.save (hdf5_format)",
    "tfk_w.h5": "tf-keras save_weights to .h5 (legacy weights layout)",
    "tfk_w.weights.h5": "tf-keras save_weights to .weights.h5 (saving_lib)",
}


def keras_hdf5_once(tmp_path_factory) -> Path:
    """A folder holding one file per entry of ``KERAS_HDF5``, each saved by the real library."""
    if "hdf5" not in _CACHE:
        import keras
        import numpy as np
        import tf_keras

        root = tmp_path_factory.mktemp("keras_hdf5")
        for prefix, library in (("k3", keras), ("tfk", tf_keras)):
            model = library.Sequential(
                [library.Input((3,)), library.layers.Dense(4), library.layers.Dense(1)]
            )
            model.compile("adam", "mse")
            model.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0)
            model.save(str(root / f"{prefix}_model.h5"))
            model.save_weights(str(root / f"{prefix}_w.weights.h5"))
            if prefix == "tfk":
                model.save_weights(str(root / f"{prefix}_w.h5"))
        _CACHE["hdf5"] = root
    return _CACHE["hdf5"]


def write_data_h5(path: Path, *, seed: int = 0, **options) -> Path:
    """An HDF5 data file (h5py datasets, as a prediction dump would be): not a checkpoint."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w", **options) as f:
        f["predictions"] = rng.random((50, 3))
        f["labels"] = rng.integers(0, 3, 50)
        f.attrs["epoch"] = seed
    return path


def make_plan(root: Path, k: int = 2):
    """plan_prune(KeepBestK(k, "val_loss")) of the fit's checkpoints under ``root``, at ``NOW``."""
    import runlens

    table = runlens.read_checkpoints(root, template=list(TEMPLATES.values()))
    return runlens.plan_prune(table, rules=[runlens.KeepBestK(k, "val_loss")], now=NOW)


def tree_state(root: Path) -> dict[str, object]:
    """Every file under ``root`` (sha256, mtime_ns) and symlink (its target); lock files left out."""
    import hashlib

    out: dict[str, object] = {}
    for path in Path(root).rglob("*"):
        if path.is_symlink():
            out[str(path)] = ("->", os.readlink(path))
        elif path.is_file() and path.name != ".runlens-prune.lock":
            out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), os.lstat(path).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Fitted:
    """The session's fit (import this fixture into a test module to use it)."""
    return fitted_once(tmp_path_factory)


@pytest.fixture
def folder(fitted, tmp_path) -> Fitted:
    """A private copy of the fit, old enough for every min-age."""
    return copy_fitted(fitted, tmp_path / "runs")
