"""Damaged event files, made by damaging files that real writers wrote: every intact record is
kept, each damaged file gives one warning, and the problems are listed in df.attrs."""

from __future__ import annotations

import os
import warnings

import pytest
import writers

import runlens
from runlens.errors import DamagedDataWarning


def read_with_warnings(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = runlens.read_scalars(path)
    damage = [w for w in caught if issubclass(w.category, DamagedDataWarning)]
    return frame, damage


def values_of(frame, run="raw"):
    part = frame[frame["run"] == run]
    return list(zip(part["tag"].astype(str), part["step"], part["value"].map(repr)))


@pytest.fixture
def raw_copy(simple_value_logdir, copy_logdir):
    """A private copy of the raw-protos run (many events, several scalars per event) and the rows
    an intact read gives, event by event."""
    path = copy_logdir(simple_value_logdir.path)
    file = writers.event_files(path / "raw")[0]
    intact = values_of(runlens.read_scalars(path))
    return path, file, intact


def rows_per_record(file):
    """The scalar rows each record of an intact file yields (decoded alone, through runlens)."""
    from runlens.events.tfrecord import frame_record

    data = file.read_bytes()
    out = []
    for span in writers.record_spans(file):
        single = file.parent / "single.tfevents.tmp"
        single.write_bytes(frame_record(data[span.payload : span.end - 4]))
        frame = runlens.read_scalars(single)
        out.append(list(zip(frame["tag"].astype(str), frame["step"], frame["value"].map(repr))))
        single.unlink()
    return out


def test_truncated_last_record_keeps_every_complete_record(raw_copy):
    path, file, _intact = raw_copy
    spans = writers.record_spans(file)
    per_record = rows_per_record(file)
    writers.truncate(file, spans[-2].payload + 3)  # cut inside the second-to-last record
    frame, damage = read_with_warnings(path)
    assert values_of(frame) == [row for rows in per_record[:-2] for row in rows]
    assert len(damage) == 1 and str(file) in str(damage[0].message)
    assert [p["kind"] for p in frame.attrs["problems"]] == ["truncated"]
    assert frame.attrs["problems"][0]["offset"] == spans[-2].start


def test_bad_payload_crc_skips_that_record_and_reads_on(raw_copy):
    path, file, _intact = raw_copy
    spans = writers.record_spans(file)
    per_record = rows_per_record(file)
    victim = next(i for i, rows in enumerate(per_record) if rows and i > 3)
    writers.flip_bit(file, spans[victim].payload + 5, bit=3)
    frame, damage = read_with_warnings(path)
    expected = [row for i, rows in enumerate(per_record) if i != victim for row in rows]
    assert values_of(frame) == expected
    assert len(damage) == 1
    assert frame.attrs["problems"][0]["kind"] == "bad-payload-crc"
    assert frame.attrs["problems"][0]["offset"] == spans[victim].start


def test_a_flipped_payload_crc_itself_also_skips_only_that_record(raw_copy):
    path, file, _ = raw_copy
    spans = writers.record_spans(file)
    per_record = rows_per_record(file)
    victim = len(spans) // 2
    writers.flip_bit(file, spans[victim].payload_crc, bit=0)
    frame, _ = read_with_warnings(path)
    assert values_of(frame) == [row for i, rows in enumerate(per_record) if i != victim for row in rows]


def test_bad_length_crc_stops_the_file_there_and_keeps_what_came_before(raw_copy):
    path, file, _ = raw_copy
    spans = writers.record_spans(file)
    per_record = rows_per_record(file)
    victim = len(spans) // 2
    writers.flip_bit(file, spans[victim].start + 1, bit=6)  # the length itself is damaged
    frame, damage = read_with_warnings(path)
    assert values_of(frame) == [row for rows in per_record[:victim] for row in rows]
    assert len(damage) == 1
    assert frame.attrs["problems"][0]["kind"] == "bad-length-crc"
    assert frame.attrs["problems"][0]["offset"] == spans[victim].start


def test_empty_garbage_and_unreadable_files_are_skipped_with_a_warning_each(raw_copy):
    path, _file, intact = raw_copy
    empty = writers.write_empty(path / "raw", "events.out.tfevents.1.empty")
    garbage = writers.write_garbage(path / "raw", "events.out.tfevents.2.garbage", size=5000)
    tiny = writers.write_garbage(path / "raw", "events.out.tfevents.3.tiny", size=5, seed=1)
    broken = path / "raw" / "events.out.tfevents.4.broken-link"
    os.symlink(path / "does-not-exist", broken)  # unreadable even for root
    frame, damage = read_with_warnings(path)
    assert values_of(frame) == intact
    kinds = {p["path"]: p["kind"] for p in frame.attrs["problems"]}
    assert kinds == {
        str(empty): "empty",
        str(garbage): "bad-length-crc",
        str(tiny): "truncated",
        str(broken): "unreadable",
    }
    assert len(damage) == 4
    for problem in frame.attrs["problems"]:
        assert problem["path"] in problem["message"]


def test_a_keras_file_cut_mid_write_keeps_every_finished_epoch(keras_run, copy_logdir):
    path = copy_logdir(keras_run.path)
    file = writers.event_files(path / "train")[0]
    writers.truncate(file, -7)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        epochs = runlens.read_epochs(path)
    complete = epochs["loss"].notna().sum()
    assert complete >= len(keras_run.epochs) - 1
    assert epochs.attrs["problems"][0]["kind"] == "truncated"


def test_a_crc_valid_record_protobuf_refuses_is_reported_not_silently_dropped(tmp_path):
    """A tag that is not UTF-8: protobuf refuses the Event, so it is skipped, and said so."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from runlens.events.tfrecord import frame_record

    good = event_pb2.Event(
        wall_time=1.0,
        step=1,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=0.5)]),
    ).SerializeToString()
    bad = good.replace(b"loss", b"l\x80ss")
    (tmp_path / "events.out.tfevents.1.host").write_bytes(
        frame_record(good) + frame_record(bad) + frame_record(good)
    )
    frame, damage = read_with_warnings(tmp_path)
    assert frame["tag"].astype(str).tolist() == ["loss", "loss"]
    assert [p["kind"] for p in frame.attrs["problems"]] == ["undecodable"]
    assert len(damage) == 1


def test_bad_payload_crcs_in_different_blocks_of_a_big_file_are_one_warning_counting_them_all(tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path), max_queue_size=10**6)
    for step in range(40_000):  # ~2 MB: several 512 KiB read blocks
        value = summary_pb2.Summary.Value(tag="loss", simple_value=float(step))
        writer.add_event(
            event_pb2.Event(wall_time=1.0, step=step, summary=summary_pb2.Summary(value=[value]))
        )
    writer.close()
    (file,) = writers.event_files(tmp_path)
    spans = writers.record_spans(file)
    victims = [1_000, 15_000, 30_000]  # records 1..40000 hold steps 0..39999 (record 0: file_version)
    assert spans[victims[-1]].start - spans[victims[0]].start > 2 * (1 << 19)
    for victim in victims:
        writers.flip_bit(file, spans[victim].payload + 3)
    frame, damage = read_with_warnings(tmp_path)
    assert frame["step"].tolist() == [s for s in range(40_000) if s + 1 not in victims]
    assert len(damage) == 1 and "3 record(s)" in str(damage[0].message)
    assert [(p["kind"], p["offset"]) for p in frame.attrs["problems"]] == [
        ("bad-payload-crc", spans[victims[0]].start)
    ]


HUGE_LENGTHS = [2**40, 2**63, 2**64 - 1]


@pytest.fixture
def big_file_logdir(tmp_path):
    """A ~1.5 MB file written by tensorboard's own writer: 30 ``epoch_loss`` records (a run
    ``runlens report`` can replay), then 40,000 ``batch_loss`` records; its record spans."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run = tmp_path / "logs" / "run"
    writer = EventFileWriter(str(run), max_queue_size=10**6)
    for tag, steps in (("epoch_loss", range(30)), ("batch_loss", range(40_000))):
        for step in steps:
            value = summary_pb2.Summary.Value(tag=tag, simple_value=1.0 / (step + 1))
            writer.add_event(
                event_pb2.Event(wall_time=1.0 + step, step=step, summary=summary_pb2.Summary(value=[value]))
            )
    writer.close()
    (file,) = writers.event_files(run)
    return tmp_path / "logs", file, writers.record_spans(file)


@pytest.mark.parametrize("length", [*HUGE_LENGTHS, "past-the-end"])
def test_a_huge_length_with_a_valid_crc_is_a_truncated_tail_whatever_its_size(big_file_logdir, length):
    # records.read_blocks read `need` bytes at once for a record larger than a block: a length of
    # 2**40 or more with a valid CRC (and > 512 KiB after it) raised MemoryError / OverflowError.
    path, file, spans = big_file_logdir
    victim = spans[31]  # the first batch_loss record: 0 is file_version, 1..30 the epochs
    size = file.stat().st_size
    writers.set_length(file, victim.start, size if length == "past-the-end" else length)
    frame, damage = read_with_warnings(path)
    assert frame["tag"].astype(str).unique().tolist() == ["epoch_loss"]
    assert frame["step"].tolist() == list(range(30))
    assert [(p["kind"], p["offset"]) for p in frame.attrs["problems"]] == [("truncated", victim.start)]
    assert len(damage) == 1 and f"{size - victim.start} bytes" in str(damage[0].message)


@pytest.mark.parametrize("command", [["ls"], ["report", "--no-checkpoints"]])
def test_ls_and_report_read_around_a_huge_length(big_file_logdir, command):
    from click.testing import CliRunner

    from runlens.cli import main

    path, file, spans = big_file_logdir
    writers.set_length(file, spans[31].start, 2**64 - 1)
    result = CliRunner().invoke(main, [*command, str(path)])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "incomplete last record" in result.stderr + result.stdout


@pytest.mark.parametrize("appended", ["big", "small"])  # > and < files.WHOLE_FILE_BYTES appended
def test_a_growing_file_read_on_where_it_stopped_reads_around_a_huge_length(big_file_logdir, appended):
    from runlens.events.files import read_event_file

    _, file, spans = big_file_logdir
    whole = file.read_bytes()
    writers.truncate(file, spans[31].start)  # the writer has written the epochs so far
    first = read_event_file(str(file), checksum=True)
    assert first.rows == 30 and first.problems == []
    end = len(whole) if appended == "big" else spans[31].start + 100_000
    file.write_bytes(whole[:end])  # it wrote on, and the next record's length is damaged
    writers.set_length(file, spans[31].start, 2**40)
    more = read_event_file(first.state.resumable())
    assert more.rows == 0
    assert [(p.kind, p.offset) for p in more.problems] == [("truncated", spans[31].start)]
    assert more.state.offset == spans[31].start  # the damaged record is read again next time
