"""A Keras hyperparameter sweep read, decided and reported, beside RustBoard's load of the same logdir.

    python benchmarks/sweep_bench.py                    # 2,000 runs x 60 epochs, best of 3
    python benchmarks/sweep_bench.py --runs 200 --repeat 5 --skip-tbparse
    python benchmarks/sweep_bench.py --skip-html        # no HTML report
    python benchmarks/sweep_bench.py --hparams          # runs that also recorded their hparams
    python benchmarks/sweep_bench.py --copies-of plateau --skip-lightning  # a runlens.keras run x 2,000

The logdir is written once by ``make_sweep.py`` (Keras' layout, see its docstring) and cached in
``./bench_data``; so is the same sweep in Lightning's layout, for ``read_evals`` on step-logged
runs. Every step runs on the same files in one run of this script, each ``--repeat`` times (best
kept; slow steps, over ``--slow`` seconds, once), and is printed with its ratio to RustBoard and to
``read_scalars``:

- RustBoard: TensorBoard's Rust loader (``tensorboard_data_server``'s ``server --logdir DIR --reload
  once --samples-per-plugin scalars=all``), from process start until it logs ``Finished load cycle``
  (the time it reports for the cycle itself is printed beside); it checks CRCs only of records that
  fail to parse, runlens checks every one;
- in this process, imports done and each function run once on ``sample_logs`` before the clocks
  start: ``runlens.read_scalars``,
  ``runlens.read_epochs``, ``runlens.read_evals`` and ``runlens.build_report(LOGDIR)`` (defaults);
- whole processes, as a user types them: ``runlens report LOGDIR`` (text, stdout to /dev/null; its
  line count from one more run) and ``runlens report LOGDIR -o r.html`` (time and file size);
- ``tbparse`` (``SummaryReader(...).tensors``: Keras' scalars are tensors), once (``--skip-tbparse``).

runlens' bytecode is compiled before the clocks start, as ``pip install`` does for an installed
package (an editable install run with ``PYTHONDONTWRITEBYTECODE=1`` compiles it in every process).

Then the goals of issue 13, PASS/FAIL each. The load average before and after is printed: other
work on the machine slows everything, RustBoard's threads most.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # tbparse imports TensorFlow
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, SAMPLE, cached, timed
from make_sweep import make_copies, make_keras_sweep, make_lightning_sweep

_DURATION = re.compile(r"Finished load cycle \(([0-9.]+)\s*(s|ms|µs|us|ns)\)")
_UNIT = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


@dataclass
class Step:
    name: str
    seconds: float | None  # None: skipped or failed
    note: str = ""


def rustboard(logdir: Path, timeout: float) -> tuple[float, float]:
    """(seconds from process start to 'Finished load cycle', the cycle's own time as logged)."""
    import tensorboard_data_server

    binary = tensorboard_data_server.server_binary()
    if binary is None:
        raise SystemExit("tensorboard-data-server has no server binary on this platform")
    command = [binary, "--logdir", str(logdir), "--reload", "once", "--port", "0", "-v"]
    command += ["--samples-per-plugin", "scalars=all"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, process.kill)  # ends the wait below if it never loads
    watchdog.start()
    try:
        for line in process.stderr:
            found = _DURATION.search(line)
            if found:
                wall = time.perf_counter() - start
                return wall, float(found.group(1)) * _UNIT[found.group(2)]
        raise RuntimeError(f"RustBoard did not finish loading {logdir} within {timeout:.0f} s")
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()


def whole_process(args: list[str], repeat: int, slow: float, timeout: float) -> float:
    """Best wall time of ``python -m runlens ARGS`` (a fresh interpreter each time, stdout to
    /dev/null)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        command = [sys.executable, "-m", "runlens", *args]
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True, timeout=timeout)
        best = min(best, time.perf_counter() - start)
        if best > slow:
            break
    return best


def best_of(fn, repeat: int, slow: float):
    """(best seconds, result): ``repeat`` calls, or one when the first is slower than ``slow``."""
    seconds, result = timed(fn, 1)
    if seconds <= slow and repeat > 1:
        again, result = timed(fn, repeat - 1)
        seconds = min(seconds, again)
    return seconds, result


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow", type=float, default=30.0, help="steps slower than this run once")
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    parser.add_argument(
        "--hparams", action="store_true", help="each run also records its hparams (a third, small file)"
    )
    parser.add_argument(
        "--copies-of",
        metavar="RUN",
        help="the logdir is --runs copies of sample_logs/RUN (runlens.json, hparams, checkpoints)",
    )
    parser.add_argument("--skip-tbparse", action="store_true")
    parser.add_argument("--skip-html", action="store_true")
    parser.add_argument("--skip-lightning", action="store_true", help="no read_evals on Lightning's layout")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a step is given up")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the report's own warnings are not what is measured

    size = f"{args.runs}x{args.epochs}"
    if args.copies_of:
        keras_dir = cached(
            args.data / f"copies_{args.copies_of}_{args.runs}", make_copies, args.runs, args.copies_of
        )
    else:
        name = f"keras_sweep_{size}" + ("_hparams" if args.hparams else "")
        make = partial(make_keras_sweep, hparams=args.hparams)
        keras_dir = cached(args.data / name, make, args.runs, args.epochs)
    files = [p for p in keras_dir.rglob("*") if p.is_file()]
    print(
        f"logdir {keras_dir}: {args.runs:,} runs (Keras layout), {len(files):,} files, "
        f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB"
    )
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; load average {load_average()}")

    import runlens  # imported before the clocks start

    # An installed package has its bytecode (pip compiles it); an editable one run with
    # PYTHONDONTWRITEBYTECODE=1 (Docker images set it) would compile runlens' sources in every
    # process it starts, 0.05 s a run: compiled first, as installed.
    compileall.compile_dir(Path(runlens.__file__).parent, quiet=1)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("PYTHONDONTWRITEBYTECODE is set: runlens' bytecode was compiled first, as pip install does")

    for warm_up in (runlens.read_scalars, runlens.read_epochs, runlens.read_evals, runlens.build_report):
        warm_up(SAMPLE)  # lazily imported modules, worker processes' first start: not what is timed

    steps: list[Step] = []
    wall, cycle = min(rustboard(keras_dir, args.timeout) for _ in range(args.repeat))
    steps.append(Step("RustBoard load (process start to loaded)", wall, f"its load cycle: {cycle:.3f} s"))

    seconds, scalars = best_of(lambda: runlens.read_scalars(keras_dir), args.repeat, args.slow)
    steps.append(Step("runlens.read_scalars", seconds, f"{len(scalars):,} rows"))
    seconds, epochs = best_of(lambda: runlens.read_epochs(keras_dir), args.repeat, args.slow)
    steps.append(Step("runlens.read_epochs", seconds, f"{len(epochs):,} rows"))
    seconds, evals = best_of(lambda: runlens.read_evals(keras_dir), args.repeat, args.slow)
    steps.append(Step("runlens.read_evals", seconds, f"{len(evals):,} rows"))
    seconds, _ = best_of(lambda: runlens.build_report(keras_dir), args.repeat, args.slow)
    steps.append(Step("runlens.build_report(logdir)", seconds, "reads the logdir too"))

    text = whole_process(["report", str(keras_dir)], args.repeat, args.slow, args.timeout)
    with tempfile.TemporaryFile("w+b") as out:
        subprocess.run([sys.executable, "-m", "runlens", "report", str(keras_dir)], stdout=out, check=True)
        out.seek(0)
        lines = sum(1 for _ in out)
    steps.append(Step("runlens report LOGDIR (text, whole process)", text, f"{lines:,} lines"))
    html = html_size = None
    if not args.skip_html:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "r.html"
            command = ["report", str(keras_dir), "-o", str(target)]
            try:
                html = whole_process(command, args.repeat, args.slow, args.timeout)
                html_size = target.stat().st_size
            except subprocess.TimeoutExpired:
                print(f"runlens report -o r.html: not done after {args.timeout:.0f} s (--timeout)")
            except subprocess.CalledProcessError as error:
                print(f"runlens report -o r.html failed: {error}")
        note = f"{html_size / 1e6:.1f} MB" if html_size is not None else "not done"
        steps.append(Step("runlens report LOGDIR -o r.html (whole process)", html, note))
    if not args.skip_tbparse:
        from tbparse import SummaryReader

        seconds, frame = timed(lambda: SummaryReader(str(keras_dir)).tensors)
        steps.append(Step("tbparse SummaryReader(...).tensors", seconds, f"{len(frame):,} rows"))

    lightning_ratio = None
    if not args.skip_lightning:
        lightning_dir = cached(
            args.data / f"lightning_sweep_{size}", make_lightning_sweep, args.runs, args.epochs
        )
        light_scalars, light_rows = best_of(
            lambda: runlens.read_scalars(lightning_dir), args.repeat, args.slow
        )
        steps.append(
            Step("Lightning layout: runlens.read_scalars", light_scalars, f"{len(light_rows):,} rows")
        )
        light_evals, frame = best_of(lambda: runlens.read_evals(lightning_dir), args.repeat, args.slow)
        steps.append(Step("Lightning layout: runlens.read_evals", light_evals, f"{len(frame):,} rows"))
        lightning_ratio = light_evals / light_scalars

    read = steps[1].seconds
    print(f"\n{'step':52} {'seconds':>8} {'x RustBoard':>12} {'x read_scalars':>15}  notes")
    for step in steps:
        if step.seconds is None:
            print(f"{step.name:52} {'-':>8} {'':>12} {'':>15}  {step.note}")
            continue
        print(
            f"{step.name:52} {step.seconds:8.3f} {step.seconds / wall:11.2f}x {step.seconds / read:14.2f}x  "
            f"{step.note}"
        )
    print(f"\nload average after: {load_average()}")

    goals = [
        ("read_epochs <= 1.3x read_scalars", steps[2].seconds / read, 1.3),
        ("text report <= 3x RustBoard's load", text / wall, 3.0),
    ]
    if not args.skip_html:
        goals.append(("HTML report <= 2x the text report", (html or float("inf")) / text, 2.0))
        goals.append(("HTML report <= 5 MB", (html_size or float("inf")) / 1e6, 5.0))
    print("\ngoals (issue 13):")
    for name, value, limit in goals:
        print(f"  {'PASS' if value <= limit else 'FAIL'}  {name}: {value:.2f}")
    print(f"  info  read_evals (Keras) = {steps[3].seconds / read:.2f}x read_scalars", end="")
    print(f"; on Lightning's layout {lightning_ratio:.2f}x" if lightning_ratio is not None else "")


if __name__ == "__main__":
    main()
