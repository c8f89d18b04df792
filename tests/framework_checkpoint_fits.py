"""Real Lightning ``.ckpt`` files and HF Trainer ``checkpoint-N/`` folders for the checkpoint tests.

Written once per test session by the real frameworks, in a process of its own (test workers never
import torch, Lightning or transformers for them), as ``python tests/framework_checkpoint_fits.py
OUT``. Each fit trains a real ``nn.Linear`` on 16 points; Lightning's ``val_loss`` follows
``SCRIPT`` (one value per validation check), so rankings are known; the HF Trainer's
``eval_loss`` is its own. Into OUT:

- ``lightning/lightning_logs/version_0/``: ``ModelCheckpoint(monitor="val_loss", save_top_k=-1,
  save_last=True)``, two validation checks per epoch (``val_check_interval=0.5``), 3 epochs: one
  ``epoch=E-step=S.ckpt`` per check and ``last.ckpt`` (a file), TensorBoard events, hparams.yaml;
- ``version_1/``: ``filename="{epoch}-{val_loss:.2f}"`` (``epoch=0-val_loss=0.90.ckpt``),
  ``save_top_k=-1``, ``save_last="link"`` (``last.ckpt`` a relative symlink) and ``mode="max"``:
  ModelCheckpoint's best is the *worst* val_loss, a real disagreement with a ranking by min;
- ``version_2/``: ``filename="{epoch}"``, two checks per epoch: the second of each epoch collides
  and is saved as ``epoch=E-v1.ckpt``;
- ``transformers/``: the HF Trainer with evaluation and a save every 2 steps, 3 epochs of 4 steps
  (``checkpoint-2`` ... ``checkpoint-12``), ``compute_metrics`` returning ``score`` = ``SCRIPT``
  per evaluation, ``load_best_model_at_end`` on it (``greater_is_better=False``: the best is
  ``checkpoint-8``, not the newest), its TensorBoard logs under ``runs/``;
- ``facts.json``: what the frameworks decided (best and last paths, best_k_models, the HF best).

Tests use private copies (``copy_tree``) to damage, prune or race.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SCRIPT = [0.9, 0.5, 0.7, 0.3, 0.6, 0.4]  # val_loss per check: best at check 3 (epoch 1, 2nd check)
EPOCHS = 3
OLD = 1_000_000_000  # a modification time (2001) far outside any --min-age
NOW = OLD + 3600


def lightning_fits(out: Path) -> dict:
    import lightning as L
    from framework_fits import FIT_TRAINER, fit_quietly, loader, scripted_module
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    facts = {}
    settings = [
        {"save_top_k": -1, "save_last": True},
        {"save_top_k": -1, "save_last": "link", "filename": "{epoch}-{val_loss:.2f}", "mode": "max"},
        {"save_top_k": -1, "filename": "{epoch}"},
    ]
    for version, options in enumerate(settings):
        L.seed_everything(0, verbose=False)
        checkpoint = ModelCheckpoint(monitor="val_loss", **options)
        trainer = L.Trainer(
            max_epochs=EPOCHS,
            val_check_interval=0.5,
            logger=TensorBoardLogger(str(out / "lightning")),
            callbacks=[checkpoint],
            **FIT_TRAINER,
        )
        module = scripted_module(SCRIPT, save_hparams=True, train_loss_per_epoch=False)
        fit_quietly(trainer, module, loader(16), loader(4))
        facts[f"version_{version}"] = {
            "best_model_path": os.path.basename(checkpoint.best_model_path),
            "last_model_path": os.path.basename(checkpoint.last_model_path),
            "best_k_models": {os.path.basename(k): float(v) for k, v in checkpoint.best_k_models.items()},
        }
    return facts


def transformers_fit(out: Path) -> dict:
    from framework_fits import trainer_fit

    fit = trainer_fit(
        out,
        SCRIPT,
        patience=None,
        eval_strategy="steps",
        eval_steps=2,
        epochs=EPOCHS,
        save_total_limit=None,
        logging_steps=2,
    )
    return {
        "best_model_checkpoint": os.path.basename(fit.best_checkpoint),
        "best_global_step": fit.best_global_step,
        "eval_score": {str(step): score for step, score in fit.scores.items()},
    }


def write(out: Path) -> None:
    out.mkdir(parents=True)
    facts = {"lightning": lightning_fits(out), "transformers": transformers_fit(out / "transformers")}
    (out / "facts.json").write_text(json.dumps(facts, indent=1))


def fits_once(tmp_path_factory) -> Path:
    """The session's fits (one writer for all xdist workers, under a file lock)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "framework_checkpoints"
    with FileLock(str(shared / "framework_checkpoints.lock")):
        if not (out / "facts.json").is_file():
            scratch = shared / "framework_checkpoints.partial"
            shutil.rmtree(scratch, ignore_errors=True)
            done = subprocess.run(
                [sys.executable, __file__, str(scratch)], capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, done.stderr[-4000:]
            scratch.rename(out)
    return out


def facts(root: Path) -> dict:
    return json.loads((root / "facts.json").read_text())


def copy_tree(source: Path, dest: Path, *, mtime: float | None = OLD) -> Path:
    """A private copy (symlinks kept as links); every file and folder dated ``mtime``."""
    shutil.copytree(source, dest, symlinks=True)
    if mtime is not None:
        for path in [dest, *dest.rglob("*")]:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
    return dest


@pytest.fixture(scope="session")
def framework_fits(tmp_path_factory) -> Path:
    """The session's Lightning and HF checkpoints (read-only: copy before changing anything)."""
    return fits_once(tmp_path_factory)


@pytest.fixture
def lightning_copy(framework_fits, tmp_path) -> Path:
    """A private copy of the Lightning fits' logdir (``lightning_logs/version_N``), dated OLD."""
    return copy_tree(framework_fits / "lightning", tmp_path / "lightning")


@pytest.fixture
def hf_copy(framework_fits, tmp_path) -> Path:
    """A private copy of the HF Trainer's output folder, dated OLD."""
    return copy_tree(framework_fits / "transformers", tmp_path / "output")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
