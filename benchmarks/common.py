"""Shared by the benchmark scripts: timing, the naive protobuf floor, fresh-process peak memory, and
fast generation of event files with TensorBoard's own protobufs and record framing."""

from __future__ import annotations

import gc
import json
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample_logs"


def timed(fn, repeat: int = 1):
    """(best wall-clock seconds over ``repeat`` calls, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def cached(root: Path, make, *args) -> Path:
    """``root``, written by ``make(tmp, *args)`` into a sibling folder renamed into place first if
    it is not there yet (an interrupted generation is never taken for a finished one)."""
    if not root.exists():
        print(f"generating {root} ...", flush=True)
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        make(tmp, *args)
        tmp.rename(root)
    return root


def naive_floor(root: Path) -> int:
    """The floor a naive Python reader hits: frame each record, ``Event.FromString`` it and count
    its summary values -- building nothing, checking no CRC."""
    from tensorboard.compat.proto.event_pb2 import Event

    parse = Event.FromString
    unpack = struct.Struct("<Q").unpack_from
    count = 0
    for path in sorted(root.rglob("*tfevents*")):
        data = path.read_bytes()
        pos, size = 0, len(data)
        while pos + 12 <= size:
            (length,) = unpack(data, pos)
            count += len(parse(data[pos + 12 : pos + 12 + length]).summary.value)
            pos += 16 + length
    return count


def peak_memory(root: Path, workers: int = 1) -> dict[str, float]:
    """runlens' peak memory reading ``root`` in a fresh, warmed-up process: growth of the peak
    resident set (VmHWM), tracemalloc's peak, the DataFrame's own size, and the peak resident set
    of the largest worker process (0 when reading in-process)."""
    code = f"""
import json, resource, tracemalloc
import numpy, pandas, runlens, runlens.events.logdir, tensorboard.compat.proto.event_pb2
def high_water_kb():  # VmHWM: peak RSS of this process image (ru_maxrss would carry the parent's over exec)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
runlens.read_scalars({str(SAMPLE)!r}, workers=1)  # warm up: lazily imported code, first-use caches
base = high_water_kb()
tracemalloc.start()
df = runlens.read_scalars({str(root)!r}, workers={workers})
current, peak = tracemalloc.get_traced_memory()
rss = high_water_kb()
worker_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest worker process's peak
print(json.dumps({{"base_rss_mb": base / 1024, "peak_rss_growth_mb": (rss - base) / 1024,
    "tracemalloc_peak_mb": peak / 2**20, "frame_mb": df.memory_usage(deep=True).sum() / 2**20, "rows": len(df),
    "worker_peak_rss_mb": worker_kb / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_line(memory: dict[str, float]) -> str:
    frame = memory["frame_mb"]
    return (
        f"interpreter+imports {memory['base_rss_mb']:.0f} MB; DataFrame {frame:.1f} MB ({memory['rows']:,} rows); "
        f"allocated peak (tracemalloc) {memory['tracemalloc_peak_mb']:.1f} MB = {memory['tracemalloc_peak_mb'] / frame:.2f}x; "
        f"resident-set growth {memory['peak_rss_growth_mb']:.1f} MB = {memory['peak_rss_growth_mb'] / frame:.2f}x"
        + (
            f"; largest worker process peak {memory['worker_peak_rss_mb']:.0f} MB (its interpreter included)"
            if memory["worker_peak_rss_mb"]
            else ""
        )
    )


class EventFile:
    """Writes TFRecord-framed Events built with TensorBoard's protobufs, in the shapes real writers
    produce: TF2 ``tf.summary.scalar`` (DT_FLOAT ``tensor_content`` + scalars metadata on every
    value) and ``simple_value`` (tensorboardX). Much faster than the writers' own Python paths,
    byte-for-byte the same kind of record."""

    def __init__(self, path: Path, *, wall_time: float = 1.7e9, source_writer: str | None = None) -> None:
        """``source_writer``: the ``source_metadata.writer`` of the file_version record (TF's C++
        writer, which Keras' callback goes through, puts ``tensorflow.core.util.events_writer``)."""
        from tensorboard.compat.proto import event_pb2

        from runlens.events.tfrecord import frame_record

        path.parent.mkdir(parents=True, exist_ok=True)
        self._frame = frame_record
        self._out = open(path, "wb")  # noqa: SIM115 (closed by close(), like a writer)
        self._wall_time = wall_time
        self._events: dict = {}
        first = event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")
        if source_writer is not None:
            first.source_metadata.writer = source_writer
        self._write(first)

    def _write(self, event) -> None:
        self._out.write(self._frame(event.SerializeToString()))

    def event(self, event) -> None:
        """Write a ready-made ``Event`` (a graph or hparams summary, say) as it is."""
        self._write(event)

    def scalar(
        self, tag: str, step: int, value: float, *, tf2: bool = True, wall_time: float | None = None
    ) -> None:
        """One scalar; ``wall_time`` None: 1 ms after the previous record."""
        event = self._events.get((tag, tf2))
        if event is None:
            event = self._events[(tag, tf2)] = self._event(tag, tf2)
        self._wall_time = self._wall_time + 0.001 if wall_time is None else wall_time
        event.wall_time, event.step = self._wall_time, step
        item = event.summary.value[0]
        if tf2:
            item.tensor.tensor_content = struct.pack("<f", value)
        else:
            item.simple_value = value
        self._write(event)

    @staticmethod
    def _event(tag: str, tf2: bool):
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

        if tf2:
            tensor = tensor_pb2.TensorProto(dtype=1)
            tensor.tensor_shape.SetInParent()
            metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
            )
            item = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)
        else:
            item = summary_pb2.Summary.Value(tag=tag, simple_value=0.0)
        return event_pb2.Event(summary=summary_pb2.Summary(value=[item]))

    def close(self) -> None:
        self._out.close()
