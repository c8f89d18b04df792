"""Event payloads -> scalar rows, without building a protobuf object for the common shapes.

A scalar event as every common writer serialises it (fields in number order) is::

    Event   09 <wall_time f64> [10 <step varint>] 2a <len> Summary
    Summary 0a <len> Value                                   (exactly one value)
    Value   0a <len> <tag> then one of
              15 <f32>                                       simple_value (tensorboardX, TF1, PyTorch)
              42 <len> 08 <dtype> [12 00] 22|2a|32 <len> <v>  rank-0 DT_FLOAT/DT_DOUBLE tensor in
                                                             tensor_content, float_val or double_val

:func:`decode_block` recognises these shapes for a whole block of records at once with numpy, skips
the plainly non-scalar ones just as cheaply (graphs, file versions, images, histograms, audio,
tensors of higher rank or of strings), and hands every other record -- a tag's first value carrying
plugin metadata, events with several values, other dtypes, unusual field orders -- to protobuf
(:mod:`runlens.events.decode_protobuf`), so no valid record is ever dropped for being unusual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runlens.events.decode_protobuf import decode_with_protobuf
from runlens.events.records import Block
from runlens.events.rows import Rows, TagTable
from runlens.events.tfrecord import unaligned

_DT_STRING = 7  # TensorFlow's DataType of strings (text summaries): never a scalar

# First byte of an Event field that puts the event outside `summary` (oneof `what`): file_version,
# graph_def, log_message, session_log, tagged_run_metadata, meta_graph_def.
_NON_SUMMARY_EVENT = np.array([0x1A, 0x22, 0x32, 0x3A, 0x42, 0x4A], dtype=np.uint8)
# Value.metadata = SummaryMetadata(plugin_data=PluginData(plugin_name="scalars")), serialised.
_SCALARS_METADATA = b"\x4a\x0b\x0a\x09\x0a\x07scalars"
# First byte of a Summary.Value field that is never a scalar: image, histo, audio.
_NON_SCALAR_VALUE = np.array([0x22, 0x2A, 0x32], dtype=np.uint8)


@dataclass
class Decoded:
    """A block's scalar rows in the order written, with the block position of each row's record,
    and ``plugin_marks``: for each (source file, tag) the first record naming a plugin, as
    ``(source, record, tag code, plugin_name)``."""

    rows: Rows
    record: np.ndarray
    plugin_marks: list[tuple[int, int, int, str]]
    refused: np.ndarray  # block positions of CRC-valid records protobuf cannot parse as an Event


def decode_block(block: Block, tags: TagTable) -> Decoded:
    """Every scalar row in ``block`` (see the module docstring)."""
    if not len(block):
        return Decoded(Rows.empty(), np.zeros(0, np.int64), [], np.zeros(0, np.int64))
    fast = _FastShapes(block.buffer, block.starts, block.starts + block.lengths)
    slow_idx = np.flatnonzero(~(fast.scalar | fast.skip))
    fast_idx = np.flatnonzero(fast.scalar)
    fast_codes = _tag_codes(block.buffer, fast.tag_start[fast_idx], fast.tag_len[fast_idx], tags)
    if (fast_codes < 0).any():  # not UTF-8: let protobuf have its say (it refuses the record)
        bad = fast_codes < 0
        slow_idx = np.union1d(slow_idx, fast_idx[bad])
        fast_idx, fast_codes = fast_idx[~bad], fast_codes[~bad]
    # The fast path only ever sees the scalars plugin's metadata: mark its first record per tag.
    marked = fast.scalars_metadata[fast_idx]
    sources = block.sources[fast_idx[marked]].astype(np.int64)
    codes = fast_codes[marked]
    _, first = np.unique(sources * (len(tags.names) + 1) + codes, return_index=True)
    records = fast_idx[marked]
    marks = list(
        zip(sources[first].tolist(), records[first].tolist(), codes[first].tolist(), ["scalars"] * len(first))
    )

    rows = Rows(
        fast_codes, fast.step[fast_idx], fast.wall_time[fast_idx], fast.value[fast_idx], fast.tensor[fast_idx]
    )
    if not len(slow_idx):
        return Decoded(rows, fast_idx, marks, np.zeros(0, np.int64))
    slow_rows, slow_records, slow_marks, refused = decode_with_protobuf(block, slow_idx, tags)
    merged = Rows.concat([rows, slow_rows])
    record = np.concatenate([fast_idx, slow_records])
    order = np.argsort(record, kind="stable")
    return Decoded(merged.take(order), record[order], marks + slow_marks, refused)


_PAD = bytes(16)  # read past a record's end stays inside the buffer
_HIGH_BITS = np.uint64(0x8080808080808080)


class _FastShapes:
    """Vectorised recognition of the common record shapes (all arrays are per record).

    Multi-byte fields are read through unaligned views of the buffer in which element ``i`` is the
    value whose bytes start at offset ``i`` (``strides=(1,)``), so reading one field of every
    record is a single 1-D gather.
    """

    def __init__(self, buffer: bytes, start: np.ndarray, end: np.ndarray) -> None:
        padded = buffer + _PAD
        self._u8 = np.frombuffer(padded, dtype=np.uint8)
        self._u64 = unaligned(padded, "<u8")
        # Positions computed from a damaged or unusual record can point anywhere: clip them (such
        # records fail the shape checks whatever is read there).
        self._last = len(buffer)
        at = self._byte
        n = len(start)
        ok = (end - start >= 11) & (at(start) == 0x09)
        self.wall_time = unaligned(padded, "<f8")[start + 1]
        p = start + 9
        has_step = at(p) == 0x10
        step, width, step_ok = self._varint(p + 1)
        self.step = np.where(has_step, step.view(np.int64), 0)
        ok &= ~has_step | step_ok
        p = np.where(has_step, p + 1 + width, p)

        self.skip = ok & np.isin(at(p), _NON_SUMMARY_EVENT)
        ok &= at(p) == 0x2A  # Event.summary
        p, ok = self._nested(p, end, ok)
        ok &= at(p) == 0x0A  # Summary.value, and it is the only one
        p, ok = self._nested(p, end, ok)
        ok &= at(p) == 0x0A  # Value.tag
        tag_len, width, tag_ok = self._varint(p + 1)
        self.tag_start = p + 1 + width
        self.tag_len = tag_len.astype(np.int64)
        ok &= tag_ok & (self.tag_len < 1 << 16) & (self.tag_start + self.tag_len < end)
        p = np.where(ok, self.tag_start + self.tag_len, p)
        tail = end - p
        head = at(p)

        self.skip |= ok & np.isin(head, _NON_SCALAR_VALUE)
        simple = ok & (head == 0x15) & (tail == 5)

        # Value.tensor: 42 <len> 08 <dtype> [12 00] <values field>, then nothing or the scalars
        # plugin's metadata (TF2's tf.summary.scalar repeats it on every value).
        tensor_end = p + 2 + at(p + 1).astype(np.int64)
        rest = end - tensor_end
        self.scalars_metadata = (rest == 13) & self._is_scalars_metadata(tensor_end)
        tensor = ok & (head == 0x42) & (at(p + 1) < 0x80) & ((rest == 0) | self.scalars_metadata)
        q = np.where(tensor, p + 2, 0)
        tensor &= at(q) == 0x08
        dtype = at(q + 1)
        q = q + 2
        has_shape = at(q) == 0x12
        shape_len = at(q + 1).astype(np.int64)
        # rank > 0: the shape holds a `dim` (its first field, 0x12); text. A shape holding anything
        # else (unknown fields: still rank 0) is left to protobuf, which reads such a tensor as 0.0.
        ranked = has_shape & (shape_len > 0) & (shape_len < 0x80) & (at(q + 2) == 0x12)
        self.skip |= tensor & (ranked | (dtype == _DT_STRING))
        tensor &= ~has_shape | (shape_len == 0)
        q = np.where(has_shape, q + 2, q)
        kind, size = at(q), at(q + 1).astype(np.int64)
        tensor &= q + 2 + size == tensor_end
        f32 = tensor & (dtype == 1) & (size == 4) & ((kind == 0x22) | (kind == 0x2A))
        f64 = tensor & (dtype == 2) & (size == 8) & ((kind == 0x22) | (kind == 0x32))

        value = np.zeros(n, dtype=np.float64)
        float32s, float64s = unaligned(padded, "<f4"), unaligned(padded, "<f8")
        for mask, at_value, numbers in (
            (simple, p + 1, float32s),
            (f32, q + 2, float32s),
            (f64, q + 2, float64s),
        ):
            rows = np.flatnonzero(mask)
            value[rows] = numbers[at_value[rows]]
        self.value = value
        self.tensor = f32 | f64
        self.scalar = simple | self.tensor
        self.scalars_metadata &= self.tensor

    def _byte(self, at: np.ndarray) -> np.ndarray:
        return self._u8[np.minimum(at, self._last)]

    def _is_scalars_metadata(self, at: np.ndarray) -> np.ndarray:
        """Whether the 13 bytes at ``at`` are the scalars plugin's serialised metadata."""
        at = np.minimum(at, self._last)
        return (self._u64[at] == _SCALARS_METADATA_HEAD) & (self._u64[at + 5] == _SCALARS_METADATA_TAIL)

    def _varint(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode base-128 varints of up to 8 bytes at once: (value uint64, width, ok). Longer ones
        (steps >= 2**56, negative steps) are not ok here and go the protobuf way."""
        word = self._u64[np.minimum(at, self._last)]
        stops = ~word & _HIGH_BITS  # the high bit of every byte that ends a varint
        ok = stops != 0
        lowest = stops & (~stops + np.uint64(1))  # the first such byte's high bit
        width = (np.log2(np.where(ok, lowest, np.uint64(1)).astype(np.float64)).astype(np.int64) + 1) // 8
        word &= (lowest << np.uint64(1)) - np.uint64(1)  # drop the bytes after it
        value = word & np.uint64(0x7F)
        for k in range(1, int(width.max(initial=0))):  # most are 1 or 2 bytes: only as many passes
            value |= ((word >> np.uint64(8 * k)) & np.uint64(0x7F)) << np.uint64(7 * k)
        return value, width, ok

    def _nested(self, p: np.ndarray, end: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step into a length-delimited field at ``p`` that must run exactly to the record's end."""
        length, width, length_ok = self._varint(p + 1)
        inner = p + 1 + width
        return inner, ok & length_ok & (inner + length.astype(np.int64) == end)


_SCALARS_METADATA_HEAD = np.frombuffer(_SCALARS_METADATA[:8], dtype="<u8")[0]
_SCALARS_METADATA_TAIL = np.frombuffer(_SCALARS_METADATA[5:13], dtype="<u8")[0]


def _tag_codes(buffer: bytes, start: np.ndarray, length: np.ndarray, tags: TagTable) -> np.ndarray:
    """Codes of the tags at ``buffer[start:start+length]``: a 64-bit key per tag from 8-byte words,
    one integer sort, and an exact byte comparison that falls back to sorting the bytes themselves
    should two different tags ever share a key."""
    codes = np.empty(len(start), dtype=np.int32)
    if not len(start):
        return codes
    padded = buffer + bytes(8)
    u8, u64 = np.frombuffer(padded, dtype=np.uint8), unaligned(padded, "<u8")
    for size in np.unique(length).tolist():
        rows = np.flatnonzero(length == size)
        at = start[rows]
        key = np.full(len(rows), size, dtype=np.uint64)
        for word in range(0, size, 8):
            key = key * np.uint64(0x9E3779B97F4A7C15) ^ (u64[at + word] & _low_bytes(size - word))
        _unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        first_at = at[first][inverse.reshape(-1)]
        if size and not all(
            ((u64[at + w] ^ u64[first_at + w]) & _low_bytes(size - w) == 0).all() for w in range(0, size, 8)
        ):
            raw = np.ascontiguousarray(u8[at[:, None] + np.arange(size)])  # a collision: compare bytes
            _, first, inverse = np.unique(
                raw.view(np.dtype((np.void, size))).ravel(), return_index=True, return_inverse=True
            )
        table = np.array(
            [_code_of(bytes(u8[a : a + size]), tags) for a in at[first].tolist()], dtype=np.int32
        )
        codes[rows] = table[inverse.reshape(-1)]
    return codes


def _low_bytes(count: int) -> np.uint64:
    """A mask of the low ``count`` bytes of a uint64 (all of them from 8 on)."""
    return np.uint64((1 << (8 * min(count, 8))) - 1)


def _code_of(raw: bytes, tags: TagTable) -> int:
    """The code of a tag, or -1 when it is not UTF-8 (protobuf refuses such an Event whole)."""
    try:
        return tags.code(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return -1
