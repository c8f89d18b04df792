"""The reader on the two shapes of logdir people point it at, beside the alternatives, in one run.

    python benchmarks/shapes_bench.py                       # defaults below; data cached in ./bench_data
    python benchmarks/shapes_bench.py --long-points 2000000 --sweep-runs 5000 --memory-points 10000000

- few long runs: 4 Keras-layout runs (train + validation) with long batch-level series, half TF2
  tensors with scalars metadata, half simple_value, >= 1M points;
- a sweep of many small runs: >= 5,000 run folders (train + validation) of 100 epochs with
  epoch_loss, epoch_accuracy, epoch_learning_rate / val loss and accuracy;
- memory: runlens alone on a >= 10M-point logdir, in a fresh process.

Readers: runlens (default workers = every core, workers=1, and a re-read of the unchanged logdir
from its cache), the naive floor (a loop that only
calls protobuf's Event.FromString per record and counts values), tbparse (.scalars + .tensors) and,
with --accumulator, TensorBoard's EventAccumulator keeping everything. Imports are excluded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, EventFile, cached, memory_line, naive_floor, peak_memory, timed


def make_long(root: Path, points: int) -> None:
    rng = np.random.default_rng(1)
    per_run = points // 4
    for run in range(4):
        tf2 = run % 2 == 0
        train = EventFile(
            root / f"long{run}" / "train" / f"events.out.tfevents.{1700000000 + run}.bench.1.v2"
        )
        steps = per_run // 2
        values = rng.random((steps, 2)).astype(np.float32)
        for step in range(steps):
            train.scalar("batch_loss", step, float(values[step, 0]), tf2=tf2)
            train.scalar("batch_accuracy", step, float(values[step, 1]), tf2=tf2)
        train.close()
        validation = EventFile(
            root / f"long{run}" / "validation" / f"events.out.tfevents.{1700000000 + run}.bench.2.v2"
        )
        for epoch in range(100):
            validation.scalar("epoch_loss", epoch, float(rng.random()), tf2=tf2)
        validation.close()


def make_sweep(root: Path, runs: int, epochs: int = 100) -> None:
    rng = np.random.default_rng(2)
    for run in range(runs):
        folder = root / f"lr_{run // 100:03d}" / f"seed_{run % 100:02d}"
        train = EventFile(folder / "train" / f"events.out.tfevents.{1700000000 + run}.bench.1.v2")
        validation = EventFile(folder / "validation" / f"events.out.tfevents.{1700000000 + run}.bench.2.v2")
        curve = np.sort(rng.random(epochs))[::-1]
        for epoch in range(epochs):
            train.scalar("epoch_loss", epoch, float(curve[epoch]))
            train.scalar("epoch_accuracy", epoch, float(1 - curve[epoch]))
            train.scalar("epoch_learning_rate", epoch, 0.001)
            validation.scalar("epoch_loss", epoch, float(curve[epoch] * 1.1))
            validation.scalar("epoch_accuracy", epoch, float(0.9 - curve[epoch]))
        train.close()
        validation.close()


def describe(root: Path) -> str:
    files = list(root.rglob("*tfevents*"))
    return f"{len(files):,} event files, {sum(f.stat().st_size for f in files) / 2**20:.0f} MiB"


def compare(title: str, root: Path, *, repeat: int, accumulator: bool) -> None:
    import read_bench

    import runlens

    print(f"\n== {title}: {root} ({describe(root)})")
    rows = []
    t_default, frame = timed(lambda: runlens.read_scalars(root), repeat)
    rows.append(("runlens.read_scalars (default workers)", t_default, len(frame)))
    t_one, frame = timed(lambda: runlens.read_scalars(root, workers=1), repeat)
    rows.append(("runlens.read_scalars (workers=1)", t_one, len(frame)))
    with tempfile.TemporaryDirectory() as cache:
        runlens.read_scalars(root, cache=cache)  # fills the cache
        t_cached, frame = timed(lambda: runlens.read_scalars(root, cache=cache), repeat)
    rows.append(("runlens.read_scalars (cache=, unchanged)", t_cached, len(frame)))
    t_floor, count = timed(lambda: naive_floor(root), 1)
    rows.append(("naive floor: Event.FromString per record", t_floor, count))
    t_tbparse, (scalars, tensors) = timed(lambda: read_bench.read_tbparse(root), 1)
    rows.append(("tbparse .scalars + .tensors", t_tbparse, len(scalars) + len(tensors)))
    if accumulator:
        t_acc, count = timed(lambda: read_bench.read_event_accumulator(root), 1)
        rows.append(("EventAccumulator (keep all)", t_acc, count))
    print(f"{'reader':44} {'seconds':>8} {'points':>11} {'points/s':>11} {'runlens is':>11}")
    for name, seconds, points in rows:
        print(
            f"{name:44} {seconds:8.3f} {points:11,d} {points / seconds:11,.0f} {seconds / t_default:10.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--long-points", type=int, default=1_200_000)
    parser.add_argument("--sweep-runs", type=int, default=5_000)
    parser.add_argument("--memory-points", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accumulator", action="store_true", help="also time EventAccumulator (slow)")
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    long_root = cached(args.data / f"long_{args.long_points}", make_long, args.long_points)
    sweep_root = cached(args.data / f"sweep_{args.sweep_runs}", make_sweep, args.sweep_runs)
    memory_root = cached(args.data / f"long_{args.memory_points}", make_long, args.memory_points)

    import tbparse  # noqa: F401

    import runlens  # noqa: F401  (imports before the clocks)

    compare("few long runs", long_root, repeat=args.repeat, accumulator=args.accumulator)
    compare("sweep of many small runs", sweep_root, repeat=args.repeat, accumulator=args.accumulator)
    print(f"\n== memory: {memory_root} ({describe(memory_root)})")
    start = time.perf_counter()
    print("workers=1: " + memory_line(peak_memory(memory_root, workers=1)))
    print("default workers: " + memory_line(peak_memory(memory_root, workers=os.cpu_count() or 1)))
    print(
        f"(memory runs took {time.perf_counter() - start:.0f} s; machine: {os.cpu_count()} cores, python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    main()
