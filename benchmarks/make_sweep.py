"""Hyperparameter sweeps written as benchmark logdirs: Keras' layout, and Lightning's for read_evals.

    python benchmarks/make_sweep.py OUT                      # 2,000 Keras runs x 60 epochs
    python benchmarks/make_sweep.py OUT --runs 200 --epochs 30 --hparams
    python benchmarks/make_sweep.py OUT --lightning          # the same trials, Lightning's layout
    python benchmarks/make_sweep.py OUT --copies-of plateau  # 2,000 copies of a sample run

Every trial is simulated epoch by epoch from its own seeded generator (``seed``, trial index), so a
sweep is the same bytes on every machine and the first N trials of a larger sweep are a smaller
one. What a trial does (see :func:`simulate`):

- hyperparameters: learning rate 1e-4..1e-2, dropout 0/0.25/0.5; 40% of the trials ran Keras'
  ``EarlyStopping(monitor="val_loss", patience=3|5|10)`` (so they stopped early: runs of
  different lengths), 40% ``ReduceLROnPlateau(patience=2|3|5, factor=0.5|0.2)`` (placed after
  TensorBoard in the callback list: the rate logged for an epoch is the one it trained with);
- curves: losses fall exponentially at a speed set by the rate; ``val_loss`` then overfits (rising
  after an onset that dropout delays) with noise; a reduced rate slows progress, lowers the floor
  and quietens the noise, so plateaus end in visible drops; accuracies follow the losses, counted
  in whole samples (of 60,000 train and 10,000 validation images); 3% of the trials at rate 1e-2
  diverge: their losses become NaN and ``TerminateOnNaN`` ends them after logging that epoch;
- the live callbacks are simulated with Keras 3's rules (``keras/src/callbacks/early_stopping.py``
  and ``reduce_lr_on_plateau.py``: EarlyStopping's first value is always the best, ``wait`` counts
  before the comparison, no stop at epoch 0; ReduceLROnPlateau's ``min_delta=1e-4``, rate stored as
  float32), compared in float64 on the float32 values logged, so runlens' replay of the same settings
  gives the same decisions except on exact float32 ties.

**Keras layout** (:func:`make_keras_sweep`): ``RUN/train`` and ``RUN/validation`` event files as
Keras 3's ``keras.callbacks.TensorBoard(log_dir=RUN)`` writes them (checked record by record against
a real Keras 3.15 fit of ``tests/writers.keras_fit``): each file opens with the ``brain.Event:2``
file_version record naming TF's ``events_writer``; ``train`` holds the model's JSON at step 0 (tag
``keras``, plugin ``graph_keras_model``, DT_STRING tensor: ``keras_convnet.json`` beside this
script, ``model.to_json()`` of Keras' MNIST convnet example, compiled with Adam) then, per epoch,
``epoch_accuracy``, ``epoch_loss``, ``epoch_learning_rate`` at step = epoch; ``validation`` holds,
per epoch, ``evaluation_accuracy_vs_iterations`` and ``evaluation_loss_vs_iterations`` at step =
optimizer iterations (469 per epoch: 60,000 images / batch 128; the same values as the epoch's), then
``epoch_accuracy``, ``epoch_loss`` at step = epoch. Every scalar is a TF2 DT_FLOAT rank-0 tensor with
the scalars plugin's metadata, one per record, written in Keras' order with wall times 0.3 ms apart
at each epoch's end. Sizes: a 60-epoch run's ``train`` file is 18,296 bytes (file_version 78, graph
5,204, epoch scalars 13,014: record for record the sizes of the real fit's), its ``validation``
file 19,326 (the real fit's evaluation records are 1-2 bytes shorter each: its step numbers, at 3
iterations an epoch, are shorter varints). 2,000 trials x at most 60 epochs, with the early stops:
4,000 files, 66.8 MB, 729,736 scalars of which 521,240 ``epoch_*`` (104,248 epochs). File names are TF's
(``events.out.tfevents.<start>.<host>.<pid>.<n>.v2``). With ``hparams=True`` each run also gets the
file :class:`runlens.keras.HParamsSummary` writes into ``RUN`` (TensorBoard's ``hparams_pb``
session_start_info at step 0), i.e. 3 files per run. Not written: ``batch_*`` series
(``update_freq="epoch"``, Keras' default), histograms, resumed runs' second files.

**Lightning layout** (:func:`make_lightning_sweep`): the same trials as
``lightning_logs/version_N/`` of Lightning's ``TensorBoardLogger`` (checked against a real Lightning
2.6 fit of ``tests/framework_fits.lightning_fit``): one event file of ``simple_value`` records (the
file_version naming tensorboard's ``event_file_writer``) and an ``hparams.yaml`` (``{}``);
``lr-Adam`` at each epoch's first step (LearningRateMonitor), ``train_loss_step`` + ``epoch`` every
50 steps (``log_every_n_steps=50``), and at the epoch's last step ``val_loss``, ``val_acc``,
``epoch`` then ``train_loss_epoch``, ``epoch``. The trials' stops follow the Keras rules above, not
Lightning's EarlyStopping. 2,000 trials: 2,000 event files, 126 MB, 2,578,430 scalars (the per-step
logging is most of it).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, SAMPLE, EventFile

STEPS_PER_EPOCH = 469  # optimizer steps per epoch: MNIST's 60,000 images in batches of 128
TRAIN_SAMPLES, VAL_SAMPLES = 60_000, 10_000
SWEEP_START = 1_767_225_600.0  # 2026-01-01 UTC: the wall time of the first trial's start
GPUS = 2  # trials run two at a time, each starting 30 s after the previous one on its GPU ended
KERAS_WRITER = "tensorflow.core.util.events_writer"  # file_version source of TF's C++ writer
LIGHTNING_WRITER = "tensorboard.summary.writer.event_file_writer"
LOG_EVERY_N_STEPS = 50  # Lightning's default


@dataclass(frozen=True)
class Trial:
    """One simulated training run: its hyperparameters and what it logged per epoch (float32)."""

    index: int
    hparams: dict[str, float | int]
    epoch_seconds: np.ndarray  # how long each epoch took
    loss: np.ndarray
    accuracy: np.ndarray
    learning_rate: np.ndarray  # the rate each epoch trained with
    val_loss: np.ndarray
    val_accuracy: np.ndarray

    @property
    def epochs(self) -> int:
        return len(self.loss)


def simulate(index: int, *, epochs: int, seed: int = 0) -> Trial:
    """Trial ``index`` of the sweep, at most ``epochs`` long (see the module docstring)."""
    rng = np.random.default_rng([seed, index])
    lr0 = float(rng.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]))
    dropout = float(rng.choice([0.0, 0.25, 0.5]))
    stop_patience = int(rng.choice([0, 3, 5, 10], p=[0.6, 0.15, 0.15, 0.1]))  # 0: no EarlyStopping
    plateau_patience = int(rng.choice([0, 2, 3, 5], p=[0.6, 0.15, 0.15, 0.1]))  # 0: no plateau
    factor = float(rng.choice([0.5, 0.2]))
    speed = 0.08 * math.sqrt(lr0 / 1e-3) * rng.uniform(0.6, 1.6)  # per epoch at the initial rate
    start_loss, floor = rng.uniform(2.2, 2.4), rng.uniform(0.03, 0.25)
    onset = rng.uniform(4, 30) * (1 + dropout)  # progress at which val_loss starts to rise
    overfit = rng.uniform(5e-4, 4e-3) * (1 - 0.8 * dropout)
    noise = rng.uniform(0.01, 0.05) * (lr0 / 1e-3) ** 0.3  # relative
    diverges_at = int(rng.integers(3, epochs)) if lr0 == 1e-2 and rng.random() < 0.15 else None
    epoch_seconds = rng.uniform(8.0, 14.0) * rng.uniform(0.97, 1.03, epochs)

    f32 = np.float32
    rows: list[tuple[float, float, float, float, float]] = []
    lr, progress = f32(lr0), 0.0
    stop_best, stop_wait = None, 0
    plateau_best, plateau_wait = math.inf, 0
    for epoch in range(epochs):
        progress += float(lr) / lr0
        fitted = (start_loss - floor) * math.exp(-speed * progress)
        past = max(0.0, progress - onset)
        refined = 1.0 - float(lr) / lr0  # a reduced rate settles lower
        loss = (0.7 * floor + fitted - 0.3 * floor * (1 - math.exp(-past / 20))) * math.exp(
            rng.normal(0, noise / 3)
        )
        val_loss = (floor * (1 - 0.3 * refined) + fitted + overfit * past**1.5) * math.exp(
            rng.normal(0, noise * math.sqrt(float(lr) / lr0))
        )
        accuracy = round((0.1 + 0.9 * math.exp(-1.2 * loss)) * TRAIN_SAMPLES) / TRAIN_SAMPLES
        val_accuracy = round((0.1 + 0.9 * math.exp(-1.2 * val_loss)) * VAL_SAMPLES) / VAL_SAMPLES
        if diverges_at is not None and epoch >= diverges_at:
            loss = val_loss = math.nan
            accuracy, val_accuracy = 0.0987, 0.098  # NaN weights predict class 0 everywhere
        rows.append((f32(loss), f32(accuracy), lr, f32(val_loss), f32(val_accuracy)))
        value = float(f32(val_loss))
        if math.isnan(value) and diverges_at is not None:
            break  # TerminateOnNaN: the epoch is logged, the fit ends
        if plateau_patience:  # keras ReduceLROnPlateau.on_epoch_end, min_delta=1e-4, cooldown 0
            if value < plateau_best - 1e-4:
                plateau_best, plateau_wait = value, 0
            else:
                plateau_wait += 1
                if plateau_wait >= plateau_patience:
                    lr, plateau_wait = f32(float(lr) * factor), 0
        if stop_patience:  # keras EarlyStopping.on_epoch_end, min_delta=0, baseline None
            stop_wait += 1
            if stop_best is None or value < stop_best:
                stop_best, stop_wait = value, 0
            elif stop_wait >= stop_patience and epoch > 0:
                break
    loss_, accuracy_, learning_rate, val_loss_, val_accuracy_ = (
        np.array(column, dtype=np.float32) for column in zip(*rows)
    )
    hparams = {
        "learning_rate": lr0,
        "dropout": dropout,
        "early_stopping_patience": stop_patience,
        "plateau_patience": plateau_patience,
        "plateau_factor": factor,
        "seed": index,
    }
    return Trial(
        index,
        hparams,
        epoch_seconds[: len(rows)],
        loss_,
        accuracy_,
        learning_rate,
        val_loss_,
        val_accuracy_,
    )


def trials(runs: int, *, epochs: int, seed: int = 0):
    """(trial, start wall time, GPU) for each of ``runs`` trials, as a 2-GPU queue ran them."""
    free = [SWEEP_START] * GPUS
    for index in range(runs):
        trial = simulate(index, epochs=epochs, seed=seed)
        gpu = int(np.argmin(free))
        start = free[gpu]
        free[gpu] = start + float(trial.epoch_seconds.sum()) + 30.0
        yield trial, start, gpu


def run_name(index: int, runs: int) -> str:
    return f"run-{index:0{max(4, len(str(runs - 1)))}d}"


def make_keras_sweep(
    root: Path, runs: int = 2000, epochs: int = 60, *, seed: int = 0, hparams: bool = False
) -> None:
    """Write ``runs`` trials of at most ``epochs`` epochs under ``root`` in Keras' layout."""
    graph = _graph_event()
    for trial, start, gpu in trials(runs, epochs=epochs, seed=seed):
        run = root / run_name(trial.index, runs)
        prefix = f"events.out.tfevents.{int(start)}.gpu{gpu}.{10_000 + trial.index}"
        ends = start + np.cumsum(trial.epoch_seconds)
        train = EventFile(run / "train" / f"{prefix}.0.v2", wall_time=start - 1.0, source_writer=KERAS_WRITER)
        graph.wall_time = start - 0.9  # set_model, before the first epoch
        train.event(graph)
        if hparams:
            _write_hparams(run / f"{prefix}.1.v2", trial, start)
        validation = EventFile(
            run / "validation" / f"{prefix}.{2 if hparams else 1}.v2",
            wall_time=ends[0] - 0.9,
            source_writer=KERAS_WRITER,
        )
        for epoch in range(trial.epochs):
            end = float(ends[epoch])
            iterations = (epoch + 1) * STEPS_PER_EPOCH  # on_test_end, before on_epoch_end
            validation.scalar(
                "evaluation_accuracy_vs_iterations",
                iterations,
                trial.val_accuracy[epoch],
                wall_time=end - 0.0008,
            )
            validation.scalar(
                "evaluation_loss_vs_iterations", iterations, trial.val_loss[epoch], wall_time=end - 0.0005
            )
            train.scalar("epoch_accuracy", epoch, trial.accuracy[epoch], wall_time=end)
            train.scalar("epoch_loss", epoch, trial.loss[epoch], wall_time=end + 0.0003)
            train.scalar("epoch_learning_rate", epoch, trial.learning_rate[epoch], wall_time=end + 0.0006)
            validation.scalar("epoch_accuracy", epoch, trial.val_accuracy[epoch], wall_time=end + 0.0009)
            validation.scalar("epoch_loss", epoch, trial.val_loss[epoch], wall_time=end + 0.0012)
        train.close()
        validation.close()


def make_lightning_sweep(root: Path, runs: int = 2000, epochs: int = 60, *, seed: int = 0) -> None:
    """Write the same trials under ``root/lightning_logs/version_N/`` in Lightning's layout."""
    for trial, start, gpu in trials(runs, epochs=epochs, seed=seed):
        version = root / "lightning_logs" / f"version_{trial.index}"
        name = f"events.out.tfevents.{int(start)}.gpu{gpu}.{10_000 + trial.index}.0"
        out = EventFile(version / name, wall_time=start, source_writer=LIGHTNING_WRITER)
        (version / "hparams.yaml").write_text("{}\n")
        rng = np.random.default_rng([seed, trial.index, 1])
        clock = start
        for epoch in range(trial.epochs):
            first, last = epoch * STEPS_PER_EPOCH, (epoch + 1) * STEPS_PER_EPOCH - 1
            per_step = float(trial.epoch_seconds[epoch]) / STEPS_PER_EPOCH
            out.scalar("lr-Adam", first, trial.learning_rate[epoch], tf2=False, wall_time=clock)
            for step in range(first, last + 1):
                if (step + 1) % LOG_EVERY_N_STEPS == 0:
                    at = clock + (step - first + 1) * per_step
                    value = trial.loss[epoch] * (1 + rng.normal(0, 0.1))
                    out.scalar("train_loss_step", step, value, tf2=False, wall_time=at)
                    out.scalar("epoch", step, epoch, tf2=False, wall_time=at + 0.0001)
            clock += float(trial.epoch_seconds[epoch])
            out.scalar("val_loss", last, trial.val_loss[epoch], tf2=False, wall_time=clock)
            out.scalar("val_acc", last, trial.val_accuracy[epoch], tf2=False, wall_time=clock + 0.0001)
            out.scalar("epoch", last, epoch, tf2=False, wall_time=clock + 0.0002)
            out.scalar("train_loss_epoch", last, trial.loss[epoch], tf2=False, wall_time=clock + 0.0003)
            out.scalar("epoch", last, epoch, tf2=False, wall_time=clock + 0.0004)
        out.close()


def make_copies(root: Path, runs: int = 2000, sample_run: str = "plateau") -> None:
    """``runs`` copies of ``sample_logs/<sample_run>``, a real run trained with runlens.keras'
    callbacks: its event files, hparams, ``runlens.json`` and checkpoints (a sweep as the bundle
    writes it; every copy the same run, so every live-vs-replay comparison agrees)."""
    source = SAMPLE / sample_run
    for index in range(runs):
        shutil.copytree(source, root / f"{sample_run}-{index:0{len(str(runs - 1))}d}")


def _graph_event():
    """The ``keras`` graph summary Keras' callback writes at ``set_model`` (``keras_model_summary``)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

    model_json = (HERE / "keras_convnet.json").read_bytes()
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=[model_json])  # DT_STRING, rank 0
    tensor.tensor_shape.SetInParent()
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1")
    )
    value = summary_pb2.Summary.Value(tag="keras", tensor=tensor, metadata=metadata)
    return event_pb2.Event(summary=summary_pb2.Summary(value=[value]))


def _write_hparams(path: Path, trial: Trial, start: float) -> None:
    """The file :class:`runlens.keras.HParamsSummary` writes into the run folder: ``hp.hparams``."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb

    out = EventFile(path, wall_time=start, source_writer=KERAS_WRITER)
    summary = hparams_pb(trial.hparams, start_time_secs=start)
    out.event(event_pb2.Event(wall_time=start + 0.01, step=0, summary=summary))
    out.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hparams", action="store_true", help="Keras: an hparams file per run too")
    parser.add_argument("--lightning", action="store_true", help="Lightning's layout instead of Keras'")
    parser.add_argument("--copies-of", metavar="RUN", help="copies of sample_logs/RUN instead of trials")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: give a new folder")
    if args.copies_of:
        make_copies(args.out, args.runs, args.copies_of)
    elif args.lightning:
        make_lightning_sweep(args.out, args.runs, args.epochs, seed=args.seed)
    else:
        make_keras_sweep(args.out, args.runs, args.epochs, seed=args.seed, hparams=args.hparams)
    files = [p for p in args.out.rglob("*") if p.is_file()]
    print(f"{args.out}: {len(files):,} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
