"""A file is a checkpoint only by its content: real Keras saves are, other HDF5 files and zips are
not, and damaged files nothing proves Keras wrote are never deleted (issue 15, item 1)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from checkpoint_damage import listed, read_damaged
from checkpoint_fits import KERAS_HDF5, OLD, keras_hdf5_once, write_data_h5
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runlens
from runlens.cli import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:keras.*"),
    pytest.mark.filterwarnings("ignore::UserWarning:tf_keras.*"),  # "HDF5 is legacy": we save it on purpose
]


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def age(*paths):
    for path in paths:
        os.utime(path, (OLD, OLD))


def skipped_by_name(table):
    return {os.path.basename(s["path"]): s for s in table.attrs["skipped"]}


def test_prediction_files_beside_keras_logs_are_never_deleted(folder):
    """The reported loss: predictions_NNN.h5 (HDF5 + an epoch in the name) in a run with logs."""
    run = folder.root / "exp"
    predictions = [write_data_h5(run / f"predictions_{i:03d}.h5", seed=i) for i in range(1, 11)]
    age(*predictions)
    before = {p: sha(p) for p in predictions}
    every = folder.files("every")
    result = CliRunner().invoke(
        main,
        [
            "checkpoints",
            "prune",
            str(run),
            "--keep-best",
            "2",
            "--keep-last",
            "1",
            "--monitor",
            "val_loss",
            "--apply",
        ],
    )
    assert result.exit_code == 0, result.output
    assert {p: sha(p) for p in predictions if p.exists()} == before  # none deleted, none changed
    assert "deleted" in result.output  # the real checkpoints were pruned
    assert not all(p.exists() for p in every)
    for path in predictions:
        assert f"skipped {path}: not a Keras checkpoint" in result.output


@pytest.fixture(scope="module")
def keras_hdf5(tmp_path_factory):
    return keras_hdf5_once(tmp_path_factory)


def test_every_hdf5_layout_real_keras_writes_is_a_valid_checkpoint(keras_hdf5, tmp_path):
    folder = Path(shutil.copytree(keras_hdf5, tmp_path / "saves"))
    with (
        h5py.File(folder / "k3_w.weights.h5") as src,
        h5py.File(folder / "ub.weights.h5", "w", userblock_size=512) as dst,
    ):
        for name in src:  # the same objects behind a 512-byte user block (HDF5 looks there too)
            src.copy(src[name], dst, name)
    table = runlens.read_checkpoints(folder)
    assert not table.attrs["skipped"]
    found = {os.path.basename(row["path"]): row for _, row in table.iterrows()}
    assert set(found) == {*KERAS_HDF5, "ub.weights.h5"}
    assert all(row["valid"] for row in found.values())
    # attribute values are never read (see the damaged-heap test below): no keras_version for HDF5
    assert table["keras_version"].isna().all()
    assert found["k3_w.weights.h5"]["kind"] == "weights" and found["tfk_w.h5"]["kind"] == "h5"


def test_files_that_are_not_keras_checkpoints_are_skipped_and_never_touched(folder):
    ckpts = folder.root / "exp" / "checkpoints"
    write_data_h5(ckpts / "predictions_003.h5")
    write_data_h5(ckpts / "dump_004.h5", userblock_size=512)
    write_data_h5(ckpts / "latest_005.h5", libver="latest")
    with h5py.File(ckpts / "vars_006.weights.h5", "w") as f:  # a 'vars' dataset, not Keras' group
        f["vars"] = np.arange(3)
    (ckpts / "notes_007.h5").write_text("not hdf5 at all" * 100)
    with zipfile.ZipFile(ckpts / "bundle_008.keras", "w") as zf:
        zf.writestr("data.csv", "a,b\n1,2\n")
    with zipfile.ZipFile(ckpts / "meta_009.keras", "w") as zf:  # named like Keras' members, not Keras'
        zf.writestr("metadata.json", json.dumps({"author": "me"}))
        zf.writestr("config.json", json.dumps([1, 2]))
        zf.writestr("model.weights.h5", b"x")
    (ckpts / "text_010.keras").write_text("a keras tutorial")
    with zipfile.ZipFile(ckpts / "nested_011.keras", "w") as zf:  # json.loads: RecursionError
        zf.writestr("metadata.json", "[" * 100_000)
        zf.writestr("config.json", "{" * 100_000)
        zf.writestr("model.weights.h5", b"x")
    others = sorted(
        p
        for p in ckpts.iterdir()
        if p.name.split("_")[0]
        in {"predictions", "dump", "latest", "vars", "notes", "bundle", "meta", "text", "nested"}
    )
    age(*others)
    before = {p: sha(p) for p in others}

    table = runlens.read_checkpoints(folder.root)
    assert not set(map(str, others)) & set(table["path"])
    skipped = skipped_by_name(table)
    for path in others:
        assert skipped[path.name]["category"] == "not a checkpoint", skipped[path.name]
        assert "never touched" in skipped[path.name]["reason"]
    assert "not an HDF5 file" in skipped["notes_007.h5"]["reason"]
    assert "metadata.json/config.json" in skipped["bundle_008.keras"]["reason"]

    plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(1, "val_loss")], min_age=0, delete_invalid=True)
    runlens.apply_prune(plan, folder.root)
    assert {p: sha(p) for p in others} == before


def test_a_cut_short_zip_whose_metadata_json_is_nested_too_deep_is_reported_not_a_crash(folder):
    """A zip whose central directory is gone is judged by its first member: a metadata.json that
    starts as Keras' and then nests 100,000 deep (json.loads raises RecursionError) is a damaged
    archive without a version, not a crash of the listing."""
    ckpts = folder.root / "exp" / "checkpoints"
    path = ckpts / "cut_012.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", '{"keras_version": "3.0.0", "nested": ' + "[" * 100_000)
        zf.writestr("model.weights.h5", b"x" * 4096)
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"PK\x01\x02")])  # the central directory cut off
    age(path)
    table = runlens.read_checkpoints(folder.root)
    [row] = table[table["path"] == str(path)].to_dict("records")
    assert not row["valid"] and "cut short while saving" in row["invalid_reason"]
    assert pd.isna(row["keras_version"])


def test_damaged_files_nothing_proves_keras_wrote_are_reported_and_never_deleted(folder, keras_hdf5):
    ckpts = folder.root / "exp" / "checkpoints"
    cut_weights = ckpts / "cut_011.weights.h5"
    shutil.copy(keras_hdf5 / "k3_w.weights.h5", cut_weights)
    os.truncate(cut_weights, cut_weights.stat().st_size * 2 // 3)  # HDF5 refuses it: cannot tell
    (ckpts / "empty_012.keras").write_bytes(b"")
    data = ckpts / "dump_013.h5"
    write_data_h5(data)
    os.truncate(data, data.stat().st_size // 2)
    foreign = ckpts / "foreign_014.keras"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("readme.txt", "x" * 1000)
        zf.writestr("data.bin", os.urandom(5000))
    os.truncate(foreign, foreign.stat().st_size - 200)  # its central directory cut off
    keras_cut = ckpts / "cut_015.keras"  # a real Keras save cut short: a checkpoint, invalid
    shutil.copy(folder.files("every")[0], keras_cut)
    os.truncate(keras_cut, keras_cut.stat().st_size // 2)
    undetermined = [cut_weights, ckpts / "empty_012.keras", data, foreign]
    age(*undetermined, keras_cut)
    before = {p: sha(p) for p in undetermined}

    table = runlens.read_checkpoints(folder.root)
    skipped = skipped_by_name(table)
    for path in undetermined:
        assert skipped[path.name]["category"] == "cannot tell", skipped[path.name]
        assert "never deleted" in skipped[path.name]["reason"]
    assert "truncated file" in skipped["cut_011.weights.h5"]["reason"]
    row = table.set_index("path").loc[str(keras_cut)]
    assert not row["valid"] and "cut short while saving" in row["invalid_reason"]

    result = CliRunner().invoke(
        main,
        ["checkpoints", "prune", str(folder.root), "--keep-best", "1", "--monitor", "val_loss"]
        + ["--min-age", "0", "--delete-invalid", "--apply"],
    )
    assert result.exit_code == 0, result.output
    assert {p: sha(p) for p in undetermined} == before
    assert not keras_cut.exists()  # --delete-invalid deletes damaged checkpoints, and only those
    for path in undetermined:
        assert f"skipped {path}: " in result.output


def test_shards_of_a_sharded_save_are_not_indexed(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((64,)), *[keras.layers.Dense(64) for _ in range(3)]])
    model.save_weights(str(tmp_path / "model.weights.json"), max_shard_size=2e-5)  # 20 kB shards
    shards = sorted(tmp_path.glob("model_*.weights.h5"))
    assert len(shards) > 1
    table = runlens.read_checkpoints(tmp_path)
    assert table.empty
    assert {s["category"] for s in table.attrs["skipped"]} == {"shard"}
    assert len(table.attrs["skipped"]) == len(shards)


def test_a_fifo_named_like_a_checkpoint_is_never_opened(folder):
    fifo = folder.root / "exp" / "checkpoints" / "pipe_01.keras"
    os.mkfifo(fifo)
    done = threading.Event()

    def read():
        runlens.read_checkpoints(folder.root)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(60):
        with open(fifo, "wb"):  # unblock the reader so the test process can end
            pass
        pytest.fail("read_checkpoints blocked on a FIFO")
    table = runlens.read_checkpoints(folder.root)
    assert skipped_by_name(table)["pipe_01.keras"]["category"] == "unreadable"


def damage_last_heap_object(path):
    """Make the size of the last object of the file's first HDF5 global heap collection (GCOL:
    variable-length strings such as keras_version, layer and weight names) 195 bytes too long.
    HDF5 (1.14, h5py 3.14) then loops forever when it reads a string value from that collection
    -- found by fuzzing real saves with flipped bytes, minimised to this one field."""
    data = bytearray(path.read_bytes())
    heap = data.find(b"GCOL")
    end = heap + struct.unpack_from("<Q", data, heap + 8)[0]
    at, last = heap + 16, None
    while at + 16 <= end:
        index, _, _, size = struct.unpack_from("<HHIQ", data, at)
        if index == 0:  # the free space that closes the collection
            break
        last, at = at, at + 16 + (size + 7) // 8 * 8
    struct.pack_into("<Q", data, last + 8, struct.unpack_from("<Q", data, last + 8)[0] + 195)
    path.write_bytes(bytes(data))


def test_a_damaged_hdf5_heap_that_hangs_the_hdf5_library_is_listed_without_reading_it(keras_hdf5, tmp_path):
    damaged = tmp_path / "model_01.h5"
    shutil.copy(keras_hdf5 / "k3_model.h5", damaged)
    damage_last_heap_object(damaged)
    code = (
        f"import runlens; t = runlens.read_checkpoints({str(tmp_path)!r}); print(len(t), t['valid'].tolist())"
    )
    try:  # in a process of its own: a hang would otherwise freeze the whole test run
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("read_checkpoints hung on an HDF5 file whose string heap is damaged")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "1"  # names and types are intact: a checkpoint (body unchecked)


@pytest.fixture(scope="module")
def saves(keras_hdf5, fitted):
    """Real saves of every kind: Keras 3 and tf-keras HDF5 files, a Keras 3 .keras archive."""
    return [(p.name, p.read_bytes()) for p in sorted(keras_hdf5.iterdir())] + [
        ("model_01.keras", fitted.files("every")[0].read_bytes())
    ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_real_save_is_reported_never_raised(saves, tmp_path_factory, data):
    table, path, _ = read_damaged(data, tmp_path_factory, saves, flips=(1, 30))
    assert listed(table) == [str(path)]  # in the table, or skipped with a reason: never an error
