"""Fuzzing the record reader: truncated, bit-flipped, overwritten and random files never raise,
and never yield a row the file does not hold."""

from __future__ import annotations

import io
import struct
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

from runlens.events import records, tfrecord, whole_files
from runlens.events.decode import decode_block
from runlens.events.files import read_event_file
from runlens.events.records import ReadState, read_blocks
from runlens.events.rows import Rows, TagTable
from runlens.events.tfrecord import frame_record

TAGS = ["loss", "val/acc", "x" * 130, "ü"]  # a long tag (2-byte length varint) and a non-ASCII one

scalar_events = st.lists(
    st.tuples(
        st.sampled_from(TAGS),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(width=32, allow_nan=False),
        st.sampled_from(["simple", "content", "float_val", "double_val", "double_content", "two_values"]),
    ),
    min_size=1,
    max_size=40,
)


def encode(tag: str, step: int, value: float, how: str) -> tuple[bytes, list[tuple]]:
    """One Event in one of the encodings real writers use, and the rows it holds."""

    def tensor_value(tag_: str) -> summary_pb2.Summary.Value:
        if how in ("content", "two_values"):
            tensor = tensor_pb2.TensorProto(dtype=1, tensor_content=np.float32(value).tobytes())
        elif how == "float_val":
            tensor = tensor_pb2.TensorProto(dtype=1, float_val=[value])
        elif how == "double_val":
            tensor = tensor_pb2.TensorProto(dtype=2, double_val=[value])
        else:
            tensor = tensor_pb2.TensorProto(dtype=2, tensor_content=np.float64(value).tobytes())
        tensor.tensor_shape.SetInParent()
        return summary_pb2.Summary.Value(tag=tag_, tensor=tensor)

    if how == "simple":
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=value)]
    elif how == "two_values":
        values = [tensor_value(tag), summary_pb2.Summary.Value(tag=tag + "/2", simple_value=value)]
    else:
        values = [tensor_value(tag)]
    event = event_pb2.Event(wall_time=1.5, step=step, summary=summary_pb2.Summary(value=values))
    rows = [(v.tag, step, np.float64(np.float32(value)).tobytes()) for v in values]
    return event.SerializeToString(), rows


def build(events) -> tuple[bytes, list[int], list[list[tuple]]]:
    """A valid event file: its bytes, the end offset of each record, the rows of each record."""
    header = event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString()
    blob, ends, rows = frame_record(header), [], [[]]
    ends.append(len(blob))
    for event in events:
        payload, held = encode(*event)
        blob += frame_record(payload)
        ends.append(len(blob))
        rows.append(held)
    return blob, ends, rows


def decode(blob: bytes, block_size: int) -> tuple[list[tuple], list]:
    tags, parts, state = TagTable(), [], ReadState("fuzz")
    for block in read_blocks(io.BytesIO(blob), state, block_size=block_size):
        parts.append(decode_block(block, tags).rows)
    problems = state.problems
    rows = Rows.concat(parts)
    got = [
        (tags.names[t], int(s), np.float64(v).tobytes())
        for t, s, v in zip(rows.tag.tolist(), rows.step.tolist(), rows.value.tolist())
    ]
    return got, problems


block_sizes = st.sampled_from([16, 64, 333, 4096, 1 << 19])
fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(scalar_events, block_sizes)
def test_intact_files_read_exactly_whatever_the_block_size(events, block_size):
    blob, _, rows = build(events)
    got, problems = decode(blob, block_size)
    assert got == [row for held in rows for row in held]
    assert problems == []


@fuzz
@given(scalar_events, st.data(), block_sizes)
def test_truncation_keeps_exactly_the_complete_records(events, data, block_size):
    blob, ends, rows = build(events)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    got, problems = decode(blob[:cut], block_size)
    complete = sum(1 for end in ends if end <= cut)
    assert got == [row for held in rows[:complete] for row in held]
    if cut not in ends and cut > 0:
        assert [p.kind for p in problems] == ["truncated"]


@fuzz
@given(scalar_events, st.data(), block_sizes)
def test_bit_flips_and_overwrites_never_invent_rows(events, data, block_size):
    blob, _, rows = build(events)
    damaged = bytearray(blob)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(damaged) - 1))
        if data.draw(st.booleans()):
            damaged[at] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        else:
            junk = data.draw(st.binary(min_size=1, max_size=24))
            damaged[at : at + len(junk)] = junk
    got, problems = decode(bytes(damaged), block_size)
    held = Counter(row for record in rows for row in record)
    assert not Counter(got) - held  # every row returned is a row the file holds
    if bytes(damaged) != blob:
        assert problems or Counter(got) == held


@fuzz
@given(st.binary(max_size=3000), block_sizes)
def test_random_bytes_yield_no_rows_and_no_exception(blob, block_size):
    got, problems = decode(blob, block_size)
    assert got == []
    assert blob == b"" or problems


def length_field(length: int) -> bytes:
    """A record's length field with a valid length CRC: only the length itself is wrong."""
    field = struct.pack("<Q", length)
    return field + struct.pack("<I", tfrecord.masked_crc(field))


#: lengths past the end of any file, of every size (2**40 and up made records.read_blocks ask the
#: stream for that many bytes at once: MemoryError / OverflowError)
huge_lengths = st.one_of(
    st.sampled_from([2**32, 2**40, 2**62, 2**63, 2**64 - 1]),
    st.integers(min_value=2**31, max_value=2**64 - 1),
)


@settings(max_examples=50, deadline=None)
@given(
    st.binary(max_size=2000),
    st.sampled_from([b"", struct.pack("<Q", 2**63), length_field(2**40), length_field(2**64 - 1)]),
)
def test_read_event_file_never_raises(tmp_path_factory, blob, prefix):
    path = tmp_path_factory.mktemp("fuzz") / "events.out.tfevents.1.fuzz"
    path.write_bytes(prefix + blob)
    result = read_event_file(str(path))
    assert result.rows == 0
    assert result.problems or not (prefix + blob)


#: a record repeated after the damage so that files reach the streamed path (> files.WHOLE_FILE_BYTES)
_FILLER = frame_record(encode("loss", 1, 0.5, "simple")[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scalar_events, st.data(), huge_lengths, st.sampled_from([0, 1_000, 40_000]), block_sizes)
def test_a_huge_length_ends_the_file_there_as_a_truncated_tail(
    tmp_path_factory, events, data, length, fillers, block_size
):
    """A valid-CRC length past the end of the file, at any record, whatever the file size and
    however it is read (in blocks of any size, or a real file: whole, or streamed when big)."""
    blob, ends, rows = build(events)
    at = data.draw(st.sampled_from([0, *ends[:-1]]))
    kept = ends.index(at) + 1 if at else 0  # records wholly before the damage
    damaged = blob[:at] + length_field(length) + blob[at + 12 :] + _FILLER * fillers
    expected = [row for held in rows[:kept] for row in held]
    got, problems = decode(damaged, block_size)
    assert got == expected
    assert [(p.kind, p.offset) for p in problems] == [("truncated", at)]
    path = tmp_path_factory.mktemp("huge") / "events.out.tfevents.1.fuzz"
    path.write_bytes(damaged)
    result = read_event_file(str(path))
    assert result.rows == len(expected)
    assert [(p.kind, p.offset) for p in result.problems] == [("truncated", at)]
    assert result.state.offset == at and not result.state.stopped


def mutated_payloads():
    """Valid scalar events with a few bytes changed and framed again with valid CRCs: records that
    pass every CRC but hold anything, the decoder's hardest input."""
    return st.tuples(
        scalar_events, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4)
    )


@fuzz
@given(mutated_payloads(), st.lists(st.binary(max_size=80), max_size=5))
@example(mutation=([("ü", 128, 0.0, "double_content")], [(135, 135)]), junk=[])  # content of a wrong size
@example(mutation=([("loss", 16384, 0.0, "simple")], [(187, 128)]), junk=[])  # a tag that is not UTF-8
# a tensor_shape holding only an unknown field (the double_val's bytes): rank 0, protobuf reads 0.0
@example(mutation=([("x" * 130, 128, 0.0, "double_val")], [(657, 10)]), junk=[])
def test_fast_path_decodes_exactly_what_protobuf_decodes(mutation, junk):
    """Differential test: the vectorised decoder and protobuf agree on every framed payload."""
    from runlens.events.decode_protobuf import decode_with_protobuf

    events, edits = mutation
    payloads = []
    for event in events:
        payload = bytearray(encode(*event)[0])
        for where, byte in edits:
            payload[where % len(payload)] = byte
        payloads.append(bytes(payload))
    payloads += junk
    blob = b"".join(frame_record(p) for p in payloads)
    state = ReadState("differential")
    blocks = list(read_blocks(io.BytesIO(blob), state))
    assert state.problems == [] or not payloads
    for block in blocks:
        fast_tags, slow_tags = TagTable(), TagTable()
        fast = decode_block(block, fast_tags)
        slow, records, _, refused = decode_with_protobuf(block, np.arange(len(block)), slow_tags)
        assert set(fast.refused.tolist()) <= set(refused.tolist())
        assert fast.record.tolist() == records.tolist()
        assert [fast_tags.names[t] for t in fast.rows.tag] == [slow_tags.names[t] for t in slow.tag]
        assert fast.rows.step.tolist() == slow.step.tolist()
        assert fast.rows.value.view(np.int64).tolist() == slow.value.view(np.int64).tolist()
        assert fast.rows.wall_time.view(np.int64).tolist() == slow.wall_time.view(np.int64).tolist()


def framed(frame, buffer: bytes) -> tuple:
    state = ReadState("fuzz")
    block, consumed, need = frame(buffer, state)
    return (
        block.starts.tolist(),
        block.lengths.tolist(),
        block.ordinals.tolist(),
        consumed,
        need,
        state.problems,
        state.stopped,
    )


@fuzz
@given(scalar_events, st.data())
def test_the_whole_buffer_crc_check_frames_exactly_as_record_by_record(events, data):
    # records._frame checks every CRC of a buffer with two passes (tfrecord.all_crcs_hold);
    # _frame_damaged checks record by record. Intact, cut or damaged, both must agree exactly.
    blob, _, _ = build(events)
    damaged = bytearray(blob[: data.draw(st.integers(min_value=0, max_value=len(blob)))])
    for _ in range(data.draw(st.integers(min_value=0, max_value=3)) if damaged else 0):
        damaged[data.draw(st.integers(min_value=0, max_value=len(damaged) - 1))] ^= 1 << data.draw(
            st.integers(0, 7)
        )

    def record_by_record(buffer, state):
        return records._frame_damaged(buffer, state, *records.follow_lengths(buffer))

    assert framed(records._frame, bytes(damaged)) == framed(record_by_record, bytes(damaged))


@fuzz
@given(scalar_events, st.data())
def test_one_flipped_bit_anywhere_always_fails_the_whole_buffer_check(events, data):
    blob, _, _ = build(events)
    damaged = bytearray(blob)
    at = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    damaged[at] ^= 1 << data.draw(st.integers(0, 7))
    heads, end, _ = records.follow_lengths(bytes(damaged))
    if at < end:  # (a flip after ``end`` made a length point past the buffer: _frame checks that one alone)
        assert not tfrecord.all_crcs_hold(bytes(damaged), heads, records.payload_lengths(heads, end))


@fuzz
@given(
    st.lists(st.tuples(scalar_events, st.integers(min_value=0, max_value=3)), min_size=1, max_size=4),
    st.data(),
)
def test_files_framed_together_give_what_each_file_gives_alone(files, data):
    # whole_files.frame_whole_files frames small files as one stream; whatever it accepts must be
    # exactly what read_blocks gives file by file, and what it refuses must leave the states as
    # they were (those files are then read one by one).
    contents = []
    for events, damage in files:
        blob, _, _ = build(events)
        if damage == 1:  # cut
            blob = blob[: data.draw(st.integers(min_value=1, max_value=len(blob)))]
        elif damage == 2:  # a flipped bit
            flipped = bytearray(blob)
            flipped[data.draw(st.integers(min_value=0, max_value=len(blob) - 1))] ^= 1 << data.draw(
                st.integers(0, 7)
            )
            blob = bytes(flipped)
        elif damage == 3:  # a valid-CRC length past the end, at some record
            _, ends, _ = build(events)
            at = data.draw(st.sampled_from([0, *ends[:-1]]))
            blob = blob[:at] + length_field(data.draw(huge_lengths)) + blob[at + 12 :]
        contents.append(blob)
    together = [ReadState(f"f{i}", ordinal=i, track_checksum=True) for i in range(len(contents))]
    block = whole_files.frame_whole_files(contents, together)
    alone = [ReadState(f"f{i}", ordinal=i, track_checksum=True) for i in range(len(contents))]
    expected = []
    for i, (content, state) in enumerate(zip(contents, alone)):
        for part in read_blocks(io.BytesIO(content), state):
            expected += [(i, int(o), bytes(part.payload(k))) for k, o in enumerate(part.ordinals)]
    if block is None:
        assert together == [ReadState(f"f{i}", ordinal=i, track_checksum=True) for i in range(len(contents))]
        assert any(state.problems for state in alone) or any(not content for content in contents)
    else:
        got = [
            (int(s), int(o), bytes(block.payload(k)))
            for k, (s, o) in enumerate(zip(block.sources, block.ordinals))
        ]
        assert got == expected
        assert together == alone


def test_files_of_one_size_but_other_record_layouts_are_framed_each_as_it_is():
    # frame_whole_files guesses that a file as long as an earlier one has its records at the same
    # places; here that guess is wrong (same size, records in another order) and must not stick.
    first = frame_record(b"a" * 10) + frame_record(b"b" * 30)
    second = frame_record(b"c" * 30) + frame_record(b"d" * 10)
    third = frame_record(b"e" * 10) + frame_record(b"f" * 30)
    assert len(first) == len(second) == len(third)
    states = [ReadState(name) for name in "xyz"]
    block = whole_files.frame_whole_files([first, second, third], states)
    assert [bytes(block.payload(i)) for i in range(len(block))] == [
        b"a" * 10,
        b"b" * 30,
        b"c" * 30,
        b"d" * 10,
        b"e" * 10,
        b"f" * 30,
    ]
    assert block.sources.tolist() == [0, 0, 1, 1, 2, 2]
    assert [s.offset for s in states] == [len(first)] * 3 and [s.ordinal for s in states] == [2, 2, 2]


def test_a_huge_length_where_a_same_sized_file_had_a_record_is_not_taken_for_that_record():
    # frame_whole_files guesses that a file as long as an earlier one has its records at the same
    # places and checks each guessed length at once; a length of 2**64 - 1 there must fail the
    # check (not wrap around), and each file then frames on its own.
    first = frame_record(b"a" * 10) + frame_record(b"b" * 30)
    second = bytearray(frame_record(b"c" * 10) + frame_record(b"d" * 30))
    second[26:38] = length_field(2**64 - 1)  # the second record's length
    states = [ReadState("x"), ReadState("y")]
    assert whole_files.frame_whole_files([first, bytes(second)], states) is None
    assert states == [ReadState("x"), ReadState("y")]
    got, problems = decode(bytes(second), 1 << 19)
    assert got == []  # (the payloads are not events)
    assert [(p.kind, p.offset) for p in problems] == [("truncated", 26)]
