"""Real tiny fits with Lightning, the HF Trainer and a plain torch loop, logging to TensorBoard.

Each fit trains a real ``nn.Linear`` on 16 points; the monitored metric follows a script (one value
per validation check / evaluation / epoch, float32-representable) so that early stopping and
plateaus happen where a test wants them, through the framework's real logging, callbacks and loops.
Each returns what the framework itself decided, to hold the replays against.

The tiny set-ups live here once, for every other fit too: the 16 points (``loader``, ``points``),
the scripted LightningModule (``scripted_module``), the Trainer arguments (``FIT_TRAINER``,
``QUIET_TRAINER``, ``training_args``) and the HF model wrapper (``Regressor``, ``Points``).
tests/framework_checkpoint_fits.py, sample_logs/generate_frameworks.py and
benchmarks/framework_prune_bench.py import them (the scripts put tests/ on ``sys.path``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from torch import nn

_X = torch.linspace(-1, 1, 32).reshape(16, 2)
_Y = _X.sum(1, keepdim=True)

#: ``L.Trainer`` arguments every tiny Lightning set-up shares: on the CPU, quiet.
QUIET_TRAINER: dict[str, Any] = dict(
    enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1
)
#: ... and for a tiny fit: no sanity check (every validation is a scripted one), a log per step.
FIT_TRAINER: dict[str, Any] = dict(QUIET_TRAINER, num_sanity_val_steps=0, log_every_n_steps=1)


def loader(n: int = 16, batch_size: int = 4):
    """The first ``n`` of the 16 points (two inputs, their sum the target) in batches."""
    data = torch.utils.data.TensorDataset(_X[:n], _Y[:n])
    return torch.utils.data.DataLoader(data, batch_size=batch_size)


def f32(values: list[float]) -> list[float]:
    """The values as float32 would hold them (what TensorBoard logs), as Python floats."""
    return [float(np.float32(v)) for v in values]


def fit_quietly(trainer, module, *loaders) -> None:
    """``trainer.fit(module, *loaders)`` without Lightning's advice (few loader workers, a log
    interval longer than an epoch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, *loaders)


# --- Lightning ------------------------------------------------------------------------------------


@dataclass
class LightningFit:
    path: Path  # the logdir (TensorBoardLogger's save_dir)
    stopped_epoch: int  # EarlyStopping.stopped_epoch
    wait_count: int
    best_score: float
    reason: str  # EarlyStoppingReason name
    current_epoch: int
    global_step: int
    checks: list[tuple[int, int]] = field(default_factory=list)  # (epoch, global_step) per check
    rates: list[float] = field(default_factory=list)  # optimizer rate at each epoch start
    best_checkpoint: str | None = None  # ModelCheckpoint(monitor="val_loss").best_model_path


def scripted_module(
    script: list[float],
    *,
    plateau: dict[str, Any] | None = None,
    save_hparams: bool = False,
    train_loss_per_epoch: bool = True,
):
    """A LightningModule training ``nn.Linear(2, 1)`` by SGD (rate 0.1) that logs ``train_loss``
    (per step, and per epoch unless ``train_loss_per_epoch`` is False: then the one tag
    ``train_loss``) and, at validation check ``i``, ``val_loss = script[i]`` (the last value once
    the script runs out). It records each check's ``(epoch, global_step)`` in ``.checks`` and the
    optimizer's rate at each epoch start in ``.rates``. With ``plateau``, torch's
    ReduceLROnPlateau (those arguments) steps on ``val_loss``; with ``save_hparams``, the module
    calls ``save_hyperparameters()`` (the checkpoints then carry them, the logs ``hp_metric``).
    Fitted by ``fit_quietly(L.Trainer(max_epochs=2, **FIT_TRAINER), module, loader(), loader(4))``,
    ``module.checks`` is ``[(0, 4), (1, 8)]``."""
    import lightning as L

    class Scripted(L.LightningModule):
        def __init__(self):
            super().__init__()
            if save_hparams:
                self.save_hyperparameters()
            self.layer = nn.Linear(2, 1)
            self.checks: list[tuple[int, int]] = []
            self.rates: list[float] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=train_loss_per_epoch)
            return loss

        def on_train_epoch_start(self):
            self.rates.append(self.trainer.optimizers[0].param_groups[0]["lr"])

        def validation_step(self, batch, batch_idx):
            value = script[min(len(self.checks), len(script) - 1)]
            self.log("val_loss", torch.tensor(value, dtype=torch.float32))

        def on_validation_epoch_end(self):
            self.checks.append((self.current_epoch, self.global_step))

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            if plateau is None:
                return optimizer
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **plateau)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}

    return Scripted()


def lightning_fit(
    root: Path,
    script: list[float],
    *,
    early_stopping: dict[str, Any],
    max_epochs: int = 12,
    min_epochs: int | None = None,
    check_val_every_n_epoch: int = 1,
    val_check_interval: float = 1.0,
    plateau: dict[str, Any] | None = None,
    checkpoint: bool = False,
) -> LightningFit:
    """A Lightning fit whose ``val_loss`` at check ``i`` is ``script[i]``, with EarlyStopping
    (and, with ``plateau``, torch's ReduceLROnPlateau on ``val_loss`` plus a LearningRateMonitor;
    with ``checkpoint``, a ModelCheckpoint keeping the best by ``val_loss``)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    L.seed_everything(0, verbose=False)
    stopping = EarlyStopping(monitor="val_loss", **early_stopping)
    callbacks = [stopping] + ([LearningRateMonitor()] if plateau is not None else [])
    best = ModelCheckpoint(monitor="val_loss", save_top_k=1) if checkpoint else None
    callbacks += [best] if best is not None else []
    trainer = L.Trainer(
        max_epochs=max_epochs,
        min_epochs=min_epochs,
        check_val_every_n_epoch=check_val_every_n_epoch,
        val_check_interval=val_check_interval,
        logger=TensorBoardLogger(str(root)),
        callbacks=callbacks,
        enable_checkpointing=checkpoint,
        **FIT_TRAINER,
    )
    module = scripted_module(script, plateau=plateau)
    fit_quietly(trainer, module, loader(), loader(4))
    return LightningFit(
        path=root,
        stopped_epoch=stopping.stopped_epoch,
        wait_count=stopping.wait_count,
        best_score=float(stopping.best_score),
        reason=stopping.stopping_reason.name,
        current_epoch=trainer.current_epoch,
        global_step=trainer.global_step,
        checks=module.checks,
        rates=module.rates,
        best_checkpoint=None if best is None else best.best_model_path,
    )


# --- HF Trainer -----------------------------------------------------------------------------------


@dataclass
class TrainerFit:
    path: Path  # output_dir; TensorBoard logs under runs/
    best_metric: float | None
    best_global_step: int | None
    global_step: int
    epoch: float
    counter: int | None  # EarlyStoppingCallback.early_stopping_patience_counter (None: no callback)
    evaluations: list[int] = field(default_factory=list)  # global_step of each evaluation
    best_checkpoint: str | None = None  # TrainerState.best_model_checkpoint
    scores: dict[int, float] = field(default_factory=dict)  # eval_score logged at each step


class Points(torch.utils.data.Dataset):
    """Inputs ``x`` and targets ``y`` as the HF Trainer takes them (a dict per item, ``labels``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def points(n: int) -> Points:
    """The first ``n`` of the 16 points as an HF Trainer dataset."""
    return Points(_X[:n], _Y[:n, 0])


class Regressor(nn.Module):
    """A regression model as the HF Trainer takes one (a dict with its MSE loss): ``net``, by
    default a linear model on two inputs, with one output."""

    def __init__(self, net: nn.Module | None = None):
        super().__init__()
        self.net = nn.Linear(2, 1) if net is None else net

    def forward(self, x, labels=None):
        out = self.net(x).squeeze(-1)
        return {"loss": nn.functional.mse_loss(out, labels), "logits": out}


def training_args(out: Path, **options):
    """``TrainingArguments`` for a tiny fit into ``out``: on the CPU, seed 0, no progress bars,
    TensorBoard logs (``report_to`` and anything else as ``options`` say), e.g.
    ``training_args(root, num_train_epochs=3, learning_rate=0.05)``."""
    from transformers import TrainingArguments

    defaults = dict(report_to=["tensorboard"], use_cpu=True, seed=0, disable_tqdm=True)
    return TrainingArguments(output_dir=str(out), **{**defaults, **options})


def trainer_fit(
    root: Path,
    script: list[float],
    *,
    patience: int | None,
    threshold: float = 0.0,
    metric: str = "score",
    greater_is_better: bool | None = False,
    eval_strategy: str = "epoch",
    eval_steps: int | None = None,
    epochs: int = 12,
    save_total_limit: int | None = 2,
    logging_steps: int = 3,
) -> TrainerFit:
    """An HF Trainer fit whose ``compute_metrics`` returns ``{"score": script[i]}`` at evaluation
    ``i``, with EarlyStoppingCallback (unless ``patience`` is None) and the Trainer's TensorBoard
    logging; a save at each evaluation, the best loaded at the end."""
    import transformers
    from transformers import EarlyStoppingCallback, Trainer

    transformers.logging.set_verbosity_error()
    evaluations: list[int] = []

    def compute_metrics(prediction):
        value = script[min(len(evaluations), len(script) - 1)]
        evaluations.append(trainer.state.global_step)
        return {"score": value}

    torch.manual_seed(0)
    args = training_args(
        root,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps,
        save_strategy=eval_strategy,
        save_steps=eval_steps,
        save_total_limit=save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=greater_is_better,
        num_train_epochs=epochs,
        per_device_train_batch_size=4,
        learning_rate=0.05,
        logging_steps=logging_steps,
    )
    stopping = None if patience is None else EarlyStoppingCallback(patience, threshold)
    trainer = Trainer(
        model=Regressor(),
        args=args,
        train_dataset=points(16),
        eval_dataset=points(8),
        compute_metrics=compute_metrics,
        callbacks=[] if stopping is None else [stopping],
    )
    trainer.train()
    state = trainer.state
    return TrainerFit(
        path=root,
        best_metric=state.best_metric,
        best_global_step=state.best_global_step,
        global_step=state.global_step,
        epoch=state.epoch,
        counter=None if stopping is None else stopping.early_stopping_patience_counter,
        evaluations=evaluations,
        best_checkpoint=state.best_model_checkpoint,
        scores={e["step"]: e["eval_score"] for e in state.log_history if "eval_score" in e},
    )


# --- a plain torch loop ---------------------------------------------------------------------------


@dataclass
class TorchLoop:
    path: Path
    rates: list[float]  # the optimizer's rate during each epoch
    final_lr: float


def torch_plateau_loop(
    root: Path, script: list[float], *, initial_lr: float, plateau: dict[str, Any]
) -> TorchLoop:
    """A training loop stepping a real ReduceLROnPlateau on ``script[epoch]`` once per epoch,
    logging ``val/loss``, ``train/loss`` and ``lr`` (the rate used that epoch) with
    ``torch.utils.tensorboard.SummaryWriter``."""
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=initial_lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **plateau)
    rates = []
    with SummaryWriter(str(root)) as writer:
        step = 0
        for epoch, value in enumerate(script):
            rates.append(optimizer.param_groups[0]["lr"])
            writer.add_scalar("lr", rates[-1], step)
            for x, y in loader():
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
                writer.add_scalar("train/loss", loss.item(), step)
                step += 1
            writer.add_scalar("val/loss", value, step - 1)
            writer.add_scalar("epoch", epoch, step - 1)
            scheduler.step(value)
    return TorchLoop(root, rates, optimizer.param_groups[0]["lr"])
