"""``runlens.build_report`` on the sample logs and on a generated sweep of Keras runs.

    python benchmarks/report_bench.py                  # 200 runs x 60 epochs, data cached in ./bench_data
    python benchmarks/report_bench.py --runs 1000 --repeat 5

Each figure is the best of ``--repeat`` builds in this process (the event files are in the page
cache after the first), split into reading (``read_epochs``) and the rest (replays, learning rate,
sweep, checkpoint plans, live comparison), then the rendering of text and JSON; ``cpu`` is the
process' CPU time of a build, the figure that holds on a busy machine. The generated runs
overfit at random epochs (so EarlyStopping has something to cut) and every fifth one halves its
learning rate twice, in Keras' layout (``RUN/train``, ``RUN/validation``), without checkpoints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, SAMPLE, EventFile, timed
from shapes_bench import cached


def make_runs(root: Path, runs: int, epochs: int) -> None:
    rng = np.random.default_rng(3)
    for run in range(runs):
        folder = root / f"lr_{run // 20:02d}" / f"seed_{run % 20:02d}"
        stamp = 1700000000 + run
        train = EventFile(folder / "train" / f"events.out.tfevents.{stamp}.bench.1.v2", wall_time=stamp)
        validation = EventFile(
            folder / "validation" / f"events.out.tfevents.{stamp}.bench.2.v2", wall_time=stamp
        )
        turn = rng.integers(epochs // 4, epochs)
        x = np.arange(epochs)
        val = 1 / (1 + 0.1 * x) + 0.004 * np.maximum(x - turn, 0) + rng.normal(0, 0.01, epochs)
        rates = np.full(epochs, 0.01)
        if run % 5 == 0:
            rates[epochs // 3 :] /= 2
            rates[2 * epochs // 3 :] /= 2
        for epoch in range(epochs):
            train.scalar("epoch_loss", epoch, float(val[epoch] * 0.8))
            train.scalar("epoch_learning_rate", epoch, float(rates[epoch]))
            validation.scalar("epoch_loss", epoch, float(val[epoch]))
        train.close()
        validation.close()


def cpu_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def measure(name: str, root: Path, repeat: int, **options) -> None:
    import runlens
    from runlens.epochs import read_epochs

    read, frame = timed(lambda: read_epochs(root), repeat)
    whole, report = timed(lambda: runlens.build_report(root, **options), repeat)
    cpu = cpu_time(lambda: runlens.build_report(root, **options), repeat)
    text, _ = timed(lambda: runlens.render_report(report, "text"), repeat)
    json_, _ = timed(lambda: runlens.render_report(report, "json"), repeat)
    print(
        f"{name:<44} {len(report.runs):>5} runs {len(frame):>6} epochs: build_report {whole:.3f} s "
        f"(reading {read:.3f} s, the rest {whole - read:.3f} s; cpu {cpu:.3f} s); text {text:.3f} s, "
        f"json {json_:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    args = parser.parse_args()
    import runlens

    root = cached(args.data / f"report_{args.runs}x{args.epochs}", make_runs, args.runs, args.epochs)
    measure("sample_logs", SAMPLE, args.repeat, checkpoint_min_age=0)
    measure("sample_logs, LR replay on every run", SAMPLE, args.repeat, reduce_lr=runlens.ReduceLROnPlateau())
    measure(f"{args.runs} runs", root, args.repeat)
    measure(
        f"{args.runs} runs, LR replay on every run", root, args.repeat, reduce_lr=runlens.ReduceLROnPlateau()
    )


if __name__ == "__main__":
    main()
