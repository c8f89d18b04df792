"""What a checkpoint prune costs: read_checkpoints + plan_prune + apply_prune on real ``.keras`` files.

    python benchmarks/prune_bench.py                 # 300 checkpoints (data cached in ./bench_data)
    python benchmarks/prune_bench.py --files 1000 --repeat 5

The checkpoints are real Keras 3 saves of a small MLP (one ``model.save`` per name, written once and
cached). Each figure is the best of ``--repeat`` runs on a fresh copy of the folder:

- the whole folder: ``read_checkpoints`` (every file identified and validated), ``plan_prune``
  (keep the best 3 + the last 1) and ``apply_prune`` (deletes the rest), beside what the same work
  costs without runlens' checks: a loop that only CRC-checks each zip (``zipfile.testzip``), and a
  loop of plain ``os.unlink`` calls;
- one epoch of the bundled callbacks' retention: the same three calls on a folder of keep_best +
  keep_last + 1 = 5 checkpoints, one of which is dropped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, timed

TEMPLATE = "epoch_{epoch:03d}-val_loss_{val_loss:.6f}.keras"


def make_checkpoints(folder: Path, files: int) -> None:
    """``files`` real .keras saves of one small model, named as ModelCheckpoint would name them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(np.zeros((8, 16)), np.zeros((8, 1)), verbose=0)
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


def prune(folder: Path, keep_best: int) -> tuple[float, float, float, int]:
    """Seconds spent reading, planning and applying, and the number of files deleted."""
    import runlens

    read_s, table = timed(lambda: runlens.read_checkpoints(folder, template=TEMPLATE))
    rules = [runlens.KeepBestK(keep_best, "val_loss"), runlens.KeepLastN(1)]
    plan_s, plan = timed(lambda: runlens.plan_prune(table, rules=rules, min_age=0))
    apply_s, result = timed(lambda: runlens.apply_prune(plan, folder))
    return read_s, plan_s, apply_s, len(result.removed)


def best_of(
    repeat: int, source: Path, scratch: Path, keep_best: int, count: int | None = None
) -> list[float]:
    runs = [prune(fresh_copy(source, scratch, count), keep_best) for _ in range(repeat)]
    best = [min(run[i] for run in runs) for i in range(3)]
    return [*best, runs[0][3]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    args = parser.parse_args()
    source = args.data / f"prune_{args.files}" / "checkpoints"
    if not source.is_dir():
        make_checkpoints(source, args.files)
    import runlens  # noqa: F401  (imported before timing: the import is not part of the figures)

    size = sum(p.stat().st_size for p in source.iterdir())
    print(f"{args.files} real .keras checkpoints, {size / 1e6:.1f} MB, best of {args.repeat}")
    with tempfile.TemporaryDirectory(dir=args.data) as scratch:
        read_s, plan_s, apply_s, removed = best_of(args.repeat, source, Path(scratch), keep_best=3)
        print(f"  read_checkpoints     {read_s * 1e3:8.1f} ms   ({read_s / args.files * 1e3:.2f} ms/file)")
        print(f"  plan_prune           {plan_s * 1e3:8.1f} ms")
        print(f"  apply_prune          {apply_s * 1e3:8.1f} ms   ({removed} deleted)")
        print(f"  total                {(read_s + plan_s + apply_s) * 1e3:8.1f} ms")

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
            max(args.repeat, 5), source, Path(scratch), keep_best=3, count=5
        )
        print(
            f"one epoch of the bundled callbacks' retention (5 files, {removed} dropped): "
            f"read {read_s * 1e3:.1f} ms + plan {plan_s * 1e3:.1f} ms + apply {apply_s * 1e3:.1f} ms "
            f"= {(read_s + plan_s + apply_s) * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
