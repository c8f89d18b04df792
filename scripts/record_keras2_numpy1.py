"""Record what the real tf-keras ReduceLROnPlateau does under NumPy 1.x, for semantics="keras2-numpy1".

tf-keras multiplies the rate as ``numpy.float32 * float`` (``ReduceLROnPlateau.on_epoch_end``:
``new_lr = old_lr * self.factor``, ``old_lr`` from ``backend.get_value``): NumPy 1.x promotes that
product to float64 before the optimizer rounds it to float32, NumPy >= 2 keeps it in float32, so
about one reduction in six lands one float32 step apart. Logs from TF <= 2.17 were made under
NumPy 1.x. runlens' test suite runs NumPy 2, so it cannot drive that tf-keras itself: this script
builds a second environment (TensorFlow 2.17, the last release on NumPy 1.x, its tf-keras, NumPy
1.26), drives the real callback there over generated cases, and writes them to
``tests/data/keras2_numpy1_plateau.json``, which ``tests/test_keras2_numpy1.py`` replays bit for bit.

Run it from the repository (any Python 3.11; it needs PyPI and ~1.5 GB for the environment)::

    python3 scripts/record_keras2_numpy1.py                 # venv in ~/.cache/runlens/keras2-numpy1
    python3 scripts/record_keras2_numpy1.py --venv /tmp/k2 --cases 800

The cases are drawn from a fixed seed (``--seed``), so re-running it writes the same file unless
tf-keras' behaviour changed. The JSON holds Python floats as ``json`` writes them (``NaN`` and
``Infinity`` as JavaScript literals; ``repr`` round-trips every float exactly).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "keras2_numpy1_plateau.json"
VENV = Path.home() / ".cache" / "runlens" / "keras2-numpy1"
# TensorFlow 2.17 is the last release built against NumPy 1.x (2.18 moved to NumPy 2).
PINS = ["tensorflow-cpu==2.17.1", "tf-keras==2.17.0", "numpy==1.26.4"]

LR_POOL = [0.1, 0.01, 1e-3, 3e-4, 1.0, 0.5, 0.3, 2e-5, 1e-7, 0.02, 0.05]
FACTOR_POOL = [0.1, 0.5, 0.2, 1 / 3, 0.9, 0.0, 0.75, 0.999999, 0.3, 0.25, 0.7]
# keras2's auto rule for ReduceLROnPlateau: "acc" anywhere means max (so val_auc is min).
MONITORS = ["val_loss", "val_acc", "val_accuracy", "val_auc", "loss"]


def draw_case(rng: random.Random) -> dict:
    """One case: settings, per-epoch values (None: not logged) and the starting rate.

    Values repeat a lot (plateaus) so that most cases reduce the rate several times: the rounding
    difference shows only in reductions.
    """
    mode = rng.choice(["auto", "min", "max"])
    monitor = rng.choice(MONITORS) if mode == "auto" else "val_loss"
    initial_lr = rng.choice(LR_POOL) if rng.random() < 0.6 else 10 ** rng.uniform(-6, 1)
    min_lr = rng.choice(
        [0.0, 0.0, 1e-5, 1e-4, 1e-3, initial_lr * rng.choice([0.1, 0.01, 0.05]), rng.random()]
    )
    params = {
        "monitor": monitor,
        "factor": rng.choice(FACTOR_POOL) if rng.random() < 0.6 else rng.uniform(0.0, 0.999),
        "patience": rng.choice([0, 0, 1, 1, 2, 3]),
        "mode": mode,
        "min_delta": rng.choice([0.0, 0.0, 1e-4, -1e-4, 0.1, -0.5, 1e-3]),
        "cooldown": rng.choice([0, 0, 0, 1, 2, 3]),
        "min_lr": min_lr,
    }
    alphabet = rng.choice(
        [[1.0], [1.0, 0.5], [0.5, 0.6, 0.7], [1.0, 1.0, 0.9, float("nan")], [0.3, 0.30000001, 0.2]]
    )
    n = rng.randint(1, 16)
    values = [None if rng.random() < 0.08 else rng.choice(alphabet) for _ in range(n)]
    return {"params": params, "values": values, "initial_lr": initial_lr}


def record(cases: list[dict]) -> dict:
    """Drive the real tf_keras ReduceLROnPlateau over every case (inside the NumPy 1.x venv)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    import numpy as np
    import tensorflow as tf
    import tf_keras
    from tf_keras import backend

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((2,)), tf_keras.layers.Dense(1)])
    model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse")
    x = np.linspace(-1, 1, 16, dtype="float32").reshape(8, 2)
    model.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0)
    out = []
    for case in cases:
        callback = tf_keras.callbacks.ReduceLROnPlateau(**case["params"])
        backend.set_value(model.optimizer.lr, case["initial_lr"])
        callback.set_model(model)
        callback.on_train_begin()
        rates, waits = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch, value in enumerate(case["values"]):
                rates.append(float(backend.get_value(model.optimizer.lr)))
                logs = {} if value is None else {case["params"]["monitor"]: float(value)}
                callback.on_epoch_end(epoch, logs)  # logs hold Python floats, as fit hands them
                waits.append(int(callback.wait))
        final = float(backend.get_value(model.optimizer.lr))
        out.append({**case, "learning_rates": rates, "final_lr": final, "wait": waits})
    versions = {
        "tf_keras": tf_keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    return {"recorded_with": versions, "cases": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=VENV, help="the NumPy 1.x environment (made if missing)")
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)  # run inside the venv
    args = parser.parse_args()
    if args.inner:
        cases = json.load(sys.stdin)
        json.dump(record(cases), sys.stdout)
        return
    python = args.venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(args.venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    rng = random.Random(args.seed)
    cases = [draw_case(rng) for _ in range(args.cases)]
    run = subprocess.run(
        [str(python), __file__, "--inner"],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        sys.exit(f"recording failed:\n{run.stderr}")
    recorded = json.loads(run.stdout)
    if not recorded["recorded_with"]["numpy"].startswith("1."):
        sys.exit(f"the environment runs NumPy {recorded['recorded_with']['numpy']}, not 1.x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as file:
        json.dump(recorded, file, indent=None, separators=(",", ":"))
        file.write("\n")
    changed = 0
    for case in recorded["cases"]:
        rates = [*case["learning_rates"], case["final_lr"]]
        changed += sum(a != b for a, b in itertools.pairwise(rates))
    print(f"wrote {len(recorded['cases'])} cases ({changed} rate changes) to {args.out}")
    print(f"recorded with {recorded['recorded_with']}")


if __name__ == "__main__":
    main()
