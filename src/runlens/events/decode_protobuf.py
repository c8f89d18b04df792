"""The general path of decoding: the records the fast path of :mod:`runlens.events.decode` does not
recognise, parsed with protobuf (TensorBoard's ``Event`` proto, no TensorFlow), so that no valid
record is ever dropped for being unusual.

>>> from tensorboard.compat.proto.tensor_pb2 import TensorProto
>>> tensor_scalar(TensorProto(dtype=1, float_val=[0.5]))
0.5
"""

from __future__ import annotations

import numpy as np

from runlens.events.records import Block
from runlens.events.rows import Rows, TagTable

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


def decode_with_protobuf(
    block: Block, indices: np.ndarray, tags: TagTable
) -> tuple[Rows, np.ndarray, list[tuple[int, int, int, str]], np.ndarray]:
    """The general path: parse the records at ``indices`` with protobuf. Returns the rows, the
    block position of each row's record, the plugin marks and the records protobuf refused (see
    :class:`Decoded`)."""
    from tensorboard.compat.proto.event_pb2 import Event

    parse = Event.FromString
    out: dict[str, list] = {"tag": [], "step": [], "wall_time": [], "value": [], "tensor": [], "record": []}
    marks: list[tuple[int, int, int, str]] = []
    marked: set[tuple[int, int]] = set()
    refused: list[int] = []
    for i in indices.tolist():
        try:
            event = parse(bytes(block.payload(i)))
        except Exception:  # a CRC-valid record that is not an Event (protobuf's DecodeError)
            refused.append(i)
            continue
        if not event.HasField("summary"):
            continue
        source = int(block.sources[i])
        for value in event.summary.value:
            code = tags.code(value.tag)
            plugin = value.metadata.plugin_data.plugin_name
            if plugin and (source, code) not in marked:
                marked.add((source, code))
                marks.append((source, i, code, plugin))
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
                ("tag", code),
                ("step", event.step),
                ("wall_time", event.wall_time),
                ("value", number),
                ("tensor", from_tensor),
                ("record", i),
            ):
                out[key].append(item)
    rows = Rows(
        np.array(out["tag"], dtype=np.int32),
        np.array(out["step"], dtype=np.int64),
        np.array(out["wall_time"], dtype=np.float64),
        np.array(out["value"], dtype=np.float64),
        np.array(out["tensor"], dtype=bool),
    )
    return rows, np.array(out["record"], dtype=np.int64), marks, np.array(refused, dtype=np.int64)


def tensor_scalar(tensor) -> float | None:
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
        if len(tensor.tensor_content) != (2 if dtype == "bfloat16" else np.dtype(dtype).itemsize):
            return None  # rank 0 means exactly one element (a malformed tensor is no scalar)
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
