"""read_scalars against real writers, checked with an independent decoding (tensorboard's own
event loader + tf.make_ndarray) and against what each writer was asked to write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import writers

import runlens
from runlens.errors import RunlensError
from runlens.times import unix_seconds


def rows_of(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(frame["run"].astype(str), frame["tag"].astype(str), frame["step"], frame["value"]))


def timed_rows_of(frame: pd.DataFrame) -> list[tuple]:
    """(run, tag, step, wall time in Unix seconds, value) rows, as the TensorBoard oracle gives them."""
    return list(
        zip(
            frame["run"].astype(str),
            frame["tag"].astype(str),
            frame["step"],
            unix_seconds(frame["wall_time"]),  # the double written, back exactly
            frame["value"],
        )
    )


def same_rows(got: list[tuple], expected: list[tuple], *, signed_zero: bool = True) -> bool:
    """Equal row lists, NaN equal to NaN; bit-exact values, so -0.0 is told apart from 0.0 unless
    ``signed_zero=False``."""

    def key(row):
        *head, value = row
        value = np.float64(value)
        return (*head, (value if signed_zero else value + 0.0).tobytes())

    return [key(r) for r in got] == [key(r) for r in expected]


def by_run(records: list) -> list:
    """Writers list rows in the order written; runlens lists runs by name, each in written order."""
    return sorted(records, key=lambda r: r[0])  # sorted() is stable: order within a run is kept


@pytest.mark.parametrize("fixture", ["tf_logdir", "simple_value_logdir"])
def test_every_scalar_in_written_order_with_the_values_written(fixture, request):
    written = request.getfixturevalue(fixture)
    frame = runlens.read_scalars(written.path)
    # TensorFlow itself sometimes stores -0.0 as 0.0 (after other Keras work in the same process),
    # so against what was *asked* the sign of zero is not compared; the test below compares the
    # bytes actually stored, bit for bit, with tensorboard's own decoding.
    assert same_rows(rows_of(frame), by_run([tuple(s) for s in written.scalars]), signed_zero=False)
    assert frame.attrs["problems"] == []


@pytest.mark.parametrize("fixture", ["tf_logdir", "simple_value_logdir"])
def test_matches_tensorboards_own_decoding_including_wall_time(fixture, request):
    written = request.getfixturevalue(fixture)
    oracle = by_run(writers.tensorboard_scalars(written.path))
    frame = runlens.read_scalars(written.path)
    got = timed_rows_of(frame)
    assert len(got) == len(oracle)
    for mine, theirs in zip(got, oracle):
        assert mine[:4] == theirs[:4]
        assert np.float64(mine[4]).tobytes() == np.float64(theirs[4]).tobytes()


def test_columns_and_dtypes(tf_logdir):
    frame = runlens.read_scalars(tf_logdir.path)
    assert list(frame.columns) == ["run", "tag", "step", "wall_time", "value"]
    assert isinstance(frame["run"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["tag"].dtype, pd.CategoricalDtype)
    assert frame["step"].dtype == np.int64 and frame["wall_time"].dtype == "datetime64[ns, UTC]"
    assert frame["value"].dtype == np.float64
    assert all(isinstance(c, str) for c in frame["run"].cat.categories)
    assert frame["step"].max() == 2**62  # 64-bit steps survive


def test_keras_fit_values_equal_history_bit_for_bit(keras_run):
    frame = runlens.read_scalars(keras_run.path, tags="epoch_*")
    for split, prefix in (("train", ""), ("validation", "val_")):
        part = frame[frame["run"] == split]
        for tag, rows in part.groupby("tag", observed=True):
            key = prefix + str(tag).removeprefix("epoch_")
            if key not in keras_run.history:
                continue
            expected = np.float32(keras_run.history[key]).astype(np.float64)
            assert rows["step"].tolist() == keras_run.epochs
            np.testing.assert_array_equal(rows["value"].to_numpy(), expected)


def test_runs_and_tags_filter_by_name_and_glob(simple_value_logdir):
    path = simple_value_logdir.path
    only_raw = runlens.read_scalars(path, runs="raw")
    assert set(only_raw["run"].astype(str)) == {"raw"}
    globbed = runlens.read_scalars(path, runs=["tensorboardX*"])
    assert set(globbed["run"].astype(str)) == {"tensorboardX", "tensorboardX/hparams"}
    tags = runlens.read_scalars(path, tags=["loss/*", "metrics/accuracy"])
    names = set(tags["tag"].astype(str))
    assert names and all(n.startswith("loss/") or n == "metrics/accuracy" for n in names)
    assert set(tags["tag"].cat.categories) == names  # no empty categories left behind
    everything = runlens.read_scalars(path)
    expected = everything[
        everything["tag"].astype(str).map(lambda t: t.startswith("loss/") or t == "metrics/accuracy")
    ]
    assert same_rows(rows_of(tags), rows_of(expected))


def test_a_single_event_file_is_run_dot(tf_logdir):
    file = writers.event_files(tf_logdir.path / "tf2")[0]
    frame = runlens.read_scalars(file)
    assert set(frame["run"].astype(str)) == {"."}
    expected = [(".",) + tuple(s)[1:] for s in tf_logdir.scalars if s.run == "tf2"]
    assert same_rows(rows_of(frame), expected, signed_zero=False)


def test_parallel_read_is_identical_to_serial(tf_logdir, simple_value_logdir, tmp_path):
    for written in (tf_logdir, simple_value_logdir):
        serial = runlens.read_scalars(written.path, workers=1)
        parallel = runlens.read_scalars(written.path, workers=2)
        pd.testing.assert_frame_equal(serial, parallel)


def test_rank0_tensors_of_a_foreign_plugin_are_not_scalars_even_without_later_metadata(tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    other = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="custom")
    )
    writer = EventFileWriter(str(tmp_path))
    for step in range(3):
        tensor = tensor_pb2.TensorProto(dtype=1, float_val=[float(step)])
        custom = summary_pb2.Summary.Value(tag="custom", tensor=tensor, metadata=other if step == 0 else None)
        plain = summary_pb2.Summary.Value(tag="plain", tensor=tensor)  # no metadata at all: a scalar
        for value in (custom, plain):
            writer.add_event(
                event_pb2.Event(wall_time=1.0, step=step, summary=summary_pb2.Summary(value=[value]))
            )
    writer.close()
    frame = runlens.read_scalars(tmp_path)
    assert frame["tag"].astype(str).tolist() == ["plain"] * 3
    assert frame["value"].tolist() == [0.0, 1.0, 2.0]


def test_records_larger_than_a_read_block_and_many_blocks(tmp_path):
    """A 3 MB text summary between scalars (larger than one read block), and enough scalars to
    span many blocks: nothing lost at block edges."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path), max_queue_size=10**6)
    expected = []
    big = tensor_pb2.TensorProto(dtype=7, string_val=[b"x" * (3 << 20)])
    for step in range(40_000):
        if step % 10_000 == 5:
            value = summary_pb2.Summary.Value(tag="big", tensor=big)
        else:
            value = summary_pb2.Summary.Value(tag=f"s{step % 7}", simple_value=step * 0.5)
            expected.append((".", f"s{step % 7}", step, float(np.float32(step * 0.5))))
        writer.add_event(
            event_pb2.Event(wall_time=float(step), step=step, summary=summary_pb2.Summary(value=[value]))
        )
    writer.close()
    frame = runlens.read_scalars(tmp_path)
    assert same_rows(rows_of(frame), expected)


def test_files_of_a_run_are_read_in_the_order_written(tmp_path):
    """Two files in one run: the one whose name says it was created first comes first, even when
    its name sorts later as text."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from runlens.events.tfrecord import frame_record

    def file(name: str, steps: range) -> None:
        records = [
            frame_record(
                event_pb2.Event(
                    wall_time=1.0,
                    step=s,
                    summary=summary_pb2.Summary(
                        value=[summary_pb2.Summary.Value(tag="x", simple_value=float(s))]
                    ),
                ).SerializeToString()
            )
            for s in steps
        ]
        (tmp_path / name).write_bytes(b"".join(records))

    file("events.out.tfevents.900.host", range(0, 3))
    file("events.out.tfevents.1000.host", range(3, 6))
    assert runlens.read_scalars(tmp_path)["step"].tolist() == list(range(6))


def test_symlinked_run_folders_are_followed_once(tf_logdir, tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    (root / "linked").symlink_to(tf_logdir.path / "tf2", target_is_directory=True)
    (root / "cycle").symlink_to(root, target_is_directory=True)
    frame = runlens.read_scalars(root)
    assert set(frame["run"].astype(str)) == {"linked"}
    assert len(frame) == sum(1 for s in tf_logdir.scalars if s.run == "tf2")


def test_missing_path_and_empty_logdir_are_clear_errors(tmp_path):
    with pytest.raises(RunlensError, match="no such file or folder"):
        runlens.read_scalars(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunlensError, match="no event files"):
        runlens.read_scalars(tmp_path / "empty")


def test_a_runs_filter_that_matches_nothing_says_so(tf_logdir):
    with pytest.raises(RunlensError, match="no run matches"):
        runlens.read_scalars(tf_logdir.path, runs="nothing*")


def test_read_scalars_agrees_with_tbparse_on_values(tf_logdir):
    """The tool people use today, as a second independent decoding (tbparse's tensors frame)."""
    from tbparse import SummaryReader

    def key(tag, step, value):
        return (str(tag), int(step), np.float64(value).tobytes())

    theirs = SummaryReader(str(tf_logdir.path / "tf2")).tensors
    mine = runlens.read_scalars(tf_logdir.path / "tf2")
    assert len(mine) == len(theirs) > 0
    assert sorted(map(key, theirs["tag"], theirs["step"], theirs["value"])) == sorted(
        map(key, mine["tag"], mine["step"], mine["value"])
    )


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda path, cache: runlens.read_scalars(path, workers=1), id="serial"),
        pytest.param(lambda path, cache: runlens.read_scalars(path, workers=2), id="parallel"),
        pytest.param(lambda path, cache: runlens.read_scalars(path, cache=cache), id="cached"),
    ],
)
def test_small_big_and_cut_files_read_together_match_tensorboard(tmp_path, read):
    """Small files are framed together, bigger ones block by block, a cut one record by record:
    one read mixing all three in each run gives exactly what tensorboard's own loader gives."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir = tmp_path / "logs"
    for run in range(3):
        for number, (events, cut) in enumerate([(40, False), (6_000, False), (30, True), (25, False)]):
            scratch = tmp_path / "scratch" / f"{run}-{number}"
            writer = EventFileWriter(str(scratch), max_queue_size=10**6)
            for step in range(events):
                value = summary_pb2.Summary.Value(tag=f"file{number}", simple_value=step / 7 + run)
                writer.add_event(
                    event_pb2.Event(
                        wall_time=1e9 + step, step=step, summary=summary_pb2.Summary(value=[value])
                    )
                )
            writer.close()
            (written,) = writers.event_files(scratch)
            if cut:
                writers.truncate(written, written.stat().st_size - 5)
            (logdir / f"run{run}").mkdir(parents=True, exist_ok=True)
            written.rename(logdir / f"run{run}" / f"events.out.tfevents.{1000000000 + number}.host")
    assert (logdir / "run0" / "events.out.tfevents.1000000001.host").stat().st_size > (1 << 18)  # a "big" one

    with pytest.warns(runlens.DamagedDataWarning):
        frame = read(logdir, tmp_path / "cache")
    oracle = writers.tensorboard_scalars(logdir)
    got = timed_rows_of(frame)
    assert [row[:4] for row in got] == [row[:4] for row in oracle]
    assert [np.float64(row[4]).tobytes() for row in got] == [np.float64(row[4]).tobytes() for row in oracle]
    assert [p["kind"] for p in frame.attrs["problems"]] == ["truncated"] * 3
