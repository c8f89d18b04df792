"""The scalar cache under hostile and damaged packs (issue 15 item 7): a planted pack never runs
code, a damaged one is never trusted (every read gives exactly a cold read's rows), a pack claiming
huge sizes costs nothing, packs and folders other users own or can write are ignored, nothing is
ever written through a planted symlink, and a logdir path that is not UTF-8 is cached too."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import crc32c
import numpy as np
import pandas as pd
import pytest
import writers
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_read_incremental import age, assert_same, parsed_bytes  # noqa: F401  (a fixture)

import runlens
from runlens.cli import main
from runlens.events.cache import ScalarCache

# Damaged event files are part of some logdirs here, on purpose; and xdist cannot send warnings
# whose text is not UTF-8 (the logdir path test) back from its workers.
pytestmark = pytest.mark.filterwarnings("ignore::runlens.DamagedDataWarning")

OTHER_UID = 4242  # someone else (the suite runs as root in CI: os.chown to it works)


def assert_exactly(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows, categories, dtypes and problems, and every float bit for bit (NaN payloads too)."""
    assert_same(frame, expected)
    for column in ("step", "wall_time", "value"):
        assert frame[column].dtype == expected[column].dtype
        got, want = _bits(frame[column]), _bits(expected[column])
        assert got.tolist() == want.tolist()


def _bits(column: pd.Series) -> np.ndarray:
    """A column's values as their 64 bits (wall_time: its UTC nanoseconds)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.array.asi8.view(np.uint64)
    return column.to_numpy().view(np.uint64)


def pack_path(cache: Path, logdir: Path) -> Path:
    return ScalarCache(cache).open(logdir).path


def old_pack_path(cache: Path, logdir: Path) -> Path:
    """Where runlens up to issue 15 kept a logdir's pickled pack."""
    key = hashlib.sha256(os.path.abspath(logdir).encode()).hexdigest()
    return cache / "scalars" / key[:2] / f"{key}.pkl"


class _RunsCode:
    """Unpickling this creates ``sentinel``: proof that code from the cache ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def _split(data: bytes) -> tuple[int, dict, bytes]:
    """A pack's format version, index and buffers."""
    from runlens.events import pack

    _, version, size, _, _ = pack.HEADER.unpack_from(data)
    start = pack.HEADER.size
    return version, json.loads(data[start : start + size]), data[start + size :]


def _planted(kind: str, sentinel: Path, scratch: Path, real: bytes) -> bytes:
    """Bytes that would create ``sentinel`` if loaded carelessly: a pickle, an ``.npy`` of objects,
    or ``real`` (a pack runlens wrote) whose first column, checksums all right, claims to hold
    Python objects and holds a pickle."""
    if kind == "pickle":
        return pickle.dumps({"format": 2, "hook": _RunsCode(sentinel)})
    if kind == "npy-object":
        np.save(scratch / "planted.npy", np.array([_RunsCode(sentinel)], dtype=object), allow_pickle=True)
        return (scratch / "planted.npy").read_bytes()
    from runlens.events import pack

    version, index, body = _split(real)
    dtype, count, _ = index["buffers"][0]
    payload = pickle.dumps([_RunsCode(sentinel)], protocol=4)
    payload += bytes(-len(payload) % 8)
    index["buffers"][0] = ["|O", len(payload) // 8, crc32c.crc32c(payload)]
    return pack.encode_head(index, version) + payload + body[count * np.dtype(dtype).itemsize :]


@pytest.fixture
def logdir(simple_value_logdir, tf_logdir, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(simple_value_logdir.path, root / "sv")
    shutil.copytree(tf_logdir.path / "tf2", root / "tf2")
    writers.write_garbage(root / "sv" / "raw", "events.out.tfevents.9.junk")  # a problem in the pack
    age(root)
    return root


@pytest.mark.parametrize("kind", ["pickle", "npy-object", "crafted-pack"])
def test_a_planted_pack_never_runs_code(logdir, tmp_path, kind):
    cache, sentinel = tmp_path / "cache", tmp_path / "ran"
    runlens.read_scalars(logdir, cache=cache)
    planted = _planted(kind, sentinel, tmp_path, pack_path(cache, logdir).read_bytes())
    assert not sentinel.exists()
    for path in {old_pack_path(cache, logdir), pack_path(cache, logdir)}:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(planted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", runlens.CacheWarning)
        frame = runlens.read_scalars(logdir, cache=cache)
    assert not sentinel.exists()
    assert_exactly(frame, runlens.read_scalars(logdir))
    [warned] = [str(w.message) for w in caught if w.category is runlens.CacheWarning]
    assert ("malformed dtype" if kind == "crafted-pack" else "not a runlens pack") in warned


def test_runlens_ls_cache_never_runs_a_planted_pack(logdir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    sentinel = tmp_path / "ran"
    planted = _planted("pickle", sentinel, tmp_path, b"")
    for path in {old_pack_path(tmp_path / "xdg" / "runlens", logdir), pack_path(None, logdir)}:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(planted)
    result = CliRunner().invoke(main, ["ls", str(logdir), "--cache"])
    assert result.exit_code == 0, result.output
    assert not sentinel.exists()
    assert "points in" in result.output


def test_runlens_ls_cache_says_in_one_line_why_the_cache_is_not_used(logdir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert CliRunner().invoke(main, ["ls", str(logdir), "--cache"]).exit_code == 0
    folder = tmp_path / "xdg" / "runlens"
    folder.chmod(0o770)
    result = CliRunner().invoke(main, ["ls", str(logdir), "--cache"])
    assert result.exit_code == 0
    [warned] = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warned.startswith(f"Warning: {folder}: writable by other users (mode 0770); the cache is not used")
    assert "chmod go-w" in warned and "Traceback" not in result.output


# ---------------------------------------------------------------- damaged packs


class Packs:
    """Two logdirs read through one cache: their intact packs, and their cold frames."""

    def __init__(self, root: Path, simple_value_logdir, tf_logdir) -> None:
        self.a, self.b, self.cache = root / "a", root / "b", root / "cache"
        shutil.copytree(simple_value_logdir.path, self.a / "sv")
        shutil.copytree(tf_logdir.path / "tf2", self.a / "tf2")
        writers.write_garbage(self.a / "junk", "events.out.tfevents.9.junk")
        for run in ("float64", "tf1"):
            shutil.copytree(tf_logdir.path / run, self.b / run)
        age(self.a)
        age(self.b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", runlens.DamagedDataWarning)
            self.cold_a = runlens.read_scalars(self.a)
            runlens.read_scalars(self.a, cache=self.cache)
            runlens.read_scalars(self.b, cache=self.cache)
        self.path_a, self.path_b = pack_path(self.cache, self.a), pack_path(self.cache, self.b)
        self.intact_a, self.intact_b = self.path_a.read_bytes(), self.path_b.read_bytes()


@pytest.fixture(scope="module")
def packs(tmp_path_factory, simple_value_logdir, tf_logdir):
    return Packs(tmp_path_factory.mktemp("packs"), simple_value_logdir, tf_logdir)


def _damage(data: bytes, other: bytes, kind: str, where: float, size: int, bit: int) -> bytes:
    at = int(where * len(data)) % max(len(data), 1)
    if kind == "flip" and data:
        out = bytearray(data)
        out[at] ^= 1 << bit
        return bytes(out)
    if kind in ("truncate", "flip"):  # (a flip of nothing: nothing)
        return data[:at]
    if kind == "append":
        return data + bytes((at * 7 + i * 13) % 256 for i in range(size))
    if kind == "zero":
        return data[:at] + bytes(min(size, len(data) - at)) + data[at + size :]
    if kind == "swap-range":  # the same range of the other logdir's pack
        return data[:at] + other[at : at + size] + data[at + size :]
    if kind == "splice":  # this pack's start, the other's end
        return data[:at] + other[at:]
    return other  # "other": the other logdir's whole pack under this one's name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damages=st.lists(
        st.tuples(
            st.sampled_from(["flip", "truncate", "append", "zero", "swap-range", "splice", "other"]),
            st.floats(0, 1),
            st.integers(1, 4096),
            st.integers(0, 7),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_damaged_pack_is_never_trusted(packs, damages):
    data = packs.intact_a
    for damage in damages:
        data = _damage(data, packs.intact_b, *damage)
    packs.path_a.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = runlens.read_scalars(packs.a, cache=packs.cache)
    assert_exactly(frame, packs.cold_a)
    noticed = [w for w in caught if not issubclass(w.category, runlens.DamagedDataWarning)]
    assert all(issubclass(w.category, runlens.CacheWarning) for w in noticed)
    assert len(noticed) == (data != packs.intact_a)  # any change is noticed, once


def test_an_ignored_pack_is_rewritten_and_then_served(packs, parsed_bytes):  # noqa: F811
    packs.path_a.write_bytes(packs.intact_a[:-1])
    with pytest.warns(runlens.CacheWarning, match="damaged"):
        runlens.read_scalars(packs.a, cache=packs.cache)
    parsed_bytes["bytes"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", runlens.CacheWarning)
        warnings.simplefilter("ignore", runlens.DamagedDataWarning)
        assert_exactly(runlens.read_scalars(packs.a, cache=packs.cache), packs.cold_a)
    assert parsed_bytes["bytes"] == 0


def test_a_pack_of_another_format_version_is_replaced_quietly(packs):
    from runlens.events import pack

    version, index, body = _split(packs.intact_a)
    assert version == pack.FORMAT
    packs.path_a.write_bytes(pack.encode_head(index, version - 1) + body)
    with warnings.catch_warnings():
        warnings.simplefilter("error", runlens.CacheWarning)
        warnings.simplefilter("ignore", runlens.DamagedDataWarning)
        assert_exactly(runlens.read_scalars(packs.a, cache=packs.cache), packs.cold_a)
    assert _split(packs.path_a.read_bytes())[0] == version


def test_a_pack_naming_an_unknown_problem_kind_is_ignored(packs):
    # Problem kinds are a closed set (runlens.events.problems.ProblemKind): a pack, checksums all
    # right, that names another is not a pack runlens wrote, and must not end the read either.
    from runlens.events import pack

    version, index, body = _split(packs.intact_a)
    problems = [p for chunk in index["chunks"] for p in chunk["problems"]]
    assert problems, "the fixture's junk file no longer leaves a problem in the pack"
    problems[0][2] = "shredded"
    packs.path_a.write_bytes(pack.encode_head(index, version) + body)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = runlens.read_scalars(packs.a, cache=packs.cache)
    assert_exactly(frame, packs.cold_a)
    [warned] = [str(w.message) for w in caught if w.category is runlens.CacheWarning]
    assert "problem" in warned


# ---------------------------------------------------------------- memory bounded by the file


_BOUNDED_READ = """
import resource, sys, warnings
import runlens
logdir, cache = sys.argv[1:3]
cold = runlens.read_scalars(logdir)
def vm_kb(field):
    return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])
limit = (vm_kb("VmSize") + 512 * 1024) * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a regression fails here, not the machine
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    frame = runlens.read_scalars(logdir, cache=cache)
assert frame.equals(cold), "rows differ from a cold read"
print("|".join(str(w.message) for w in caught))
"""


def _claiming(intact: bytes, claim: str) -> bytes:
    from runlens.events import pack

    version, index, body = _split(intact)
    if claim == "index-length":
        header = struct.pack("<8sIQI", pack.MAGIC, version, 2**40, 0)
        return header + struct.pack("<I", crc32c.crc32c(header)) + intact[len(header) + 4 :]
    count = 2**40 if claim == "rows" else 2**28  # 8 TiB or 2 GiB of float64 in a small file
    index["buffers"][0][1] = count
    return pack.encode_head(index, version) + body


@pytest.mark.parametrize("claim", ["rows", "rows-2GiB", "index-length"])
def test_a_pack_claiming_huge_sizes_is_rejected_before_allocating(packs, tmp_path, claim):
    cache = tmp_path / "cache"
    shutil.copytree(packs.cache, cache)
    path = pack_path(cache, packs.a)
    path.write_bytes(_claiming(packs.intact_a, claim))
    huge_pickle = b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"x" * 100 + b"."  # BINBYTES8, 1 TiB
    old = old_pack_path(cache, packs.a)
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(huge_pickle)
    out = subprocess.run(
        [sys.executable, "-c", _BOUNDED_READ, str(packs.a), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        "size" in out.stdout.strip().splitlines()[-1]
    )  # rejected for the sizes it states, not for a failed allocation


# ---------------------------------------------------------------- who may write the cache


def _unsafe(path: Path, how: str) -> None:
    if how == "foreign":
        os.chown(path, OTHER_UID, -1)
    else:
        path.chmod(path.stat().st_mode | (stat.S_IWGRP if how == "group-writable" else stat.S_IWOTH))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.mark.parametrize(
    "how", [pytest.param("foreign", marks=needs_root), "group-writable", "world-writable"]
)
@pytest.mark.parametrize("target", ["pack", "key-folder", "scalars-folder", "cache-folder"])
def test_a_pack_or_folder_others_control_is_ignored(logdir, tmp_path, parsed_bytes, target, how):  # noqa: F811
    cache = tmp_path / "cache"
    runlens.read_scalars(logdir, cache=cache)
    path = pack_path(cache, logdir)
    unsafe = {"pack": path, "key-folder": path.parent, "scalars-folder": path.parent.parent}.get(
        target, cache
    )
    _unsafe(unsafe, how)
    before = path.stat()
    parsed_bytes["bytes"] = 0
    with pytest.warns(runlens.CacheWarning, match="other users|owned by"):
        frame = runlens.read_scalars(logdir, cache=cache)
    assert parsed_bytes["bytes"] == sum(f.stat().st_size for f in writers.event_files(logdir))
    assert_exactly(frame, runlens.read_scalars(logdir))
    after = path.stat()
    if target == "pack":  # our own folder: the pack is replaced by one of ours
        assert after.st_ino != before.st_ino and after.st_uid == os.geteuid()
        assert stat.S_IMODE(after.st_mode) == 0o600
    else:  # nothing written in a folder others control
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_cache_folders_and_packs_are_private(logdir, tmp_path):
    cache = tmp_path / "deep" / "cache"
    runlens.read_scalars(logdir, cache=cache)
    path = pack_path(cache, logdir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, cache):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


@pytest.mark.parametrize("planted", ["pack", "key-folder", "scalars-folder"])
def test_nothing_is_read_or_written_through_a_planted_symlink(logdir, tmp_path, planted):
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    runlens.read_scalars(logdir, cache=cache)
    path = pack_path(cache, logdir)
    outside.mkdir()
    target = {"pack": path, "key-folder": path.parent, "scalars-folder": path.parent.parent}[planted]
    if planted == "pack":
        victim = outside / "victim"
        victim.write_bytes(b"precious")
        path.unlink()
        path.symlink_to(victim)
    else:
        shutil.move(target, outside / target.name)
        target.symlink_to(outside / target.name)
    snapshot = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    age(logdir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = runlens.read_scalars(logdir, cache=cache)
    assert any(issubclass(w.category, runlens.CacheWarning) for w in caught)
    assert_exactly(frame, runlens.read_scalars(logdir))
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == snapshot
    if planted == "pack":  # our folder: the link itself is replaced by a pack
        assert not path.is_symlink() and path.is_file()


_READ_TWICE = """
import sys, warnings
import runlens
warnings.simplefilter("ignore")
for _ in range(2):
    runlens.read_scalars(sys.argv[1], cache=sys.argv[2])
print("done")
"""


def test_a_fifo_at_the_pack_path_is_not_waited_on(logdir, tmp_path):
    cache = tmp_path / "cache"
    runlens.read_scalars(logdir, cache=cache)
    path = pack_path(cache, logdir)
    path.unlink()
    os.mkfifo(path, 0o600)
    out = subprocess.run(
        [sys.executable, "-c", _READ_TWICE, str(logdir), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "done", out.stderr[-2000:]
    assert path.is_file()  # replaced by a pack


# ---------------------------------------------------------------- a logdir path that is not UTF-8


def test_a_logdir_path_that_is_not_utf8_is_cached(logdir, tmp_path, parsed_bytes, monkeypatch):  # noqa: F811
    parent = tmp_path / os.fsdecode(b"caf\xe9")
    parent.mkdir()
    shutil.move(logdir, parent / "logs")
    logdir = parent / "logs"
    assert os.fsencode(logdir).endswith(b"caf\xe9/logs")
    cache = tmp_path / "cache"
    first = runlens.read_scalars(logdir, cache=cache)
    parsed_bytes["bytes"] = 0
    assert_exactly(runlens.read_scalars(logdir, cache=cache), first)
    assert parsed_bytes["bytes"] == 0
    monkeypatch.chdir(parent)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    outputs = []
    for _ in range(2):  # the second from the cache: relative paths in the pack, the same lines
        result = CliRunner().invoke(main, ["ls", "logs", "--cache"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "points in" in outputs[0] and "not an event file" in outputs[0] and outputs[1] == outputs[0]
    assert parsed_bytes["bytes"] == sum(f.stat().st_size for f in writers.event_files(logdir))  # once


def test_a_remote_logdir_is_cached_by_size_and_version(logdir, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs, cache = fsspec.filesystem("memory"), tmp_path / "cache"
    for path in writers.event_files(logdir):
        fs.put_file(str(path), f"/cached/{path.relative_to(logdir).as_posix()}")
    try:
        first = runlens.read_scalars("memory://cached", cache=cache)
        entries = ScalarCache(cache).open("memory://cached").entries
        assert len(entries) == len(writers.event_files(logdir))
        assert all(len(e.signature) == 2 and isinstance(e.signature[1], str) for e in entries.values())
        assert_exactly(runlens.read_scalars("memory://cached", cache=cache), first)
        changed = next(iter(entries)).removeprefix("memory://")
        fs.pipe_file(changed, fs.cat_file(changed) + b"\0" * 10)  # a new size: read again
        assert_exactly(
            runlens.read_scalars("memory://cached", cache=cache), runlens.read_scalars("memory://cached")
        )
    finally:
        fs.rm("/cached", recursive=True)


def test_without_posix_file_calls_cache_is_a_clear_error(logdir, tmp_path, monkeypatch):
    monkeypatch.setattr("runlens.events.cache.SUPPORTED", False)  # as on Windows
    with pytest.raises(runlens.RunlensError, match="cache=: the scalar cache needs a POSIX system"):
        runlens.read_scalars(logdir, cache=tmp_path / "cache")
    result = CliRunner().invoke(main, ["ls", str(logdir), "--cache"])
    assert result.exit_code == 2 and result.output.startswith("Error: cache=")
