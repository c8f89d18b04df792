"""What the bundle's run lock costs: taking and releasing it, the guard's work per epoch, and real
fits with the bundle with and without the guard (per-epoch wall time, interleaved runs).

    python benchmarks/fit_lock_bench.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

EPOCHS, ROUNDS = 30, 4


def lock_cost(folder: Path) -> float:
    """Microseconds to take and release a run's lock."""
    from runlens.keras.fit_lock import FitLock

    lock = FitLock(folder)

    def once():
        lock.acquire(sys._getframe())
        lock.release()

    once()
    return min(timeit.repeat(once, number=200, repeat=5)) / 200 * 1e6


def guard_hooks_per_epoch(folder: Path, batches: int = 5) -> float:
    """Microseconds per epoch of the hooks Keras calls on the guard's two callbacks."""
    from runlens.keras.fit_lock import FitLock
    from runlens.keras.guard import RunGuard, RunGuardEnd

    lock = FitLock(folder)
    callbacks = [RunGuard(lock), RunGuardEnd(lock)]

    def epoch():
        for c in callbacks:
            c.on_epoch_begin(0, {})
            for b in range(batches):
                c.on_train_batch_begin(b, {})
                c.on_train_batch_end(b, {})
            c.on_test_begin({})
            c.on_test_end({})
            c.on_epoch_end(0, {})

    return min(timeit.repeat(epoch, number=1000, repeat=5)) / 1000 * 1e6


def fit_epochs(folder: Path, guarded: bool) -> list[float]:
    """Per-epoch wall times of a bundle fit (the tests' tiny MLP), with or without the guard."""
    import keras
    from _bundle_fits import overfitting_data, tiny_model

    import runlens.keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    train, validation = overfitting_data()
    callbacks = runlens.keras.callbacks(folder, keep_best=2, keep_last=1)
    if not guarded:
        callbacks = [c for c in callbacks if type(c).__name__ not in ("RunGuard", "RunGuardEnd")]
    clock = Clock()
    tiny_model().fit(
        *train,
        validation_data=validation,
        epochs=EPOCHS,
        batch_size=8,
        verbose=0,
        callbacks=[*callbacks, clock],
    )
    return clock.times[1:]  # the first epoch traces the train function


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"take + release the run lock: {lock_cost(root / 'lock'):.1f} us per fit")
        print(f"the guard's hooks in an epoch of 5 batches: {guard_hooks_per_epoch(root / 'hooks'):.1f} us")
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(ROUNDS):
            for guarded in (True, False) if i % 2 == 0 else (False, True):
                times[guarded] += fit_epochs(root / f"fit-{i}-{guarded}", guarded)
        for guarded, label in ((False, "bundle without the guard"), (True, "bundle with the guard   ")):
            t = times[guarded]
            print(
                f"{label}: median {statistics.median(t) * 1e3:.1f} ms per epoch "
                f"(quartiles {statistics.quantiles(t)[0] * 1e3:.1f}-{statistics.quantiles(t)[2] * 1e3:.1f}, "
                f"{len(t)} epochs)"
            )


if __name__ == "__main__":
    main()
