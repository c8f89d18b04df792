"""The test writers write what they claim: checked against tensorboard's own decoding."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas
import pytest
import writers

import runlens


def _comparable(rows):
    """(run, tag, step, value) with NaN made comparable, in order."""
    return [(run, tag, step, "nan" if math.isnan(v) else v) for run, tag, step, v in rows]


def _decoded(path):
    return _comparable((run, tag, step, v) for run, tag, step, _, v in writers.tensorboard_scalars(path))


def _by_run(rows):
    runs = defaultdict(list)
    for row in rows:
        runs[row[0]].append(row)
    return dict(runs)


def _encodings(path):
    """{run: {(tag, encoding, dtype, has plugin metadata)}} of every summary value under path."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.compat.proto import types_pb2

    found = defaultdict(set)
    for file in writers.event_files(path):
        run = file.parent.relative_to(path).as_posix()
        for event in LegacyEventFileLoader(str(file)).Load():
            for v in event.summary.value:
                kind = v.WhichOneof("value")
                if kind == "tensor":
                    kind = "tensor_content" if v.tensor.tensor_content else "*_val"
                dtype = types_pb2.DataType.Name(v.tensor.dtype) if v.HasField("tensor") else ""
                found[run].add((v.tag, kind, dtype, v.HasField("metadata")))
    return found


def test_tf_writers_write_their_records(tf_logdir):
    # Per run, in file order: the records are exactly what tensorboard decodes.
    assert _by_run(_decoded(tf_logdir.path)) == _by_run(_comparable(tf_logdir.scalars))
    values = [s.value for s in tf_logdir.scalars if s.run == "tf2"]
    assert any(map(math.isnan, values)) and math.inf in values and -math.inf in values
    assert max(s.step for s in tf_logdir.scalars) > 2**31


def test_tf_writers_use_the_encodings_the_readers_must_handle(tf_logdir):
    found = _encodings(tf_logdir.path)
    assert {(enc, dtype) for _, enc, dtype, _ in found["tf2"]} == {("tensor_content", "DT_FLOAT")}
    assert {(enc, dtype) for _, enc, dtype, _ in found["float64"]} == {("tensor_content", "DT_DOUBLE")}
    assert {(enc, dtype) for _, enc, dtype, _ in found["float16"]} == {("tensor_content", "DT_HALF")}
    assert {(enc, dtype) for _, enc, dtype, _ in found["int64"]} == {("tensor_content", "DT_INT64")}
    # TF2 writes plugin metadata on every value; the TF1 FileWriter only on a tag's first value.
    assert all(meta for *_, meta in found["tf2"])
    assert {(enc, dtype, meta) for _, enc, dtype, meta in found["tf1"]} == {
        ("*_val", "DT_FLOAT", True),
        ("*_val", "DT_FLOAT", False),
    }


def test_simple_value_writers_write_their_records(simple_value_logdir):
    decoded = _by_run(_decoded(simple_value_logdir.path))
    assert decoded == _by_run(_comparable(simple_value_logdir.scalars))
    assert set(decoded) == {"tensorboardX", "tensorboardX/hparams", "raw"}


def test_simple_value_writers_mix_in_non_scalar_summaries(simple_value_logdir):
    found = _encodings(simple_value_logdir.path)
    kinds = {enc for run in found.values() for _, enc, _, _ in run}
    assert {"simple_value", "histo", "image", "*_val", "tensor_content"} <= kinds
    tags = {tag for run in found.values() for tag, *_ in run}
    assert {"_hparams_/experiment", "note/text_summary", "pr", "text", "vector"} <= tags
    raw = {(enc, dtype) for tag, enc, dtype, _ in found["raw"] if tag.startswith("loss/")}
    assert raw == {
        ("*_val", "DT_FLOAT"),
        ("*_val", "DT_DOUBLE"),
        ("tensor_content", "DT_DOUBLE"),
        ("simple_value", ""),
    }
    assert {meta for tag, _, _, meta in found["raw"] if tag == "loss/float_val"} == {True, False}


def _keras_expected(logs_by_epoch):
    """Keras' layout from recorded logs: {(subdir, tag, step): float32 value}."""
    expected = {}
    for epoch, logs in logs_by_epoch.items():
        for key, value in logs.items():
            subdir, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            expected[(subdir, f"epoch_{name}", epoch)] = float(np.float32(value))
    return expected


def _keras_decoded(path):
    return {
        (run, tag, step): v
        for run, tag, step, _, v in writers.tensorboard_scalars(path)
        if tag.startswith("epoch_")
    }


@pytest.mark.parametrize("name", ["keras_run", "keras_sparse_validation_run", "keras_plateau_run"])
def test_keras_fit_logs_what_the_callbacks_saw(name, request):
    fit = request.getfixturevalue(name)
    assert _keras_decoded(fit.path) == _keras_expected(fit.logs)
    assert fit.epochs == sorted(fit.logs)
    assert fit.history["loss"] == [fit.logs[e]["loss"] for e in fit.epochs]


def test_keras_sparse_validation_logs_every_second_epoch(keras_sparse_validation_run):
    logs = keras_sparse_validation_run.logs
    assert [e for e in logs if "val_loss" in logs[e]] == [1, 3, 5]


def test_keras_plateau_run_reduces_after_logging_and_logs_batches(keras_plateau_run):
    rates = [logs["learning_rate"] for logs in keras_plateau_run.logs.values()]
    assert rates[:3] == pytest.approx([0.1, 0.1, 0.05]) and len(set(rates)) >= 4
    tags = {tag for _, tag, *_ in writers.tensorboard_scalars(keras_plateau_run.path)}
    assert {"batch_loss", "epoch_learning_rate", "evaluation_loss_vs_iterations"} <= tags


def test_keras_crash_resume_logs_the_crash_epoch_twice(keras_resumed_run):
    run = keras_resumed_run
    crashed, resumed = run.attempts
    assert max(crashed) == run.crash_epoch == min(resumed)
    assert crashed[run.crash_epoch]["loss"] != resumed[run.crash_epoch]["loss"]
    for subdir in ("train", "validation"):
        assert len(writers.event_files(run.path / subdir)) == 2
    decoded = [
        (tag, step, v)
        for r, tag, step, _, v in writers.tensorboard_scalars(run.path)
        if r == "train" and tag == "epoch_loss"
    ]
    expected = [
        ("epoch_loss", e, float(np.float32(logs["loss"])))
        for attempt in run.attempts
        for e, logs in attempt.items()
    ]
    assert decoded == expected
    assert run.last_written[run.crash_epoch] == resumed[run.crash_epoch]


def test_files_opened_in_one_second_are_read_in_counter_order(keras_resumed_run, tmp_path):
    """The CI flake this pins: both attempts' writers opened in the same second, their counters
    crossing a digit (9 -> 10), so the resumed attempt's path sorts first. The oracle and runlens
    still read the crashed attempt's epochs first."""
    run = tmp_path / "run"
    shutil.copytree(keras_resumed_run.path, run, ignore=shutil.ignore_patterns("backup"))
    for subdir in ("train", "validation"):
        for counter, path in zip((9, 10), writers.event_files(run / subdir)):
            path.rename(path.with_name(f"events.out.tfevents.1700000000.host.7.{counter}.v2"))
        assert [p.name.split(".")[-2] for p in writers.event_files(run / subdir)] == ["10", "9"]
    expected = [
        (e, float(np.float32(logs["loss"])))
        for attempt in keras_resumed_run.attempts
        for e, logs in attempt.items()
    ]
    assert [e for e, _ in expected] == [0, 1, 2, 2, 3, 4]
    oracle = [
        (s, v) for r, tag, s, _, v in writers.tensorboard_scalars(run) if (r, tag) == ("train", "epoch_loss")
    ]
    assert oracle == expected
    scalars = runlens.read_scalars(run)
    losses = scalars[(scalars["run"] == "train") & (scalars["tag"] == "epoch_loss")]
    assert list(zip(losses["step"], losses["value"])) == expected


def test_record_spans_and_damage(tf_logdir, copy_logdir):
    import tensorflow as tf

    path = writers.event_files(copy_logdir(tf_logdir.path / "tf2"))[0]
    spans = writers.record_spans(path)
    assert len(spans) == sum(1 for _ in tf.data.TFRecordDataset(str(path)))
    assert spans[-1].end == path.stat().st_size
    size = path.stat().st_size
    writers.flip_bit(writers.truncate(path, spans[2].payload + 3), spans[1].payload_crc, bit=7)
    assert path.stat().st_size == spans[2].payload + 3
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))
    assert size > path.stat().st_size
    assert writers.write_empty(path.parent).stat().st_size == 0
    garbage = writers.write_garbage(path.parent, "events.out.tfevents.9.garbage", size=64)
    assert garbage.read_bytes() == writers.write_garbage(path.parent, garbage.name, size=64).read_bytes()
    assert garbage.stat().st_size == 64


SAMPLE_LOGS = Path(__file__).resolve().parents[1] / "sample_logs"
SAMPLE_RUNS = {"overfits": 30, "plateau": 30, "improving": 20, "sparse_validation": 20, "unpruned": 12}


def test_sample_logs_stay_under_5_mb():
    assert sum(p.stat().st_size for p in SAMPLE_LOGS.rglob("*") if p.is_file()) < 5_000_000


@pytest.mark.parametrize("run", SAMPLE_RUNS)
def test_sample_run_event_files_csv_and_checkpoints_agree(run):
    csv = pandas.read_csv(SAMPLE_LOGS / run / "history.csv")  # CSVLogger writes "NA" if absent
    assert list(csv["epoch"]) == list(range(SAMPLE_RUNS[run]))
    expected = _keras_expected(
        {
            row.epoch: {
                k: v for k, v in row._asdict().items() if k not in ("Index", "epoch") and not math.isnan(v)
            }
            for row in csv.itertuples()
        }
    )
    decoded = _keras_decoded(SAMPLE_LOGS / run)
    assert {k: v for k, v in decoded.items() if k in expected} == expected
    assert {k for k in decoded if k not in expected} <= {
        ("train", "epoch_learning_rate", e) for e in csv["epoch"]
    }
    # runlens.keras kept the best 3 by val_loss and the last checkpoint, listed in runlens.json
    kept = sorted(
        k["epoch"]
        for k in json.loads((SAMPLE_LOGS / run / "runlens.json").read_text())["checkpoints"]["kept"]
    )
    names = sorted(p.name for p in (SAMPLE_LOGS / run / "checkpoints").glob("*.keras"))
    assert len(kept) >= 3 and names == [
        f"epoch_{e + 1:03d}-val_loss_{csv['val_loss'][e]:.6f}.keras" for e in kept
    ]


def test_sample_plateau_logs_the_rate_used_in_each_epoch():
    csv = pandas.read_csv(SAMPLE_LOGS / "plateau" / "history.csv")
    logged = [
        v
        for (_, tag, _), v in sorted(_keras_decoded(SAMPLE_LOGS / "plateau").items())
        if tag == "epoch_learning_rate"
    ]
    # ReduceLROnPlateau puts the rate it found at epoch end (before reducing) into the logs.
    assert logged == [float(np.float32(v)) for v in csv["learning_rate"]]
    assert sum(b < a for a, b in itertools.pairwise(logged)) in (2, 3)
