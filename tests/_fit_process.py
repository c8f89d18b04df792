"""A real Keras fit with ``runlens.keras.callbacks`` in a process of its own, for the tests that need
two processes on one run folder or a ``kill -9``: ``python tests/_fit_process.py RUN --epochs N ...``.

It trains :func:`_bundle_fits.tiny_model` (``--width`` units per hidden layer) on
:func:`_bundle_fits.overfitting_data`, prints ``epoch K`` (flushed) when epoch K begins, and can:

- print ``end K`` when epoch K ends, before the bundle's callbacks write anything (``--print-ends``);

- wait for a file before calling ``fit`` (``--start-when``: the process is ready, TensorFlow
  imported, and starts its fit when the test says so);
- stop at the end of an epoch, after the bundle, create ``--ready`` and wait for ``--go``
  (``--pause-after``: the fit holds the run folder while another one tries it);
- back up with ``keras.callbacks.BackupAndRestore`` through the bundle's ``backup_dir`` or placed
  by hand after the bundle (``--backup-placement``);
- write what it observed (pid, each epoch's logs) as JSON (``--observed``).

A ``RunlensError`` is printed as one ``Error: ...`` line on stderr (exit 3), as the CLI does;
anything else ends in Python's traceback (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def spawn(run_dir: Path, *args: object, stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    """Start ``python tests/_fit_process.py RUN ARGS...``; its stdout is a text pipe."""
    command = [sys.executable, __file__, str(run_dir), *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--backup", type=Path)
    parser.add_argument("--backup-placement", choices=("bundle", "after"), default="bundle")
    parser.add_argument("--start-when", type=Path)
    parser.add_argument("--pause-after", type=int)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--go", type=Path)
    parser.add_argument("--observed", type=Path)
    parser.add_argument("--print-ends", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from _bundle_fits import overfitting_data, tiny_model

    import runlens
    import runlens.keras

    keras.utils.set_random_seed(args.seed)
    train, validation = overfitting_data()
    model = tiny_model(width=args.width)
    observed: dict[str, object] = {"pid": os.getpid(), "logs": {}}

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print(f"epoch {epoch}", flush=True)

        def on_epoch_end(self, epoch, logs=None):
            observed["logs"][epoch] = {k: float(v) for k, v in (logs or {}).items()}
            if epoch == args.pause_after:
                args.ready.touch()
                _wait_for(args.go)

    class Ends(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(f"end {epoch}", flush=True)

    by_hand = args.backup is not None and args.backup_placement == "after"
    extra = [Progress(), *([keras.callbacks.BackupAndRestore(str(args.backup))] if by_hand else [])]
    try:
        callbacks = runlens.keras.callbacks(
            args.run_dir,
            early_stopping={"patience": args.patience},
            reduce_lr={"patience": 2, "factor": 0.5},
            keep_best=2,
            keep_last=1,
            backup_dir=None if by_hand else args.backup,
        )
        if args.start_when is not None:
            _wait_for(args.start_when)
        model.fit(
            *train,
            validation_data=validation,
            epochs=args.epochs,
            batch_size=8,
            verbose=0,
            callbacks=[*([Ends()] if args.print_ends else []), *callbacks, *extra],
        )
    except runlens.RunlensError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 3
    finally:
        if args.observed is not None:
            args.observed.write_text(json.dumps(observed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
