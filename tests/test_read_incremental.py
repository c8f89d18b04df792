"""The scalar cache is never stale: files appended to, truncated, replaced and rewritten between
reads give exactly what a cold read gives, and only new bytes are parsed for a growing file."""

from __future__ import annotations

import io
import os
import shutil
import time
import warnings

import pandas as pd
import pytest
import writers

import runlens
from runlens.events import files as files_module
from runlens.events.cache import ScalarCache


def cold(path, **options):
    return runlens.read_scalars(path, **options)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert a.attrs["problems"] == b.attrs["problems"]


@pytest.fixture
def logdir(simple_value_logdir, tf_logdir, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(simple_value_logdir.path, root / "sv")
    shutil.copytree(tf_logdir.path / "tf2", root / "tf2")
    return root


@pytest.fixture
def parsed_bytes(monkeypatch):
    """Counts how many bytes the reader reads from event files (to prove what a cached read parses)."""
    counter = {"bytes": 0}
    original = files_module.open_binary

    class Counting(io.BufferedReader):
        def read(self, size=-1):
            data = super().read(size)
            counter["bytes"] += len(data)
            return data

    def counting(path, storage_options=None):
        stream = original(path, storage_options)
        return Counting(stream.detach()) if isinstance(stream, io.BufferedReader) else stream

    monkeypatch.setattr(files_module, "open_binary", counting)
    return counter


def age(path, seconds=60):
    """Make every file look written ``seconds`` ago (outside the cache's racy window)."""
    stamp = time.time() - seconds
    for p in path.rglob("*"):
        os.utime(p, (stamp, stamp))


def test_an_unchanged_logdir_is_served_from_the_cache(logdir, tmp_path, parsed_bytes):
    age(logdir)
    cache = tmp_path / "cache"
    first = runlens.read_scalars(logdir, cache=cache)
    assert parsed_bytes["bytes"] > 0
    parsed_bytes["bytes"] = 0
    second = runlens.read_scalars(logdir, cache=cache)
    assert parsed_bytes["bytes"] == 0
    assert_same(first, second)
    assert_same(second, cold(logdir))


def test_a_logdir_of_many_files_is_one_pack_and_filtered_reads_keep_each_others_entries(
    logdir, tmp_path, parsed_bytes
):
    age(logdir)
    cache = tmp_path / "cache"
    only_sv = runlens.read_scalars(logdir, runs="sv*", cache=cache)
    assert len(writers.event_files(logdir)) > 2 and len(list(cache.rglob("*.pack"))) == 1
    sv_bytes = parsed_bytes["bytes"]
    parsed_bytes["bytes"] = 0
    everything = runlens.read_scalars(logdir, cache=cache)  # the sv files come from the pack
    everything_bytes = sum(f.stat().st_size for f in writers.event_files(logdir))
    assert parsed_bytes["bytes"] == everything_bytes - sv_bytes
    parsed_bytes["bytes"] = 0
    again_sv = runlens.read_scalars(logdir, runs="sv*", cache=cache)
    only_tf2 = runlens.read_scalars(logdir, runs="tf2*", cache=cache)
    assert parsed_bytes["bytes"] == 0
    assert_same(again_sv, only_sv)
    assert_same(only_tf2, cold(logdir, runs="tf2*"))
    assert_same(everything, cold(logdir))


def test_a_growing_file_has_only_its_new_bytes_parsed(tmp_path, parsed_bytes):
    from tensorboardX import SummaryWriter

    logdir, cache = tmp_path / "run", tmp_path / "cache"
    writer = SummaryWriter(str(logdir), flush_secs=3600)
    for step in range(50):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.flush()
    first = runlens.read_scalars(logdir, cache=cache)
    size_before = writers.event_files(logdir)[0].stat().st_size
    for step in range(50, 80):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_scalar("new_tag", float(step), step)
    writer.flush()
    size_after = writers.event_files(logdir)[0].stat().st_size
    parsed_bytes["bytes"] = 0
    second = runlens.read_scalars(logdir, cache=cache)
    assert parsed_bytes["bytes"] == size_after - size_before
    assert len(second) > len(first)  # (tensorboardX flushes asynchronously: not all 60 may be there yet)
    assert_same(second, cold(logdir))
    writer.close()


def test_a_half_written_record_is_read_again_once_complete(tf_logdir, tmp_path):
    logdir, cache = tmp_path / "run", tmp_path / "cache"
    shutil.copytree(tf_logdir.path / "tf2", logdir)
    file = writers.event_files(logdir)[0]
    whole = file.read_bytes()
    spans = writers.record_spans(file)
    file.write_bytes(whole[: spans[-3].payload + 4])  # the writer is in the middle of a record
    with pytest.warns(runlens.DamagedDataWarning):
        partial = runlens.read_scalars(logdir, cache=cache)
    assert partial.attrs["problems"][0]["kind"] == "truncated"
    file.write_bytes(whole)  # ... and finished it, and two more
    complete = runlens.read_scalars(logdir, cache=cache)
    assert complete.attrs["problems"] == []
    assert_same(complete, cold(logdir))


@pytest.mark.parametrize("change", ["truncate", "replace", "rewrite_same_size", "append_garbage", "delete"])
def test_changed_files_are_never_served_stale(logdir, tmp_path, change):
    cache = tmp_path / "cache"
    age(logdir)
    runlens.read_scalars(logdir, cache=cache)
    file = writers.event_files(logdir / "tf2")[0]
    stat = file.stat()
    if change == "truncate":
        writers.truncate(file, stat.st_size // 2)
    elif change == "replace":  # a new file under the same name (new inode)
        other = writers.event_files(logdir / "sv" / "raw")[0]
        tmp = file.with_suffix(".new")
        shutil.copy(other, tmp)
        os.replace(tmp, file)
    elif change == "rewrite_same_size":  # same inode, same size, old mtime put back: only ctime tells
        data = bytearray(file.read_bytes())
        spans = writers.record_spans(file)
        data[spans[3].payload : spans[3].end] = bytes(
            data[spans[4].payload : spans[4].payload + spans[3].end - spans[3].payload]
        )
        file.write_bytes(bytes(data))
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif change == "append_garbage":
        with open(file, "ab") as out:
            out.write(os.urandom(100))
    else:
        file.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runlens.DamagedDataWarning)  # damage is the same both ways
        assert_same(runlens.read_scalars(logdir, cache=cache), cold(logdir))


def test_a_corrupt_or_foreign_cache_entry_is_ignored(logdir, tmp_path):
    cache = tmp_path / "cache"
    age(logdir)
    runlens.read_scalars(logdir, cache=cache)
    for entry in (cache / "scalars").rglob("*.pack"):
        entry.write_bytes(b"not a pickle")
    with pytest.warns(runlens.CacheWarning, match="damaged"):
        assert_same(runlens.read_scalars(logdir, cache=cache), cold(logdir))


def test_the_cache_folder_is_safe_to_delete_and_defaults_under_xdg(logdir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ScalarCache().folder == tmp_path / "xdg" / "runlens"
    first = runlens.read_scalars(logdir, cache=True)
    assert any((tmp_path / "xdg" / "runlens").rglob("*.pack"))
    shutil.rmtree(tmp_path / "xdg")
    assert_same(runlens.read_scalars(logdir, cache=True), first)


def test_read_epochs_takes_the_cache_too(keras_run, tmp_path):
    cache = tmp_path / "cache"
    pd.testing.assert_frame_equal(
        runlens.read_epochs(keras_run.path, cache=cache), runlens.read_epochs(keras_run.path)
    )
    pd.testing.assert_frame_equal(
        runlens.read_epochs(keras_run.path, cache=cache), runlens.read_epochs(keras_run.path)
    )
