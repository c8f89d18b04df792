"""A Keras hyperparameter sweep read, decided and reported, beside RustBoard's load of the same logdir.

    python benchmarks/sweep_bench.py                    # 2,000 runs x 60 epochs, best of 5 rounds
    python benchmarks/sweep_bench.py --runs 200 --repeat 9 --skip-tbparse
    python benchmarks/sweep_bench.py --skip-html        # no HTML report
    python benchmarks/sweep_bench.py --hparams          # runs that also recorded their hparams
    python benchmarks/sweep_bench.py --copies-of plateau --skip-lightning  # a runlens.keras run x 2,000

The logdir is written once by ``make_sweep.py`` (Keras' layout, see its docstring) and cached in
``./bench_data``; so is the same sweep in Lightning's layout, for ``read_evals`` on step-logged
runs. Every step runs on the same files in one run of this script, in ``--repeat`` rounds (default 5):
each round measures every step once, in the order below, so that each ratio compares times taken
in the same stretch of the machine's load (a burst of other work slows one round's steps, not
every repeat of one step). Each step's best time is kept (slow steps, over ``--slow`` seconds, and
tbparse run in the first round only) and printed with its ratio to RustBoard and to
``read_scalars``; each goal also shows every round's own ratio:

- RustBoard: TensorBoard's Rust loader (``tensorboard_data_server``'s ``server --logdir DIR --reload
  once --samples-per-plugin scalars=all``), from process start until it logs ``Finished load cycle``
  (the time it reports for the cycle itself is printed beside); it checks CRCs only of records that
  fail to parse, runlens checks every one;
- in this process, imports done and each function run once on ``sample_logs`` before the clocks
  start: ``runlens.read_scalars``,
  ``runlens.read_epochs``, ``runlens.read_evals`` and ``runlens.build_report(LOGDIR)`` (defaults);
- whole processes, as a user types them: ``runlens report LOGDIR`` (text, stdout to /dev/null; its
  line count from one more run) and ``runlens report LOGDIR -o r.html`` (time and file size);
- ``tbparse`` (``SummaryReader(...).tensors``: Keras' scalars are tensors), once (``--skip-tbparse``);
- ``read_scalars`` and ``read_evals`` of the same sweep in Lightning's layout (``--skip-lightning``).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # tbparse imports TensorFlow
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, SAMPLE, cached, timed
from make_sweep import make_copies, make_keras_sweep, make_lightning_sweep

_DURATION = re.compile(r"Finished load cycle \(([0-9.]+)\s*(s|ms|µs|us|ns)\)")
_UNIT = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


@dataclass
class Step:
    """A measured step: ``measure()`` runs it once and gives (seconds, note); ``times`` holds every
    round's seconds, the best kept."""

    name: str
    measure: Callable[[], tuple[float, str]]
    once: bool = False  # measured in the first round only (slow, or not what the goals compare)
    times: list[float] = field(default_factory=list)
    note: str = ""
    failed: str = ""

    @property
    def seconds(self) -> float | None:
        return min(self.times) if self.times else None


def rustboard(logdir: Path, timeout: float) -> tuple[float, str]:
    """(seconds from process start to 'Finished load cycle', a note with the cycle's own time as
    logged)."""
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
                cycle = float(found.group(1)) * _UNIT[found.group(2)]
                return wall, f"its load cycle: {cycle:.3f} s"
        raise RuntimeError(f"RustBoard did not finish loading {logdir} within {timeout:.0f} s")
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()


def whole_process(args: list[str], timeout: float, note: Callable[[], str] = str) -> tuple[float, str]:
    """(wall seconds of ``python -m runlens ARGS`` in a fresh interpreter, stdout to /dev/null,
    ``note()`` after it)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "runlens", *args]
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, timeout=timeout)
    return time.perf_counter() - start, note()


def in_process(fn: Callable[[], Any], note: Callable[[Any], str]) -> Callable[[], tuple[float, str]]:
    """A step that calls ``fn`` here (``note(result)``: what it gave)."""

    def measure() -> tuple[float, str]:
        seconds, result = timed(fn)
        return seconds, note(result)

    return measure


def rows(frame: Any) -> str:
    return f"{len(frame):,} rows"


def run_rounds(steps: list[Step], repeat: int, slow: float) -> None:
    """``repeat`` rounds, each measuring every step once in order, so that each ratio compares
    times taken in the same stretch of the machine's load (a burst of other work slows the steps
    of one round, not all the repeats of one step). A step slower than ``slow`` seconds, or
    ``once``, is measured in the first round only; one that fails is reported and dropped."""
    for round_ in range(repeat):
        for step in steps:
            if step.failed or (round_ and (step.once or (step.seconds or 0) > slow)):
                continue
            try:
                seconds, note = step.measure()
            except (subprocess.SubprocessError, RuntimeError) as error:
                step.failed = f"failed: {error}"
                continue
            if step.seconds is None or seconds < step.seconds:
                step.note = note  # the best round's
            step.times.append(seconds)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every step")
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

    @cache  # one more run, after the first round's
    def text_lines() -> str:
        with tempfile.TemporaryFile("w+b") as out:
            subprocess.run(
                [sys.executable, "-m", "runlens", "report", str(keras_dir)], stdout=out, check=True
            )
            out.seek(0)
            return f"{sum(1 for _ in out):,} lines"

    html_dir = tempfile.TemporaryDirectory()
    html_file = Path(html_dir.name) / "r.html"

    def html_size() -> str:
        return f"{html_file.stat().st_size / 1e6:.2f} MB"

    steps = [
        Step("RustBoard load (process start to loaded)", partial(rustboard, keras_dir, args.timeout)),
        Step("runlens.read_scalars", in_process(lambda: runlens.read_scalars(keras_dir), rows)),
        Step("runlens.read_epochs", in_process(lambda: runlens.read_epochs(keras_dir), rows)),
        Step("runlens.read_evals", in_process(lambda: runlens.read_evals(keras_dir), rows)),
        Step(
            "runlens.build_report(logdir)",
            in_process(lambda: runlens.build_report(keras_dir), lambda _: "reads the logdir too"),
        ),
        Step(
            "runlens report LOGDIR (text, whole process)",
            partial(whole_process, ["report", str(keras_dir)], args.timeout, text_lines),
        ),
    ]
    if not args.skip_html:
        command = ["report", str(keras_dir), "-o", str(html_file)]
        html = partial(whole_process, command, args.timeout, html_size)
        steps.append(Step("runlens report LOGDIR -o r.html (whole process)", html))
    if not args.skip_tbparse:
        from tbparse import SummaryReader

        tensors = in_process(lambda: SummaryReader(str(keras_dir)).tensors, rows)
        steps.append(Step("tbparse SummaryReader(...).tensors", tensors, once=True))
    if not args.skip_lightning:
        lightning_dir = cached(
            args.data / f"lightning_sweep_{size}", make_lightning_sweep, args.runs, args.epochs
        )
        steps.append(
            Step(
                "Lightning layout: runlens.read_scalars",
                in_process(lambda: runlens.read_scalars(lightning_dir), rows),
            )
        )
        steps.append(
            Step(
                "Lightning layout: runlens.read_evals",
                in_process(lambda: runlens.read_evals(lightning_dir), rows),
            )
        )
    run_rounds(steps, args.repeat, args.slow)
    by_name = {step.name.split(" (")[0]: step for step in steps}

    wall, read = steps[0].seconds, steps[1].seconds
    print(f"\nbest of {args.repeat} rounds (each round measures every step once, in this order)")
    print(f"{'step':52} {'seconds':>8} {'x RustBoard':>12} {'x read_scalars':>15}  notes")
    for step in steps:
        if step.seconds is None:
            print(f"{step.name:52} {'-':>8} {'':>12} {'':>15}  {step.failed}")
            continue
        print(
            f"{step.name:52} {step.seconds:8.3f} {step.seconds / wall:11.2f}x {step.seconds / read:14.2f}x  "
            f"{step.note}"
        )
    print(f"\nload average after: {load_average()}")

    text, html = by_name["runlens report LOGDIR"], by_name.get("runlens report LOGDIR -o r.html")
    goals = [
        ("read_epochs <= 1.3x read_scalars", steps[2], steps[1], 1.3),
        ("text report <= 3x RustBoard's load", text, steps[0], 3.0),
    ]
    if html is not None:
        goals.append(("HTML report <= 2x the text report", html, text, 2.0))
    print("\ngoals (issue 13): the ratio of the best times; in brackets, each round's own ratio")
    for name, step, base, limit in goals:
        ratio = step.seconds / base.seconds if step.seconds and base.seconds else float("inf")
        rounds = " ".join(f"{a / b:.2f}" for a, b in zip(step.times, base.times))
        print(f"  {'PASS' if ratio <= limit else 'FAIL'}  {name}: {ratio:.2f}  [{rounds}]")
    if html is not None:
        megabytes = html_file.stat().st_size / 1e6 if html_file.exists() else float("inf")
        print(f"  {'PASS' if megabytes <= 5 else 'FAIL'}  HTML report <= 5 MB: {megabytes:.2f}")
    html_dir.cleanup()
    print(f"  info  read_evals (Keras) = {steps[3].seconds / read:.2f}x read_scalars", end="")
    light = [by_name.get(f"Lightning layout: runlens.{f}") for f in ("read_evals", "read_scalars")]
    if all(step and step.seconds for step in light):
        print(f"; on Lightning's layout {light[0].seconds / light[1].seconds:.2f}x", end="")
    print()


if __name__ == "__main__":
    main()
