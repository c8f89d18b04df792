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
(:func:`_decode_with_protobuf`), so no valid record is ever dropped for being unusual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runlens.events.records import Block

# TensorFlow DataType enum -> numpy dtype of one element, for the real and integer dtypes.
_NUMPY_DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    14: "bfloat16",  # DT_BFLOAT16 (handled specially)
    17: "<u2",  # DT_UINT16
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}
_DT_STRING = 7

# The TensorProto `*_val` field holding a dtype's values when tensor_content is empty.
_VAL_FIELDS: dict[int, str] = {
    1: "float_val",
    2: "double_val",
    3: "int_val",
    4: "int_val",
    5: "int_val",
    6: "int_val",
    9: "int64_val",
    10: "bool_val",
    14: "half_val",
    17: "int_val",
    19: "half_val",
    22: "uint32_val",
    23: "uint64_val",
}

# First byte of an Event field that puts the event outside `summary` (oneof `what`): file_version,
# graph_def, log_message, session_log, tagged_run_metadata, meta_graph_def.
_NON_SUMMARY_EVENT = np.array([0x1A, 0x22, 0x32, 0x3A, 0x42, 0x4A], dtype=np.uint8)
# Value.metadata = SummaryMetadata(plugin_data=PluginData(plugin_name="scalars")), serialised.
_SCALARS_METADATA = np.frombuffer(b"\x4a\x0b\x0a\x09\x0a\x07scalars", dtype=np.uint8)
# First byte of a Summary.Value field that is never a scalar: image, histo, audio.
_NON_SCALAR_VALUE = np.array([0x22, 0x2A, 0x32], dtype=np.uint8)


@dataclass
class TagTable:
    """Tag name <-> small integer code, shared by every block of one read."""

    names: list[str] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)

    def code(self, name: str) -> int:
        found = self.codes.get(name)
        if found is None:
            found = self.codes[name] = len(self.names)
            self.names.append(name)
        return found


@dataclass
class Rows:
    """Scalar rows in the order written. ``tensor`` marks values that came from a tensor (their
    tag's plugin decides whether they are scalars); ``plugins`` maps tag code -> the plugin_name of
    the first metadata seen for it."""

    tag: np.ndarray  # int32 codes into a TagTable
    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64
    value: np.ndarray  # float64
    tensor: np.ndarray  # bool
    plugins: dict[int, str]

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        plugins: dict[int, str] = {}
        for part in parts:
            for code, name in part.plugins.items():
                plugins.setdefault(code, name)
        if not parts:
            parts = [_empty_rows()]
        return cls(
            *(np.concatenate([getattr(p, col) for p in parts]) for col in ("tag", "step", "wall_time", "value", "tensor")),
            plugins=plugins,
        )


def _empty_rows() -> Rows:
    return Rows(
        np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64),
        np.zeros(0, bool), {},
    )


def decode_block(block: Block, tags: TagTable) -> Rows:
    """Every scalar row in ``block``, in the order written (see the module docstring)."""
    if not len(block):
        return _empty_rows()
    buf = np.frombuffer(block.buffer, dtype=np.uint8)
    fast = _FastShapes(buf, block.starts, block.starts + block.lengths)
    slow_idx = np.flatnonzero(~(fast.scalar | fast.skip))
    fast_idx = np.flatnonzero(fast.scalar)
    fast_codes = _tag_codes(buf, fast.tag_start[fast_idx], fast.tag_len[fast_idx], tags)
    # The first plugin metadata of each tag wins; the fast path only ever sees the scalars plugin's.
    first_plugin: dict[int, tuple[int, str]] = {}
    with_metadata = fast.scalars_metadata[fast_idx]
    codes, first = np.unique(fast_codes[with_metadata], return_index=True)
    ordinals = block.ordinals[fast_idx][with_metadata]
    for code, at in zip(codes.tolist(), first.tolist()):
        first_plugin[code] = (int(ordinals[at]), "scalars")

    parts = [
        Rows(fast_codes, fast.step[fast_idx], fast.wall_time[fast_idx], fast.value[fast_idx], fast.tensor[fast_idx], {})
    ]
    row_ordinals = [block.ordinals[fast_idx]]
    if len(slow_idx):
        slow_rows, slow_ordinals, slow_plugins = _decode_with_protobuf(block, slow_idx, tags)
        parts.append(slow_rows)
        row_ordinals.append(slow_ordinals)
        for code, (ordinal, name) in slow_plugins.items():
            if code not in first_plugin or ordinal < first_plugin[code][0]:
                first_plugin[code] = (ordinal, name)
    merged = Rows.concat(parts)
    merged.plugins = {code: name for code, (_, name) in first_plugin.items()}
    if len(parts) == 1:
        return merged
    order = np.argsort(np.concatenate(row_ordinals), kind="stable")
    return Rows(
        merged.tag[order], merged.step[order], merged.wall_time[order], merged.value[order],
        merged.tensor[order], merged.plugins,
    )


class _FastShapes:
    """Vectorised recognition of the common record shapes (all arrays are per record)."""

    def __init__(self, buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        self._buf = buf
        self._last = len(buf) - 1
        at = self._byte
        n = len(start)
        ok = (end - start >= 11) & (at(start) == 0x09)
        self.wall_time = self._gather(start + 1, 8, "<f8")
        p = start + 9
        has_step = at(p) == 0x10
        step, width, step_ok = self._varint(p + 1, 10)
        self.step = np.where(has_step, step.view(np.int64), 0)
        ok &= ~has_step | step_ok
        p = np.where(has_step, p + 1 + width, p)

        self.skip = ok & np.isin(at(p), _NON_SUMMARY_EVENT)
        ok &= at(p) == 0x2A  # Event.summary
        p, ok = self._nested(p, end, ok)
        ok &= at(p) == 0x0A  # Summary.value, and it is the only one
        p, ok = self._nested(p, end, ok)
        ok &= at(p) == 0x0A  # Value.tag
        tag_len, width, tag_ok = self._varint(p + 1, 2)
        self.tag_start = p + 1 + width
        self.tag_len = tag_len.astype(np.int64)
        ok &= tag_ok & (self.tag_start + self.tag_len < end)
        p = self.tag_start + self.tag_len
        tail = end - p
        head = at(p)

        self.skip |= ok & np.isin(head, _NON_SCALAR_VALUE)
        simple = ok & (head == 0x15) & (tail == 5)

        # Value.tensor: 42 <len> 08 <dtype> [12 00] <values field>, then nothing or the scalars
        # plugin's metadata (TF2's tf.summary.scalar repeats it on every value).
        tensor_end = p + 2 + at(p + 1).astype(np.int64)
        rest = end - tensor_end
        self.scalars_metadata = (rest == len(_SCALARS_METADATA)) & self._equals(tensor_end, _SCALARS_METADATA)
        tensor = ok & (head == 0x42) & (at(p + 1) < 0x80) & ((rest == 0) | self.scalars_metadata)
        q = p + 2
        tensor &= at(q) == 0x08
        dtype = at(q + 1)
        q = q + 2
        has_shape = at(q) == 0x12
        shape_len = at(q + 1).astype(np.int64)
        self.skip |= tensor & ((has_shape & (shape_len > 0)) | (dtype == _DT_STRING))  # rank > 0, text
        tensor &= ~has_shape | (shape_len == 0)
        q = np.where(has_shape, q + 2, q)
        kind, size = at(q), at(q + 1).astype(np.int64)
        tensor &= q + 2 + size == tensor_end
        f32 = tensor & (dtype == 1) & (size == 4) & ((kind == 0x22) | (kind == 0x2A))
        f64 = tensor & (dtype == 2) & (size == 8) & ((kind == 0x22) | (kind == 0x32))

        value = np.zeros(n, dtype=np.float64)
        for mask, at_value, width, dtype_name in ((simple, p + 1, 4, "<f4"), (f32, q + 2, 4, "<f4"), (f64, q + 2, 8, "<f8")):
            rows = np.flatnonzero(mask)
            value[rows] = self._gather(at_value[rows], width, dtype_name)
        self.value = value
        self.tensor = f32 | f64
        self.scalar = simple | self.tensor
        self.scalars_metadata &= self.tensor

    def _equals(self, at: np.ndarray, expected: np.ndarray) -> np.ndarray:
        return (self._buf[np.minimum(at[:, None] + np.arange(len(expected)), self._last)] == expected).all(axis=1)

    def _byte(self, at: np.ndarray) -> np.ndarray:
        return self._buf[np.minimum(at, self._last)]

    def _gather(self, at: np.ndarray, width: int, dtype: str) -> np.ndarray:
        index = np.minimum(at[:, None] + np.arange(width), self._last)
        return np.ascontiguousarray(self._buf[index]).view(dtype).reshape(len(at))

    def _varint(self, at: np.ndarray, max_width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode base-128 varints of up to ``max_width`` bytes: (value uint64, width, ok)."""
        raw = self._buf[np.minimum(at[:, None] + np.arange(max_width), self._last)]
        stop = raw < 0x80
        ok = stop.any(axis=1)
        width = stop.argmax(axis=1) + 1
        value = np.zeros(len(at), dtype=np.uint64)
        for k in range(max_width):
            part = (raw[:, k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
            value |= np.where(k < width, part, np.uint64(0))
        return value, width.astype(np.int64), ok

    def _nested(self, p: np.ndarray, end: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step into a length-delimited field at ``p`` that must run exactly to the record's end."""
        length, width, length_ok = self._varint(p + 1, 3)
        inner = p + 1 + width
        return inner, ok & length_ok & (inner + length.astype(np.int64) == end)


def _tag_codes(buf: np.ndarray, start: np.ndarray, length: np.ndarray, tags: TagTable) -> np.ndarray:
    """Codes of the tags at ``buf[start:start+length]``, found with one sort per tag length."""
    codes = np.empty(len(start), dtype=np.int32)
    for size in np.unique(length).tolist():
        rows = np.flatnonzero(length == size)
        raw = np.ascontiguousarray(buf[start[rows, None] + np.arange(size)])
        keys = raw.view(np.dtype((np.void, max(size, 1)))).ravel() if size else np.zeros(len(rows), "V1")
        unique, inverse = np.unique(keys, return_inverse=True)
        table = np.array(
            [tags.code(bytes(u).decode("utf-8", errors="replace")) if size else tags.code("") for u in unique],
            dtype=np.int32,
        )
        codes[rows] = table[inverse.reshape(-1)]
    return codes


def _decode_with_protobuf(
    block: Block, indices: np.ndarray, tags: TagTable
) -> tuple[Rows, np.ndarray, dict[int, tuple[int, str]]]:
    """The general path: parse the records at ``indices`` with protobuf. Returns the rows, their
    record ordinals, and each tag's first plugin metadata as ``code -> (ordinal, plugin_name)``."""
    from tensorboard.compat.proto.event_pb2 import Event

    parse = Event.FromString
    out: dict[str, list] = {"tag": [], "step": [], "wall_time": [], "value": [], "tensor": [], "ordinal": []}
    plugins: dict[int, tuple[int, str]] = {}
    for i in indices.tolist():
        try:
            event = parse(bytes(block.payload(i)))
        except Exception:  # a CRC-valid record that is not an Event: nothing scalar in it
            continue
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            code = tags.code(value.tag)
            plugin = value.metadata.plugin_data.plugin_name
            if plugin and code not in plugins:
                plugins[code] = (int(block.ordinals[i]), plugin)
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                number, from_tensor = float(value.simple_value), False
            elif kind == "tensor":
                scalar = tensor_scalar(value.tensor)
                if scalar is None:
                    continue
                number, from_tensor = scalar, True
            else:
                continue
            for key, item in (
                ("tag", code), ("step", event.step), ("wall_time", event.wall_time), ("value", number),
                ("tensor", from_tensor), ("ordinal", int(block.ordinals[i])),
            ):
                out[key].append(item)
    rows = Rows(
        np.array(out["tag"], dtype=np.int32),
        np.array(out["step"], dtype=np.int64),
        np.array(out["wall_time"], dtype=np.float64),
        np.array(out["value"], dtype=np.float64),
        np.array(out["tensor"], dtype=bool),
        {},
    )
    return rows, np.array(out["ordinal"], dtype=np.int64), plugins


def tensor_scalar(tensor) -> float | None:  # noqa: ANN001 (a TensorProto)
    """The value of a rank-0 real, integer or bool TensorProto as float; None for anything else.

    >>> from tensorboard.compat.proto.tensor_pb2 import TensorProto
    >>> tensor_scalar(TensorProto(dtype=2, double_val=[0.25]))
    0.25
    >>> tensor_scalar(TensorProto(dtype=7, string_val=[b"text"])) is None
    True
    """
    dtype = _NUMPY_DTYPES.get(tensor.dtype)
    if dtype is None or len(tensor.tensor_shape.dim) or tensor.tensor_shape.unknown_rank:
        return None
    if tensor.tensor_content:
        if dtype == "bfloat16":
            bits = np.frombuffer(tensor.tensor_content, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        else:
            values = np.frombuffer(tensor.tensor_content, dtype=dtype)
    else:
        values = np.asarray(list(getattr(tensor, _VAL_FIELDS[tensor.dtype])))
        if dtype == "bfloat16":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "<f2":
            values = values.astype(np.uint16).view(np.float16)
    if len(values) == 0:
        return 0.0  # an all-default rank-0 tensor is zero, as TensorFlow's make_ndarray reads it
    if len(values) != 1:
        return None
    return float(values[0])
