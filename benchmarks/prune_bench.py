"""What a checkpoint prune costs: read_checkpoints + plan_prune + apply_prune on real ``.keras`` files.

    python benchmarks/prune_bench.py                 # 300 checkpoints (data cached in ./bench_data)
    python benchmarks/prune_bench.py --files 1000 --repeat 5
    python benchmarks/prune_bench.py --files 20 --width 512   # 13 MB checkpoints (1.1M parameters)

The checkpoints are real Keras 3 saves of a small MLP (one ``model.save`` per name, written once and
cached). Each figure is the best of ``--repeat`` runs on a fresh copy of the folder, wall-clock and
CPU time of this process (the CPU figure is the one to compare on a busy machine):

- the whole folder: ``read_checkpoints`` (every file identified and validated), ``plan_prune``
  (keep the best 3 + the last 1) and ``apply_prune`` (deletes the rest), beside what the same work
  costs without runlens' checks: a loop that only CRC-checks each zip (``zipfile.testzip``), and a
  loop of plain ``os.unlink`` calls;
- one epoch of the bundled callbacks' retention: the same three calls on a folder of keep_best +
  keep_last + 1 = 5 checkpoints, one of which is dropped.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, timed

TEMPLATE = "epoch_{epoch:03d}-val_loss_{val_loss:.6f}.keras"


def make_checkpoints(folder: Path, files: int, width: int) -> None:
    """``files`` real .keras saves of one MLP, named as ModelCheckpoint would name them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(4 * width), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(np.zeros((8, width)), np.zeros((8, 1)), verbose=0)
    folder.mkdir(parents=True)
    values = np.random.default_rng(1).random(files)
    for epoch in range(files):
        model.save(folder / TEMPLATE.format(epoch=epoch + 1, val_loss=values[epoch]))


def fresh_copy(source: Path, scratch: Path, count: int | None = None) -> Path:
    """A private copy of ``source`` (its first ``count`` files), modification times far in the past."""
    target = Path(tempfile.mkdtemp(dir=scratch)) / "checkpoints"
    target.mkdir()
    for path in sorted(source.iterdir())[:count]:
        shutil.copyfile(path, target / path.name)
        os.utime(target / path.name, (1_000_000_000, 1_000_000_000))
    return target


def clocked(fn):
    """((wall seconds, CPU seconds), result) of one call."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def prune(folder: Path, keep_best: int) -> tuple:
    """(wall, CPU) seconds spent reading, planning and applying, and the number of files deleted."""
    import runlens

    read_s, table = clocked(lambda: runlens.read_checkpoints(folder, template=TEMPLATE))
    rules = [runlens.KeepBestK(keep_best, "val_loss"), runlens.KeepLastN(1)]
    plan_s, plan = clocked(lambda: runlens.plan_prune(table, rules=rules, min_age=0))
    apply_s, result = clocked(lambda: runlens.apply_prune(plan, folder))
    return read_s, plan_s, apply_s, len(result.removed)


def best_of(repeat: int, source: Path, scratch: Path, keep_best: int, count: int | None = None) -> list:
    """Best (wall, CPU) of each step over ``repeat`` fresh copies, and the files deleted."""
    runs = [prune(fresh_copy(source, scratch, count), keep_best) for _ in range(repeat)]
    best = [tuple(min(run[i][j] for run in runs) for j in range(2)) for i in range(3)]
    return [*best, runs[0][3]]


def ms(seconds: tuple[float, float]) -> str:
    return f"{seconds[0] * 1e3:8.1f} ms wall {seconds[1] * 1e3:8.1f} ms CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--width", type=int, default=16, help="MLP input width (hidden: 4x); 512 gives 13 MB files"
    )
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    args = parser.parse_args()
    source = args.data / f"prune_{args.files}_{args.width}" / "checkpoints"
    if not source.is_dir():
        make_checkpoints(source, args.files, args.width)
    import runlens  # noqa: F401  (imported before timing: the import is not part of the figures)

    size = sum(p.stat().st_size for p in source.iterdir())
    print(f"{args.files} real .keras checkpoints, {size / 1e6:.1f} MB, best of {args.repeat}")
    with tempfile.TemporaryDirectory(dir=args.data) as scratch:
        read_s, plan_s, apply_s, removed = best_of(args.repeat, source, Path(scratch), keep_best=3)
        total = tuple(read_s[j] + plan_s[j] + apply_s[j] for j in range(2))
        print(f"  read_checkpoints     {ms(read_s)}   ({read_s[1] / args.files * 1e3:.2f} ms CPU/file)")
        print(f"  plan_prune           {ms(plan_s)}")
        print(f"  apply_prune          {ms(apply_s)}   ({removed} deleted)")
        print(f"  total                {ms(total)}")

        def testzip_loop() -> None:
            for path in source.iterdir():
                with zipfile.ZipFile(path) as zf:
                    zf.testzip()

        crc_s, _ = timed(testzip_loop, args.repeat)
        print(f"  zipfile.testzip loop {crc_s * 1e3:8.1f} ms   (the CRC check alone, no runlens)")
        copies = [fresh_copy(source, Path(scratch)) for _ in range(args.repeat)]
        unlink_s = min(timed(lambda c=c: [os.unlink(p) for p in sorted(c.iterdir())[4:]])[0] for c in copies)
        print(f"  os.unlink loop       {unlink_s * 1e3:8.1f} ms   ({args.files - 4} plain unlinks)")
        read_s, plan_s, apply_s, removed = best_of(
            max(args.repeat, 10), source, Path(scratch), keep_best=3, count=5
        )
        print(f"one epoch of the bundled callbacks' retention (5 files, {removed} dropped), CPU:")
        print(
            f"  read {read_s[1] * 1e3:.1f} ms + plan {plan_s[1] * 1e3:.1f} ms + apply "
            f"{apply_s[1] * 1e3:.1f} ms = {(read_s[1] + plan_s[1] + apply_s[1]) * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
