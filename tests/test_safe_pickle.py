"""The pickle reader behind Lightning checkpoints runs nothing a pickle asks for, reads what the real
``pickle`` writes as the real ``pickle.loads`` would, and stays bounded on damaged and hostile input."""

from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import pickletools
import struct
import sys
import tracemalloc
import zipfile

import pytest
from hostile_pickles import Exec, SystemCall
from hypothesis import given, settings
from hypothesis import strategies as st

from runlens.checkpoints.safe_pickle import Call, Global, Persistent, PickleError, read_pickle

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


@pytest.fixture
def sentinel(tmp_path):
    return tmp_path / "SENTINEL"


class Popen:
    def __init__(self, argv):
        self.argv = argv

    def __reduce__(self):
        import subprocess

        return (subprocess.Popen, (self.argv,))


class Eval:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        import builtins

        return (builtins.eval, (self.code,))


def hostile_objects(sentinel):
    touch = f"open({str(sentinel)!r}, 'w').close()"
    return {
        "os.system": SystemCall(f"touch {sentinel}"),
        "builtins.exec": Exec(touch),
        "builtins.eval": Eval(touch),
        "subprocess.Popen": Popen(["touch", str(sentinel)]),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "builtins.eval", "subprocess.Popen"])
def test_a_pickle_that_would_run_code_runs_nothing(sentinel, protocol, how):
    """Nested in a checkpoint-like dict, as a crafted .ckpt would carry it; pickle.loads of the very
    same bytes would create the sentinel file (checked in a child process, below)."""
    payload = {
        "epoch": 1,
        "global_step": 5,
        "state_dict": {},
        "callbacks": {"x": [hostile_objects(sentinel)[how]]},
    }
    data = pickle.dumps(payload, protocol=protocol)
    result = read_pickle(data)
    assert not sentinel.exists()
    call = result["callbacks"]["x"][0]
    assert isinstance(call, Call) and isinstance(call.func, Global)
    assert f"{call.func.module}.{call.func.name}".endswith(how.split(".")[-1])
    assert result["epoch"] == 1 and result["global_step"] == 5


def test_the_hostile_pickles_do_run_code_under_the_real_pickle(sentinel, tmp_path):
    """The test above would notice: the real unpickler runs each of them (in a child process)."""
    import subprocess

    for how, obj in hostile_objects(sentinel).items():
        blob = tmp_path / f"{how}.pkl"
        blob.write_bytes(pickle.dumps({"x": obj}))
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import pickle, time; pickle.load(open({str(blob)!r}, 'rb')); time.sleep(0.2)",
            ],
            check=False,
            timeout=60,
        )
        assert sentinel.exists(), how
        sentinel.unlink()


def short_unicode(text: str) -> bytes:
    """SHORT_BINUNICODE: the opcode, a one-byte length, UTF-8."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def test_no_module_named_by_a_pickle_is_imported(tmp_path, monkeypatch):
    module = tmp_path / "booby_trapped.py"
    module.write_text(f"open({str(tmp_path / 'IMPORTED')!r}, 'w').close()\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # GLOBAL, STACK_GLOBAL, INST, OBJ, NEWOBJ, NEWOBJ_EX, BUILD of a class from that module
    stack_global = b"\x80\x04" + short_unicode("booby_trapped") + short_unicode("Thing") + b"\x93"
    data = [
        b"cbooby_trapped\nThing\n)R.",  # GLOBAL + REDUCE
        stack_global + b")\x81}b.",  # STACK_GLOBAL + NEWOBJ + BUILD
        b"(ibooby_trapped\nThing\n.",  # INST
        b"(cbooby_trapped\nThing\no.",  # OBJ
        stack_global + b")}\x92.",  # NEWOBJ_EX
    ]
    for blob in data:
        result = read_pickle(blob)
        assert isinstance(result, (Call, Global))
    assert "booby_trapped" not in sys.modules and not (tmp_path / "IMPORTED").exists()


def test_extension_codes_and_persistent_ids_stay_placeholders():
    import copyreg

    copyreg.add_extension(os.system.__module__, "system", 0x7A7A)
    try:
        data = pickle.dumps(os.system, protocol=2)
    finally:
        copyreg.remove_extension(os.system.__module__, "system", 0x7A7A)
    assert read_pickle(data) == Global("copyreg extension", str(0x7A7A))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", "FloatStorage", "0", "cpu", 4) if obj == "tensor" else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": "tensor"})
    collected = []
    result = read_pickle(buffer.getvalue(), persistent=collected)
    assert isinstance(result["w"], Persistent) and collected == [result["w"]]
    assert result["w"].pid == ("storage", "FloatStorage", "0", "cpu", 4)


# ----------------------------------------------------------- the real pickle's output, read back

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**100), 2**100)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
keys = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=10)
    | st.tuples(st.integers(), st.text(max_size=5))
)
plain = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.tuples(inner, inner, inner, inner)
        | st.dictionaries(keys, inner, max_size=5)
        | st.frozensets(st.integers(), max_size=4)
        | st.sets(st.text(max_size=4), max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=plain, protocol=st.sampled_from([4, 5]))
def test_plain_data_reads_back_as_pickle_loads_gives_it(value, protocol):
    """Protocols 4 and 5 write every plain type without calls (older ones pickle bytes and sets
    through a REDUCE of codecs.encode / set, which stays a placeholder)."""
    data = pickle.dumps(value, protocol=protocol)
    assert read_pickle(data) == pickle.loads(data)


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
        max_leaves=20,
    ),
    protocol=st.sampled_from(PROTOCOLS),
)
def test_lists_dicts_and_scalars_read_back_under_every_protocol(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    assert read_pickle(data) == pickle.loads(data)


def test_an_ordered_dict_is_a_call_with_its_items():
    result = read_pickle(pickle.dumps(collections.OrderedDict(a=1, b=[2]), protocol=2))
    assert result.func == Global("collections", "OrderedDict") and result.items == [("a", 1), ("b", [2])]


# ---------------------------------------------------------------- damage and hostile sizes


def real_data_pkl(framework_fits):
    ckpt = framework_fits / "lightning" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    with zipfile.ZipFile(ckpt) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


@pytest.fixture(scope="module")
def data_pkl(framework_fits):
    return real_data_pkl(framework_fits)


def damaged_copy(data, blob: bytes, *, least_flips: int) -> bytes:
    """``blob`` with ``least_flips`` to 8 bytes overwritten at drawn places, maybe cut short."""
    damaged = bytearray(blob)
    for _ in range(data.draw(st.integers(least_flips, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    return bytes(damaged)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_real_pickles_are_read_or_refused_never_anything_else(data_pkl, data):
    with contextlib.suppress(PickleError):
        read_pickle(damaged_copy(data, data_pkl, least_flips=1))


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=400))
def test_random_bytes_are_read_or_refused(blob):
    with contextlib.suppress(PickleError):
        read_pickle(blob)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"abc.",  # BINBYTES8 claiming an exabyte
        b"\x80\x04\x8d" + struct.pack("<Q", 2**40) + b"abc.",  # BINUNICODE8
        b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"abc.",  # BYTEARRAY8
        b"\x80\x02B" + struct.pack("<I", 2**32 - 1) + b"abc.",  # BINBYTES (4 GiB)
        b"\x80\x02\x8b" + struct.pack("<i", 2**31 - 1) + b"abc.",  # LONG4
        b"\x80\x02X" + struct.pack("<I", 2**32 - 1) + b"abc.",  # BINUNICODE
        b"I" + b"9" * 100_000 + b"\n.",  # a decimal integer of 100,000 digits
    ],
    ids=["BINBYTES8", "BINUNICODE8", "BYTEARRAY8", "BINBYTES", "LONG4", "BINUNICODE", "INT digits"],
)
def test_length_fields_larger_than_the_data_allocate_nothing(blob):
    """pickle's C reader allocates what a length field claims before reading; this one reads
    what is there."""
    tracemalloc.start()
    try:
        with pytest.raises(PickleError):
            read_pickle(blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * len(blob) + (1 << 20)


def test_memory_stays_a_small_multiple_of_the_input_for_hostile_growth():
    """DUP and memo GETs add references, never copies: a million-item list of one big string."""
    big = b"\x80\x04\x8c\xff" + b"x" * 255 + b"\x94(" + b"h\x00" * 500_000 + b"l."
    tracemalloc.start()
    try:
        result = read_pickle(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result) == 500_000 and peak < 40 * len(big)


def test_deep_nesting_neither_recurses_nor_hashes_hostile_keys():
    deep = b"\x80\x02" + b"]" + b"\x85" * 200_000 + b"."  # a list in 200,000 nested 1-tuples
    result = read_pickle(deep)
    for _ in range(200_000):
        result = result[0]
    assert result == []
    as_key = b"\x80\x02}" + b")" + b"\x85" * 50_000 + b"K\x01s."  # that tuple as a dict key
    with pytest.raises(PickleError, match="dict key"):
        read_pickle(as_key)


def test_the_opcodes_used_are_those_of_the_real_checkpoint(data_pkl):
    """The machine covers what torch.save + Lightning write (a guard against a silent skip)."""
    names = {op.name for op, _, _ in pickletools.genops(data_pkl)}
    assert {"BINPERSID", "GLOBAL", "REDUCE", "SETITEMS", "BUILD", "BINGET"} <= names
    result = read_pickle(data_pkl)
    assert result["pytorch-lightning_version"] and isinstance(result["state_dict"], Call)


# ------------------------------------------------- the decoder against pickletools.genops


def genops_or_error(data: bytes):
    """pickletools' own decoding of ``data`` up to STOP: (name, argument) pairs, or "refused"."""
    try:
        return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    except (ValueError, struct.error):
        return "refused"


def instructions_or_error(data: bytes):
    from runlens.checkpoints.safe_pickle import _instructions

    try:
        return list(_instructions(data))
    except ValueError:  # UnicodeDecodeError too: the only errors it raises
        return "refused"


@settings(max_examples=200, deadline=None)
@given(value=plain, protocol=st.sampled_from(PROTOCOLS), cut=st.integers(0, 10**6))
def test_instructions_decode_as_pickletools_does_whole_or_cut_short(value, protocol, cut):
    """read_pickle's own decoder (genops read each argument through a file object and a Python
    function: half of a .ckpt's check) gives genops' instructions and arguments, under every
    protocol, and refuses what genops refuses."""
    data = pickle.dumps(value, protocol=protocol)
    assert instructions_or_error(data) == genops_or_error(data) != "refused"
    short = data[: cut % (len(data) + 1)]
    assert instructions_or_error(short) == genops_or_error(short)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_instructions_of_damaged_checkpoints_and_random_bytes_are_genops(data_pkl, data):
    damaged = damaged_copy(data, data_pkl, least_flips=0)  # maybe no byte changed, only cut
    blob = data.draw(st.binary(max_size=200))
    for case in (damaged, blob):
        assert instructions_or_error(case) == genops_or_error(case)


def test_every_argument_kind_decodes_as_pickletools_does():
    # each argument kind of pickletools' table at least once, binary and text, with lengths that
    # need 1, 4 and 8 bytes and the largest long ints; NaN compared by its bits
    values = [
        True,
        None,
        7,
        300,
        70000,
        -5,
        2**31,
        2**100,
        -(2**1000),
        0.5,
        float("inf"),
        "é",
        "x" * 300,
        "\udcff",
        b"y",
        b"z" * 300,
        bytearray(b"w"),
        (1, 2),
        frozenset({1}),
        {1},
        [1],
        {"k": 1},
        collections.OrderedDict(a=1),
        Global("m", "n"),
    ]
    many = [str(i) for i in range(300)]
    values += [many, many[299]]  # memo indexes past 255 (LONG_BINPUT, LONG_BINGET)
    seen = set()
    for protocol in PROTOCOLS:
        data = pickle.dumps(values, protocol=protocol)
        got = instructions_or_error(data)
        assert got == genops_or_error(data) != "refused"
        seen |= {name for name, _ in got}
    n8 = struct.pack("<Q", 2)
    written = [  # what Python 3's pickle writes no more (Python 2's str, text ids) or only past 4 GB
        pickle.dumps(bytearray(b"v" * 10), protocol=5),  # BYTEARRAY8
        pickle.dumps(2**3000, protocol=2),  # LONG4
        b"\x8e" + n8 + b"ab.",  # BINBYTES8
        b"\x8d" + n8 + b"\xc3\xa9.",  # BINUNICODE8
        b"U\x02ab.",  # SHORT_BINSTRING
        b"T\x02\x00\x00\x00ab.",  # BINSTRING
        b"S'ab'\n.",  # STRING
        b"Pid\n.",  # PERSID
    ]
    for data in written:
        got = instructions_or_error(data)
        assert got == genops_or_error(data) != "refused", data
        seen |= {name for name, _ in got}
    kinds = {op.arg.name for op in pickletools.opcodes if op.name in seen and op.arg is not None}
    assert kinds == {op.arg.name for op in pickletools.opcodes if op.arg is not None}
