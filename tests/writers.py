"""Real TensorBoard writers for the reader tests, and helpers to damage what they wrote.

Every ``write_*`` function writes event files into a directory with a real writer (TensorFlow,
tensorboardX, tensorboard's own record writer, Keras' TensorBoard callback) and returns what it
asked that writer to write, computed without runlens. Scalar records carry the value *as stored*:
the requested value cast to the writer's dtype by numpy/TensorFlow (``tf.summary.scalar`` and
``simple_value`` store float32). ``run`` is '.' for ``dir`` itself; use :func:`rebase` when ``dir``
is a sub-folder of the logdir under test.

TensorFlow and Keras are imported inside the functions. Example::

    written = write_tf2_scalars(tmp_path)
    expected = pandas.DataFrame(written)        # columns run, tag, step, value
"""

from __future__ import annotations

import math
import random
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

NAN, INF = math.nan, math.inf

#: (tag, step, value) in the order written: steps 0 and > 2**31, NaN, +-inf, a repeated step,
#: values float32 cannot hold exactly, the float32 extremes.
FLOAT_SERIES: tuple[tuple[str, int, float], ...] = (
    ("loss", 0, 1.0),
    ("metrics/accuracy", 0, 0.1),
    ("loss", 1, 0.7),
    ("metrics/accuracy", 1, -INF),
    ("loss", 2, NAN),
    ("metrics/accuracy", 2, 0.3),
    ("loss", 3, INF),
    ("metrics/accuracy", 2, 0.35),
    ("loss", 2**31 + 7, 1e-40),
    ("metrics/accuracy", 2**40, 3.0e38),
    ("loss", 2**62, -0.0),
)
#: (tag, step, value) for integer tensors.
INT_SERIES: tuple[tuple[str, int, float], ...] = (
    ("count", 0, 0),
    ("count", 1, -3),
    ("count", 2**33, 2**31 - 1),
    ("count", 2**33 + 1, 7),
)

#: A name TensorBoard (and runlens) takes for an event file.
EVENT_FILE_NAME = "events.out.tfevents.123.host"


class Scalar(NamedTuple):
    """One scalar as written: ``run`` relative to the written dir, value as stored on disk."""

    run: str
    tag: str
    step: int
    value: float


def rebase(records: Sequence[Scalar], prefix: str) -> list[Scalar]:
    """Records of a dir written as sub-folder ``prefix`` of the logdir (``rebase(w, "a")``)."""
    return [s._replace(run=prefix if s.run == "." else f"{prefix}/{s.run}") for s in records]


def _f32(value: float) -> float:
    import numpy as np

    return float(np.float32(value))


# ---------------------------------------------------------------- TensorFlow writers


def write_tf2_scalars(dir: Path, series=FLOAT_SERIES) -> list[Scalar]:
    """``tf.summary.scalar`` (TF2 file writer): DT_FLOAT rank-0 ``tensor_content``, float32 values."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(dir))
    with writer.as_default():
        for tag, step, value in series:
            tf.summary.scalar(tag, value, step=step)
    writer.close()
    return [Scalar(".", tag, step, _f32(value)) for tag, step, value in series]


def write_tf2_tensors(dir: Path, series=None, *, dtype: str = "float64") -> list[Scalar]:
    """``tf.summary.write`` of rank-0 ``dtype`` tensors with scalars metadata (e.g. DT_DOUBLE).

    ``dtype`` is a TensorFlow dtype name (float64, float16, bfloat16, int32, int64, ...); the
    default series is :data:`FLOAT_SERIES` for floating dtypes and :data:`INT_SERIES` otherwise.
    """
    import tensorflow as tf
    from tensorboard.plugins.scalar import metadata

    tf_dtype = tf.as_dtype(dtype)
    if series is None:
        series = FLOAT_SERIES if tf_dtype.is_floating else INT_SERIES
    scalars_metadata = metadata.create_summary_metadata(display_name=None, description=None)
    written = []
    writer = tf.summary.create_file_writer(str(dir))
    with writer.as_default():
        for tag, step, value in series:
            tensor = tf.constant(value, dtype=tf_dtype)
            tf.summary.write(tag, tensor, step=step, metadata=scalars_metadata)
            written.append(Scalar(".", tag, step, float(tensor.numpy())))
    writer.close()
    return written


def write_tf1_scalars(dir: Path, series=FLOAT_SERIES) -> list[Scalar]:
    """TF1 ``FileWriter`` + tensorboard's scalar ``pb``: ``float_val``, metadata on first value only.

    TF1 names the tag ``<name>/scalar_summary``.
    """
    import tensorflow as tf
    from tensorboard.plugins.scalar import summary as scalar_summary

    with tf.Graph().as_default():  # FileWriter refuses eager mode
        writer = tf.compat.v1.summary.FileWriter(str(dir))
        for tag, step, value in series:
            writer.add_summary(scalar_summary.pb(tag, value), global_step=step)
        writer.close()
    return [Scalar(".", f"{tag}/scalar_summary", step, _f32(value)) for tag, step, value in series]


# ---------------------------------------------------------------- simple_value / raw protos


def write_tensorboardx(dir: Path, series=FLOAT_SERIES) -> list[Scalar]:
    """tensorboardX ``add_scalar`` (``simple_value``) mixed with histogram, image, text, PR curve
    and hparams summaries. ``add_hparams`` writes its metrics as scalars into run ``hparams``."""
    import numpy as np
    from tensorboardX import SummaryWriter

    rng = np.random.default_rng(0)
    with SummaryWriter(logdir=str(dir)) as writer:
        for i, (tag, step, value) in enumerate(series):
            writer.add_scalar(tag, value, step)
            if i % 3 == 0:
                writer.add_histogram("weights", rng.normal(size=50), step)
                writer.add_image("image", rng.random((3, 4, 4)), step)
                writer.add_text("note", f"step {step}", step)
                writer.add_pr_curve("pr", rng.integers(0, 2, 20), rng.random(20), step)
        writer.add_hparams({"lr": 0.1, "units": 8}, {"hparam/score": 0.75}, name="hparams")
    written = [Scalar(".", tag, step, _f32(value)) for tag, step, value in series]
    return written + [Scalar("hparams", "hparam/score", 0, 0.75)]


def write_raw_protos(dir: Path, series=FLOAT_SERIES) -> list[Scalar]:
    """Events built from ``tensorboard.compat.proto`` and written by tensorboard's EventFileWriter.

    Each tag of ``series`` is written four ways, as tags ``<tag>/<encoding>``: ``float_val``
    (DT_FLOAT) and ``double_val`` (DT_DOUBLE) rank-0 tensors with scalars metadata on the first
    value only, a DT_DOUBLE rank-0 ``tensor_content`` without metadata, and ``simple_value``.
    Mixed in, never scalars: a graph, session logs, a histogram and a DT_FLOAT rank-1 tensor in the
    same Event as a scalar, and a rank-0 DT_STRING text tensor (metadata on first value only).
    """
    import numpy as np
    from tensorboard.compat.proto import (
        event_pb2,
        graph_pb2,
        node_def_pb2,
        summary_pb2,
        tensor_pb2,
        tensor_shape_pb2,
        types_pb2,
    )
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    scalars = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    text = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    rank0 = tensor_shape_pb2.TensorShapeProto()
    seen: set[str] = set()

    def value(tag, metadata=None, **fields):
        first = tag not in seen
        seen.add(tag)
        return summary_pb2.Summary.Value(tag=tag, metadata=metadata if first else None, **fields)

    writer = EventFileWriter(str(dir))
    graph = graph_pb2.GraphDef(node=[node_def_pb2.NodeDef(name="x", op="Placeholder")])
    writer.add_event(event_pb2.Event(wall_time=1.0, graph_def=graph.SerializeToString()))
    start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
    writer.add_event(event_pb2.Event(wall_time=1.0, session_log=start))
    written = []
    for i, (tag, step, v) in enumerate(series):
        values = [
            value(
                f"{tag}/float_val",
                scalars,
                tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=rank0, float_val=[v]),
            ),
            value(
                f"{tag}/double_val",
                scalars,
                tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=rank0, double_val=[v]),
            ),
            value(
                f"{tag}/double_content",
                tensor=tensor_pb2.TensorProto(
                    dtype=types_pb2.DT_DOUBLE, tensor_shape=rank0, tensor_content=np.float64(v).tobytes()
                ),
            ),
            value(f"{tag}/simple_value", simple_value=v),
            value("histogram", histo=summary_pb2.HistogramProto(min=0, max=1, num=2)),
            value(
                "vector",
                tensor=tensor_pb2.TensorProto(
                    dtype=types_pb2.DT_FLOAT,
                    float_val=[v, v],
                    tensor_shape=tensor_shape_pb2.TensorShapeProto(
                        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)]
                    ),
                ),
            ),
            value(
                "text",
                text,
                tensor=tensor_pb2.TensorProto(
                    dtype=types_pb2.DT_STRING, tensor_shape=rank0, string_val=[b"1.5"]
                ),
            ),
        ]
        writer.add_event(
            event_pb2.Event(wall_time=1000.0 + i, step=step, summary=summary_pb2.Summary(value=values))
        )
        written += [
            Scalar(".", f"{tag}/{encoding}", step, cast(v))
            for encoding, cast in [
                ("float_val", _f32),
                ("double_val", float),
                ("double_content", float),
                ("simple_value", _f32),
            ]
        ]
    stop = event_pb2.SessionLog(status=event_pb2.SessionLog.STOP)
    writer.add_event(event_pb2.Event(wall_time=2000.0, session_log=stop))
    writer.close()
    return written


def write_simple_values(dir: Path, series=FLOAT_SERIES) -> list[Scalar]:
    """:func:`write_tensorboardx` into ``dir/tensorboardX`` and :func:`write_raw_protos` into
    ``dir/raw``: simple_value, float_val and double_val scalars among non-scalar summaries."""
    return rebase(write_tensorboardx(dir / "tensorboardX", series), "tensorboardX") + rebase(
        write_raw_protos(dir / "raw", series), "raw"
    )


# ---------------------------------------------------------------- Keras 3 fits


class SimulatedCrash(RuntimeError):
    """Raised by :func:`crash_at_end_of` (a simulated crash at the end of an epoch)."""


@dataclass
class KerasFit:
    """A finished Keras fit: ``logs[epoch]`` is what the callbacks saw at that epoch's end, plus
    the ``learning_rate`` TensorBoard logs (read from the optimizer at the same point)."""

    path: Path
    history: dict[str, list[float]]
    epochs: list[int]
    logs: dict[int, dict[str, float]]
    model: Any = field(repr=False, default=None)


@dataclass
class CrashResume:
    """``attempts[i][epoch]``: the logs of attempt i (crashed, then resumed); ``crash_epoch`` is
    logged by both. ``last_written`` is the per-epoch view where the later attempt wins."""

    path: Path
    crash_epoch: int
    attempts: list[dict[int, dict[str, float]]]
    history: dict[str, list[float]]

    @property
    def last_written(self) -> dict[int, dict[str, float]]:
        merged: dict[int, dict[str, float]] = {}
        for attempt in self.attempts:
            merged.update(attempt)
        return dict(sorted(merged.items()))


def _tiny_data(seed: int):
    """48 training and 16 validation samples of a noisy linear binary problem, 4 features."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=4) + 0.7 * rng.normal(size=64) > 0).astype("float32")
    return (x[:48], y[:48]), (x[48:], y[48:])


def _tiny_model(learning_rate):
    import keras

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _logs_recorder():
    """A callback recording each epoch's logs and the optimizer's learning rate at epoch end;
    placed right after TensorBoard it sees what TensorBoard logged."""
    import keras

    class LogsRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.logs: dict[int, dict[str, float]] = {}

        def on_epoch_end(self, epoch, logs=None):
            row = {key: float(value) for key, value in (logs or {}).items()}
            lr = self.model.optimizer.learning_rate
            row["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
            self.logs[epoch] = row

    return LogsRecorder()


def crash_at_end_of(crash_epoch: int):
    """A callback that raises :class:`SimulatedCrash` at the end of epoch ``crash_epoch``."""
    import keras

    class CrashAtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == crash_epoch:
                raise SimulatedCrash(f"simulated crash at the end of epoch {epoch}")

    return CrashAtEpochEnd()


def keras_fit(
    dir: Path,
    *,
    epochs: int,
    validation_freq: int = 1,
    callbacks: Sequence = (),
    lr_schedule=None,
    seed: int = 0,
    update_freq="epoch",
) -> KerasFit:
    """A real Keras 3 fit of a tiny model with ``keras.callbacks.TensorBoard(log_dir=dir)``.

    Callbacks run in the order TensorBoard, a logs recorder, then ``callbacks`` (so a
    ReduceLROnPlateau passed here acts after TensorBoard logged the epoch's rate).
    ``lr_schedule``: a float or a ``keras.optimizers.schedules.LearningRateSchedule`` (default 0.1).
    """
    import keras

    keras.utils.set_random_seed(seed)
    (x, y), validation = _tiny_data(seed)
    model = _tiny_model(0.1 if lr_schedule is None else lr_schedule)
    recorder = _logs_recorder()
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(dir), update_freq=update_freq)
    history = model.fit(
        x,
        y,
        validation_data=validation,
        validation_freq=validation_freq,
        epochs=epochs,
        batch_size=16,
        verbose=0,
        callbacks=[tensorboard, recorder, *callbacks],
    )
    return KerasFit(Path(dir), history.history, list(history.epoch), recorder.logs, model)


def keras_fit_crash_resume(dir: Path, *, epochs: int = 5, crash_epoch: int = 2, seed: int = 0) -> CrashResume:
    """A fit with BackupAndRestore that crashes at the end of ``crash_epoch``, then resumes.

    Keras 3 calls callbacks in list order and BackupAndRestore saves in ``on_epoch_end``, so with
    ``[TensorBoard, recorder, crash, BackupAndRestore]`` the crash epoch is logged but not backed
    up: the resumed fit (new model and TensorBoard callback, seed ``seed + 1`` as a new process
    would differ) restarts at ``crash_epoch`` and logs it again into a second event file per dir.
    The crashed TensorBoard callback gets ``on_train_end`` (its writers flushed and closed) as a
    dying process would flush them.
    """
    import keras

    backup = dir / "backup"
    (x, y), validation = _tiny_data(seed)
    attempts, tensorboards = [], []
    for attempt, extra in enumerate([[crash_at_end_of(crash_epoch)], []]):
        keras.utils.set_random_seed(seed + attempt)
        model = _tiny_model(0.1)
        recorder = _logs_recorder()
        tensorboards.append(keras.callbacks.TensorBoard(log_dir=str(dir)))
        callbacks = [
            tensorboards[-1],
            recorder,
            *extra,
            keras.callbacks.BackupAndRestore(backup_dir=str(backup)),
        ]
        try:
            history = model.fit(
                x, y, validation_data=validation, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks
            )
        except SimulatedCrash:
            tensorboards[-1].on_train_end()
        attempts.append(recorder.logs)
    return CrashResume(Path(dir), crash_epoch, attempts, history.history)


# ---------------------------------------------------------------- reading back, independently


def event_files(dir: Path) -> list[Path]:
    """Every file under ``dir`` whose name contains ``tfevents``, sorted by path."""
    return sorted(p for p in Path(dir).rglob("*tfevents*") if p.is_file())


def tensorboard_scalars(dir: Path) -> list[tuple[str, str, int, float, float]]:
    """``(run, tag, step, wall_time, value)`` of every scalar under ``dir``, decoded by
    tensorboard's own event loader and ``tf.make_ndarray``: an oracle independent of runlens.

    A scalar is a ``simple_value`` or a rank-0 numeric tensor whose tag's first value in the file
    has plugin ``scalars`` or no plugin. Folders in path order; a folder's files in the order TF's
    writer names them (``events.out.tfevents.<seconds>.<host>.<pid>.<counter>``, numbers compared
    as numbers: two files opened in one second by one process differ only in the counter, and
    counter 10 comes after 9, though its path sorts first -- nor does the first event tell them
    apart, its wall time being whole seconds); events in file order.
    """
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    def written(path: Path) -> tuple:
        return (
            path.parent,
            [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)],
        )

    rows = []
    for path in sorted(event_files(dir), key=written):
        run = path.parent.relative_to(dir).as_posix()
        plugin: dict[str, str] = {}
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                name = plugin.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
                if value.HasField("simple_value"):
                    rows.append((run, value.tag, event.step, event.wall_time, value.simple_value))
                elif value.HasField("tensor") and name in ("", "scalars"):
                    array = tf.make_ndarray(value.tensor)
                    if array.ndim == 0 and array.dtype.kind in "fiub":
                        rows.append((run, value.tag, event.step, event.wall_time, float(array)))
    return rows


class RecordSpan(NamedTuple):
    """Byte offsets of one TFRecord: ``start`` (length field), ``payload`` start, ``end``."""

    start: int
    payload: int
    end: int

    @property
    def length_crc(self) -> int:
        """Offset of the CRC of the length field."""
        return self.start + 8

    @property
    def payload_crc(self) -> int:
        """Offset of the CRC of the payload."""
        return self.end - 4


def record_spans(path: Path) -> list[RecordSpan]:
    """The records of an intact event file, found by walking the length fields (CRCs unchecked).

    ``uint64 length | uint32 crc | payload | uint32 crc`` (TFRecord framing).
    """
    data = Path(path).read_bytes()
    spans, start = [], 0
    while start + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, start)
        spans.append(RecordSpan(start, start + 12, start + 12 + length + 4))
        start = spans[-1].end
    if start != len(data):
        raise ValueError(f"{path}: {len(data) - start} trailing bytes, not an intact event file")
    return spans


# ---------------------------------------------------------------- damage


def truncate(path: Path, size: int) -> Path:
    """Cut ``path`` to ``size`` bytes (negative: drop that many from the end)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:size])
    return Path(path)


def flip_bit(path: Path, offset: int, bit: int = 0) -> Path:
    """Flip bit ``bit`` (0-7) of the byte at ``offset`` (negative: from the end)."""
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 1 << bit
    Path(path).write_bytes(bytes(data))
    return Path(path)


def write_empty(dir: Path, name: str = EVENT_FILE_NAME) -> Path:
    """An empty file named like an event file."""
    Path(dir).mkdir(parents=True, exist_ok=True)
    path = Path(dir) / name
    path.write_bytes(b"")
    return path


def write_garbage(dir: Path, name: str = EVENT_FILE_NAME, *, size: int = 1000, seed: int = 0) -> Path:
    """``size`` seeded random bytes in a file named like an event file."""
    Path(dir).mkdir(parents=True, exist_ok=True)
    path = Path(dir) / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def set_length(path: Path, offset: int, length: int) -> Path:
    """Overwrite the length field of the record at ``offset`` with ``length`` and give it a *valid*
    length CRC (the masked CRC-32C TFRecord stores), so only the length itself is wrong."""
    import crc32c

    data = bytearray(Path(path).read_bytes())
    field = struct.pack("<Q", length)
    crc = crc32c.crc32c(field)
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    data[offset : offset + 12] = field + struct.pack("<I", masked)
    Path(path).write_bytes(bytes(data))
    return Path(path)
