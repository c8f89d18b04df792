"""Read speed and memory: runlens.read_scalars beside tbparse and TensorBoard's EventAccumulator.

Generates (once, cached in ./bench_data) a logdir of at least 300,000 scalar events in mixed
encodings, then reads it with each tool in one run and prints times, points/s, ratios and runlens'
peak memory. Imports are excluded from the times (each tool is imported before its clock starts).

    python benchmarks/read_bench.py                 # default size, ~320k points
    python benchmarks/read_bench.py --points 1000000 --repeat 3

Layout generated (real writers only):
- keras-like runs RUN/train + RUN/validation written by TF2 ``tf.summary.scalar`` (DT_FLOAT rank-0
  tensors, plugin metadata on a tag's first value), with long ``batch_*`` series and ``epoch_*`` tags;
- flat runs written by tensorboardX (``simple_value``);
- a run of Python-built rank-0 tensors in ``float_val`` / ``double_val`` written with TensorBoard's
  own event file writer, plus histograms and text that every reader must skip.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, cached, memory_line, naive_floor, peak_memory, timed


def generate(root: Path, points: int) -> None:
    """Write the benchmark logdir (about ``points`` scalars) under ``root``."""
    import numpy as np
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboardX import SummaryWriter

    rng = np.random.default_rng(0)
    share = points // 3
    # 1) Keras layout, TF2 tensors: 2 runs, batch-level series + epoch series.
    for run in ("keras_a", "keras_b"):
        steps = share // 2 // 3
        for split in ("train", "validation"):
            writer = tf.summary.create_file_writer(str(root / run / split))
            with writer.as_default():
                if split == "train":
                    values = rng.random((steps, 2)).astype("float32")
                    for step in range(steps):
                        tf.summary.scalar("batch_loss", values[step, 0], step=step)
                        tf.summary.scalar("batch_accuracy", values[step, 1], step=step)
                for epoch in range(steps // 100):
                    tf.summary.scalar("epoch_loss", float(rng.random()), step=epoch)
                    tf.summary.scalar("epoch_accuracy", float(rng.random()), step=epoch)
                    tf.summary.histogram("epoch_weights", rng.random(32), step=epoch)
            writer.close()
    # 2) simple_value runs (tensorboardX), several tags.
    for run in range(4):
        writer = SummaryWriter(str(root / "tbx" / f"run{run}"), flush_secs=3600, max_queue=100000)
        values = rng.random((share // 4 // 4, 4))
        for step, row in enumerate(values):
            for k in range(4):
                writer.add_scalar(f"metric/{k}", float(row[k]), step)
        writer.close()
    # 3) Python-built rank-0 tensors in float_val / double_val, with non-scalars mixed in.
    writer = EventFileWriter(str(root / "protos"), max_queue_size=100000, flush_secs=3600)
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    text_meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
    )
    for step in range(share // 2):
        f = tensor_pb2.TensorProto(dtype=1, float_val=[float(rng.random())])
        d = tensor_pb2.TensorProto(dtype=2, double_val=[float(rng.random())])
        first = step == 0
        for tag, tensor in (("proto/float", f), ("proto/double", d)):
            value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata if first else None)
            writer.add_event(
                event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value]))
            )
        if step % 1000 == 0:
            text = tensor_pb2.TensorProto(dtype=7, string_val=[b"note"])
            value = summary_pb2.Summary.Value(tag="notes", tensor=text, metadata=text_meta)
            writer.add_event(
                event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value]))
            )
    writer.close()


def read_runlens(root: Path, workers: int | None):
    import runlens

    return runlens.read_scalars(root, workers=workers)


def read_tbparse(root: Path):
    from tbparse import SummaryReader

    reader = SummaryReader(str(root), extra_columns={"dir_name", "wall_time"})
    return reader.scalars, reader.tensors


def read_event_accumulator(root: Path) -> int:
    from tensorboard.backend.event_processing import event_multiplexer

    multiplexer = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0, "tensors": 0})
    multiplexer.AddRunsFromDirectory(str(root))
    multiplexer.Reload()
    count = 0
    for run, tags in multiplexer.Runs().items():
        accumulator = multiplexer.GetAccumulator(run)
        for tag in tags.get("scalars", []):
            count += len(accumulator.Scalars(tag))
        for tag in tags.get("tensors", []):
            count += len(accumulator.Tensors(tag))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=360_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE.parent / "bench_data")
    parser.add_argument("--skip-accumulator", action="store_true")
    args = parser.parse_args()

    root = cached(args.data / f"mixed_{args.points}", generate, args.points)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    files = sum(1 for p in root.rglob("*tfevents*"))
    print(f"logdir: {root}  ({files} event files, {size / 2**20:.1f} MiB)")

    import tbparse  # noqa: F401
    from tensorboard.backend.event_processing import event_multiplexer  # noqa: F401

    import runlens  # noqa: F401  imports happen before the clocks start

    rows: list[tuple[str, float, int]] = []
    t, df = timed(lambda: read_runlens(root, None), args.repeat)
    rows.append(("runlens.read_scalars (default workers)", t, len(df)))
    t1, df1 = timed(lambda: read_runlens(root, 1), args.repeat)
    rows.append(("runlens.read_scalars (workers=1)", t1, len(df1)))
    t_floor, count = timed(lambda: naive_floor(root), 1)
    rows.append(("naive floor: Event.FromString per record", t_floor, count))
    t_tb, (scalars, tensors) = timed(lambda: read_tbparse(root), 1)
    rows.append(("tbparse .scalars + .tensors", t_tb, len(scalars) + len(tensors)))
    if not args.skip_accumulator:
        t_ea, count = timed(lambda: read_event_accumulator(root), 1)
        rows.append(("EventAccumulator (size_guidance 0 = keep all)", t_ea, count))

    print(f"\n{'reader':48} {'seconds':>8} {'points':>10} {'points/s':>12} {'vs runlens':>11}")
    for name, seconds, points in rows:
        print(f"{name:48} {seconds:8.3f} {points:10,d} {points / seconds:12,.0f} {seconds / t:10.1f}x")
    print("\n(tensors counted by tbparse/EventAccumulator include the text summaries runlens skips)")
    print("\nrunlens peak memory (workers=1, fresh process): " + memory_line(peak_memory(root)))
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
