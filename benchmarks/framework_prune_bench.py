"""What a prune costs on Lightning ``.ckpt`` files and HF Trainer ``checkpoint-N/`` folders.

    python benchmarks/framework_prune_bench.py                  # 300 .ckpt files, 100 folders
    python benchmarks/framework_prune_bench.py --ckpt 1000 --folders 300 --repeat 5

The checkpoints are written once (cached in ./bench_data) by real fits: a Lightning ``Trainer``
with ``ModelCheckpoint(save_top_k=-1)`` and one validation per epoch (``--ckpt`` epochs, its
TensorBoard logs beside them, as Lightning lays them out), and an HF ``Trainer`` saving and
evaluating every step (``--folders`` steps, ``save_total_limit=None``). Each figure is the best of
``--repeat`` runs on a fresh copy, wall-clock and CPU time of this process (compare the CPU figures
on a busy machine): ``read_checkpoints`` (every file read without running its pickle, every
folder's ``trainer_state.json`` and weights header checked; Lightning's metrics joined from the
run's logs by ``read_evals``), ``plan_prune`` (keep the best 3 + the last 1) and ``apply_prune``
(the rest deleted; a folder moved aside, then emptied). Beside them, what the same work costs the
way people do it without runlens: ``torch.load(weights_only=True)`` of every ``.ckpt`` for its
epoch and step, ``json.load`` of every ``trainer_state.json``, and plain ``os.unlink`` /
``shutil.rmtree`` loops.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# tests/framework_fits.py: the tiny Lightning and HF set-ups the test suite fits (imported lazily,
# with torch, by the fits below)
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # after site-packages: it shadows nothing
from common import HERE, cached
from prune_bench import clocked, ms

OLD = 1_000_000_000  # modification times far outside any --min-age


def lightning_fit(out: Path, epochs: int) -> None:
    """``epochs`` real ``.ckpt`` files (one per validation) under ``out/lightning_logs/version_0``:
    the test suite's scripted module (tests/framework_fits.py), its val_loss falling each epoch."""
    import lightning as L
    from framework_fits import FIT_TRAINER, fit_quietly, loader, scripted_module
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=TensorBoardLogger(str(out)),
        callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=-1, save_last=True)],
        **FIT_TRAINER,
    )
    data = loader(8, batch_size=8)  # one step per epoch
    fit_quietly(trainer, scripted_module([1 / (1 + epoch) for epoch in range(epochs)]), data, data)


def hf_fit(out: Path, steps: int) -> None:
    """``steps`` real ``checkpoint-N/`` folders under ``out``, each evaluated (the test suite's
    tiny regression, tests/framework_fits.py)."""
    import torch
    import transformers
    from framework_fits import Regressor, points, training_args
    from transformers import Trainer

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    args = training_args(
        out,
        max_steps=steps,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        per_device_train_batch_size=8,
        learning_rate=0.01,
        report_to=[],
        log_level="error",
    )
    Trainer(model=Regressor(), args=args, train_dataset=points(16), eval_dataset=points(8)).train()


def fresh_copy(source: Path, scratch: Path) -> Path:
    """A private copy of ``source`` (symlinks kept), every file and folder dated long ago."""
    target = Path(tempfile.mkdtemp(dir=scratch)) / source.name
    shutil.copytree(source, target, symlinks=True)
    for path in [target, *target.rglob("*")]:
        os.utime(path, (OLD, OLD), follow_symlinks=False)
    return target


def prune(folder: Path, monitor: str) -> tuple:
    """(wall, CPU) of read, plan and apply, and (checkpoints, deleted)."""
    import runlens

    read_s, table = clocked(lambda: runlens.read_checkpoints(folder))
    rules = [runlens.KeepBestK(3, monitor, mode="min"), runlens.KeepLastN(1)]
    plan_s, plan = clocked(lambda: runlens.plan_prune(table, rules=rules, min_age=0))
    apply_s, result = clocked(lambda: runlens.apply_prune(plan, folder))
    return read_s, plan_s, apply_s, (len(table), len(result.removed), set(table["metrics_from"]))


def report(name: str, source: Path, scratch: Path, monitor: str, repeat: int) -> int:
    runs = [prune(fresh_copy(source, scratch), monitor) for _ in range(repeat)]
    best = [tuple(min(run[i][j] for run in runs) for j in range(2)) for i in range(3)]
    count, removed, metrics_from = runs[0][3]
    print(f"{name}: {count} checkpoints, metrics from {', '.join(sorted(metrics_from))}, best of {repeat}")
    print(f"  read_checkpoints     {ms(best[0])}   ({best[0][1] / count * 1e3:.2f} ms CPU/checkpoint)")
    print(f"  plan_prune           {ms(best[1])}")
    print(f"  apply_prune          {ms(best[2])}   ({removed} deleted)")
    total = tuple(sum(b[j] for b in best) for j in range(2))
    print(f"  total                {ms(total)}")
    return count


def best_clocked(fn, repeat: int, fresh=None) -> tuple[float, float]:
    """Best (wall, CPU) seconds of ``repeat`` calls of ``fn`` (on ``fresh()``'s result, made
    untimed before each call, when given)."""
    runs = []
    for _ in range(repeat):
        arg = fresh() if fresh is not None else None
        runs.append(clocked(lambda arg=arg: fn(arg) if fresh is not None else fn())[0])
    return min(r[0] for r in runs), min(r[1] for r in runs)


def torch_load_loop(folder: Path) -> None:
    """What people run instead: torch.load every .ckpt (weights_only) for its epoch and step."""
    import torch

    for path in sorted(folder.rglob("*.ckpt")):
        if not path.is_symlink():
            state = torch.load(path, map_location="cpu", weights_only=True)
            state["epoch"], state["global_step"]


def trainer_state_loop(folder: Path) -> None:
    """What people run instead: json.load every checkpoint-N/trainer_state.json."""
    for path in sorted(folder.glob("checkpoint-*/trainer_state.json")):
        json.loads(path.read_text())["global_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=int, default=300, help="Lightning epochs (one .ckpt each)")
    parser.add_argument("--folders", type=int, default=100, help="HF Trainer steps (one folder each)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    args = parser.parse_args()
    args.data.mkdir(exist_ok=True)
    lightning = cached(args.data / f"lightning_ckpt_{args.ckpt}", lightning_fit, args.ckpt)
    hf = cached(args.data / f"hf_checkpoints_{args.folders}", hf_fit, args.folders)
    version = lightning / "lightning_logs" / "version_0"
    import runlens  # noqa: F401  (imported before timing: the import is not part of the figures)

    def naive(label: str, note: str, fn, fresh=None) -> None:
        """Print the best figure of what people run instead of runlens (``fn``; see best_clocked)."""
        print(f"  {label:<20} {ms(best_clocked(fn, args.repeat, fresh))}   ({note})")

    with tempfile.TemporaryDirectory(dir=args.data) as scratch:
        report("Lightning .ckpt files (+ last.ckpt)", version, Path(scratch), "val_loss", args.repeat)
        naive("torch.load loop", "weights_only=True, epoch and step only", lambda: torch_load_loop(version))
        naive(
            "os.unlink loop",
            "plain unlinks",
            lambda c: [os.unlink(p) for p in sorted(c.rglob("epoch=*.ckpt"))[4:]],
            lambda: fresh_copy(version, Path(scratch)),
        )
        folders = report("HF checkpoint-N/ folders", hf, Path(scratch), "eval_loss", args.repeat)
        naive("json.load loop", "every trainer_state.json, nothing checked", lambda: trainer_state_loop(hf))
        naive(
            "shutil.rmtree loop",
            f"{folders - 4} folders",
            lambda c: [shutil.rmtree(p) for p in sorted(c.glob("checkpoint-*"))[4:]],
            lambda: fresh_copy(hf, Path(scratch)),
        )


if __name__ == "__main__":
    main()
