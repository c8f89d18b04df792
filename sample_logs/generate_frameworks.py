"""Write one small Lightning run and one small HF Trainer run, by the real frameworks, into a folder.

Both train the same tiny MLP on the same noisy synthetic regression (40 training points, so it
overfits) with the framework's own early stopping, checkpointing and TensorBoard logging:

- ``OUT/lightning/version_0/``: Lightning's TensorBoardLogger (``val_loss``, ``train_loss_step``,
  ``train_loss_epoch``, ``lr-Adam``, ``epoch``), ``hparams.yaml``, and ``checkpoints/`` from
  ``ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)``; stopped by
  ``EarlyStopping("val_loss", patience=3)``, with torch's ``ReduceLROnPlateau(patience=1,
  factor=0.5)`` stepping on ``val_loss`` once per epoch;
- ``OUT/transformers/``: the HF Trainer's ``runs/<date>_<host>/`` TensorBoard logs (``eval/loss``,
  ``train/loss``, ``train/learning_rate``, ``train/epoch``, ...) and ``checkpoint-<step>/`` folders
  (``save_total_limit=2``, best kept, ``trainer_state.json`` inside); stopped by
  ``EarlyStoppingCallback(early_stopping_patience=2)`` on ``eval_loss``.

Deterministic on one platform (fixed data and seeds, deterministic algorithms; event file names
carry a timestamp and the host name). The script checks that each run stopped early and that
``runlens.read_evals`` plus runlens' replay of the framework's policy stop where the framework did,
and fails if not. The HF model wrapper and dataset and the Trainer arguments both fits share with the
test suite's come from tests/framework_fits.py (found from this file's place).

Usage (from the repository root; OUT must not exist yet or be empty)::

    .venv/bin/python sample_logs/generate_frameworks.py OUT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import torch
from torch import nn

import runlens
import runlens.lightning
import runlens.transformers

# The tiny set-ups the test suite's fits use (tests/framework_fits.py), found from this file.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # after site-packages: it shadows nothing
from framework_fits import FIT_TRAINER, Points, Regressor, fit_quietly, training_args

MAX_EPOCHS = 40


def data(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """40 training and 40 validation points of y = sin(3 x0) + x1 + noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(80, 2)).astype("float32")
    y = (np.sin(3 * x[:, 0]) + x[:, 1] + rng.normal(scale=0.3, size=80)).astype("float32")
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    return x[:40], y[:40], x[40:], y[40:]


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))


def lightning_run(out: Path) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    class Regression(L.LightningModule):
        def __init__(self, lr: float = 0.02):
            super().__init__()
            self.save_hyperparameters()
            self.net = mlp()

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.net(x).squeeze(-1), y))

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, factor=0.5)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}

    L.seed_everything(0, verbose=False)
    x, y, vx, vy = data()
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(vx, vy), batch_size=40)
    stopping = EarlyStopping("val_loss", patience=3)
    trainer = L.Trainer(
        max_epochs=MAX_EPOCHS,
        logger=TensorBoardLogger(str(out), name="lightning"),
        callbacks=[
            stopping,
            ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True),
            LearningRateMonitor(),
        ],
        deterministic=True,
        **FIT_TRAINER,
    )
    fit_quietly(trainer, Regression(), train, val)
    assert trainer.should_stop and trainer.current_epoch < MAX_EPOCHS, "the Lightning run did not stop early"
    evals = runlens.read_evals(out / "lightning")
    result = runlens.lightning.EarlyStopping("val_loss", patience=3).replay(evals["val_loss"])
    assert result.stopped_at == len(evals) - 1, (result, len(evals))
    assert int(evals["epoch"].iloc[result.stopped_at]) == stopping.stopped_epoch
    assert result.best_value == float(stopping.best_score)
    print(
        f"lightning: stopped after validation check {result.stopped_at} (epoch {stopping.stopped_epoch}), best at check {result.best_at}"
    )


def transformers_run(out: Path) -> None:
    import transformers
    from transformers import EarlyStoppingCallback, Trainer

    transformers.logging.set_verbosity_error()

    torch.manual_seed(0)
    x, y, vx, vy = data()
    args = training_args(
        out / "transformers",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="loss",
        num_train_epochs=MAX_EPOCHS,
        per_device_train_batch_size=8,
        learning_rate=0.02,
        logging_steps=5,
        full_determinism=True,
    )
    stopping = EarlyStoppingCallback(early_stopping_patience=2)
    trainer = Trainer(
        model=Regressor(mlp()),
        args=args,
        train_dataset=Points(x, y),
        eval_dataset=Points(vx, vy),
        callbacks=[stopping],
    )
    trainer.train()
    state = trainer.state
    assert state.epoch < MAX_EPOCHS, "the HF run did not stop early"
    evals = runlens.read_evals(out / "transformers")
    result = runlens.transformers.EarlyStoppingCallback(2).replay(evals["eval_loss"])
    assert result.stopped_at == len(evals) - 1 and int(evals["step"].iloc[-1]) == state.global_step
    assert int(evals["step"].iloc[result.best_at]) == state.best_global_step
    print(
        f"transformers: stopped after evaluation {result.stopped_at} (step {state.global_step}), best at step {state.best_global_step}"
    )


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: generate_frameworks.py OUT")
    out = Path(argv[0])
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    lightning_run(out)
    transformers_run(out)


if __name__ == "__main__":
    main(sys.argv[1:])
