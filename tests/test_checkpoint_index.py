"""read_checkpoints on real ModelCheckpoint output: names, runs, validity, symlinks, logs joined."""

from __future__ import annotations

import os
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
from checkpoint_fits import EPOCHS, TEMPLATES
from pandas.arrays import FloatingArray

import runlens
from runlens.checkpoints.join import join_epoch_metrics

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")


def without_logs(folder):
    for split in ("train", "validation"):
        shutil.rmtree(folder.root / "exp" / split)
    return folder


def rows(table, run, kind):
    return table[(table.run == run) & (table.kind == kind)].reset_index(drop=True)


def f32(value):
    return float(np.float32(value))  # TensorBoard stores float32; Keras' logs hold float32 values


def test_every_epoch_series_parsed_back_through_the_template(folder):
    table = runlens.read_checkpoints(without_logs(folder).root, template=list(TEMPLATES.values()))
    every = rows(table, "exp", "keras")
    assert every["epoch"].tolist() == list(range(EPOCHS))
    assert [os.path.basename(p) for p in every["path"]] == [folder.name_of("every", e) for e in range(EPOCHS)]
    expected = [float(format(folder.logs[e]["val_loss"], ".4f")) for e in range(EPOCHS)]
    assert every["val_loss"].tolist() == expected
    assert (every["metrics_from"] == "name").all()
    assert every["valid"].all() and (every["kind"] == "keras").all()


def test_save_best_only_and_weights_only_series(folder, fitted):
    table = runlens.read_checkpoints(without_logs(folder).root, template=list(TEMPLATES.values()))
    best = rows(table, "exp/best", "keras")
    assert best["epoch"].tolist() == fitted.best_epochs()
    assert len(best) < EPOCHS  # val_loss rose after a while: ModelCheckpoint stopped saving
    weights = rows(table, "exp", "weights")
    assert weights["epoch"].tolist() == list(range(EPOCHS))
    assert weights["valid"].all() and weights["keras_version"].isna().all()
    assert weights["val_loss"].tolist() == [
        float(format(fitted.logs[e]["val_loss"], ".2f")) for e in range(EPOCHS)
    ]


def test_columns_types_and_keras_metadata(folder):
    import keras

    table = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    assert table.columns[:3].tolist() == ["path", "run", "epoch"]
    assert str(table["epoch"].dtype) == "Int64" and str(table["val_loss"].dtype) == "Float64"
    assert table["size_bytes"].tolist() == [os.path.getsize(p) for p in table["path"]]
    assert (table["mtime"] == pd.Timestamp(1_000_000_000, unit="s", tz="UTC")).all()
    kerases = table[table.kind == "keras"]
    assert (kerases["keras_version"] == keras.__version__).all()
    now = pd.Timestamp.now(tz="UTC")  # .keras metadata holds local time: read_checkpoints makes it UTC
    assert (((now - kerases["saved_at"]) < pd.Timedelta(hours=1)) & (kerases["saved_at"] <= now)).all()
    assert str(table["mtime"].dtype) == str(table["saved_at"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(table.index, pd.RangeIndex)


def test_common_patterns_without_a_template(folder):
    shutil.copy(folder.files("every")[0], folder.root / "exp" / "checkpoints" / "final.keras")
    table = runlens.read_checkpoints(without_logs(folder).root)
    placed = table[table.epoch.notna()]
    assert len(placed) == 2 * EPOCHS + len(folder.best_epochs())
    assert rows(table, "exp", "weights")["epoch"].tolist() == list(range(EPOCHS))
    unplaced = table[table.epoch.isna()]
    assert [os.path.basename(p) for p in unplaced["path"]] == ["final.keras"]


def test_run_is_the_folder_or_the_parent_of_checkpoints(folder, tmp_path):
    one = folder.files("every")[0]
    (folder.root / "a" / "b").mkdir(parents=True)
    shutil.copy(one, folder.root / "a" / "b" / "x_01.keras")
    shutil.copy(one, folder.root / "top_01.keras")
    table = runlens.read_checkpoints(folder.root)
    assert set(table["run"]) == {".", "a/b", "exp", "exp/best"}
    inside = runlens.read_checkpoints(folder.root / "exp" / "checkpoints")
    assert set(inside["run"]) == {"."}
    single = runlens.read_checkpoints(one)
    assert len(single) == 1 and single["run"].tolist() == ["."]


def corrupt_member(path, member):
    """Flip one byte in the middle of a zip member's stored data (CRC no longer matches)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        middle = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
        f.seek(middle)
        byte = f.read(1)
        f.seek(middle)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_damaged_checkpoints_are_invalid_with_a_reason(folder):
    keras_files, weights = folder.files("every"), folder.files("weights")
    with open(keras_files[1], "r+b") as f:  # a save cut short: the central directory never written
        f.truncate(os.path.getsize(keras_files[1]) // 2)
    corrupt_member(keras_files[2], "model.weights.h5")
    with open(weights[3], "r+b") as f:
        f.truncate(os.path.getsize(weights[3]) * 2 // 3)
    open(keras_files[4], "wb").close()
    with (
        zipfile.ZipFile(keras_files[5]) as src,
        zipfile.ZipFile(keras_files[5].with_suffix(".tmp"), "w") as dst,
    ):
        for info in src.infolist():
            if info.filename != "config.json":
                dst.writestr(info, src.read(info))
    os.replace(keras_files[5].with_suffix(".tmp"), keras_files[5])

    table = runlens.read_checkpoints(folder.root).set_index("path")
    reason = table["invalid_reason"]
    assert "not a readable zip (cut short while saving?)" in reason[str(keras_files[1])]
    assert "model.weights.h5 fails its CRC check" in reason[str(keras_files[2])]
    assert "no config.json" in reason[str(keras_files[5])]
    damaged = [keras_files[i] for i in (1, 2, 5)]
    assert sorted(table.index[~table["valid"]]) == sorted(map(str, damaged))
    assert table.loc[table["valid"], "invalid_reason"].isna().all()
    # nothing in these two proves Keras wrote them any more: reported, never in the table
    skipped = {s["path"]: s for s in table.attrs["skipped"]}
    assert skipped[str(weights[3])]["category"] == skipped[str(keras_files[4])]["category"] == "cannot tell"
    assert "truncated file" in skipped[str(weights[3])]["reason"]
    assert "empty file" in skipped[str(keras_files[4])]["reason"]


def test_each_row_records_the_identity_of_its_file(folder):
    table = runlens.read_checkpoints(folder.root)
    for _, row in table.iterrows():
        info = os.lstat(row["path"])
        assert (row["device"], row["inode"], row["size_bytes"]) == (info.st_dev, info.st_ino, info.st_size)
        assert (row["mtime"].value, row["ctime"].value) == (info.st_mtime_ns, info.st_ctime_ns)
    assert str(table["inode"].dtype) == "uint64" and str(table["ctime"].dtype) == "datetime64[ns, UTC]"


def test_symlinks_are_never_followed_and_listed_as_skipped(folder, tmp_path):
    ckpts = folder.root / "exp" / "checkpoints"
    os.symlink(folder.files("every")[0], ckpts / "link_99.keras")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(folder.files("every")[0], outside / "far_01.keras")
    os.symlink(outside, folder.root / "exp" / "elsewhere")
    (ckpts / "notes.txt").write_text("not a checkpoint")
    table = runlens.read_checkpoints(folder.root)
    assert not any("link_99" in p or "far_01" in p or "notes" in p for p in table["path"])
    skipped = {os.path.basename(s["path"]): s["reason"] for s in table.attrs["skipped"]}
    assert set(skipped) == {"link_99.keras", "elsewhere"}
    assert all("symlink" in r for r in skipped.values())


def test_missing_path_and_non_checkpoint_file_are_usage_errors(tmp_path):
    with pytest.raises(runlens.RunlensError, match="does not exist") as info:
        runlens.read_checkpoints(tmp_path / "nope")
    assert info.value.exit_code == 2
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(runlens.RunlensError, match="notes.txt"):
        runlens.read_checkpoints(tmp_path / "notes.txt")
    assert runlens.read_checkpoints(tmp_path).empty


# ------------------------------------------------------------------ metrics from the logs


def epoch_frame(run, values, *, metric="val_loss", missing=()):
    """An epoch frame as read_epochs documents it; ``missing`` epochs have no value logged."""
    floats = np.array(values, dtype=float)
    mask = np.array([e in missing for e in range(len(values))])
    return pd.DataFrame(
        {
            "run": run,
            "epoch": np.arange(len(values), dtype="int64"),
            "wall_time": np.arange(len(values), dtype=float),
            metric: FloatingArray(floats, mask),
        }
    )


def test_join_prefers_logged_values_and_keeps_na_and_nan_apart(folder):
    table = runlens.read_checkpoints(without_logs(folder).root, template=list(TEMPLATES.values()))
    every = rows(table, "exp", "keras")
    logged = [0.71234567, np.nan, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    joined = rows(join_epoch_metrics(every, epoch_frame("exp", logged, missing={3})), "exp", "keras")
    assert joined.loc[0, "val_loss"] == 0.71234567  # full precision replaces the rounded name
    assert np.isnan(joined.loc[1, "val_loss"]) and not joined["val_loss"].isna()[1]  # a logged NaN
    assert joined.loc[3, "val_loss"] == every.loc[3, "val_loss"]  # not logged: the name's value
    assert (joined["metrics_from"] == "logs").all()
    assert joined.drop(columns=["val_loss", "metrics_from"]).equals(
        every.drop(columns=["val_loss", "metrics_from"])
    )


def test_join_pairs_single_runs_and_leaves_other_runs_alone(folder):
    table = runlens.read_checkpoints(
        without_logs(folder).root / "exp" / "checkpoints", template=list(TEMPLATES.values())
    )
    logs = epoch_frame("some/other/name", [0.9] * EPOCHS, metric="accuracy")
    joined = join_epoch_metrics(table, logs)
    assert (joined["accuracy"] == 0.9).all() and (joined["metrics_from"] == "logs").all()
    two_runs = pd.concat([logs, epoch_frame("x", [0.1] * EPOCHS, metric="accuracy")], ignore_index=True)
    assert join_epoch_metrics(table, two_runs)["accuracy"].isna().all()


def test_bundled_layout_joins_the_real_logs(folder):
    table = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    every = rows(table, "exp", "keras")
    assert (every["metrics_from"] == "logs").all()
    assert every["val_loss"].tolist() == [f32(folder.logs[e]["val_loss"]) for e in range(EPOCHS)]
    assert every["loss"].tolist() == [f32(folder.logs[e]["loss"]) for e in range(EPOCHS)]
    best = rows(table, "exp/best", "keras")  # a run the logs do not have: names only
    assert (best["metrics_from"] == "name").all()


def test_explicit_logdir_elsewhere(folder, tmp_path):
    logs = tmp_path / "logs"
    for split in ("train", "validation"):
        shutil.move(folder.root / "exp" / split, logs / split)
    ckpts = folder.root / "exp" / "checkpoints"
    assert (rows(runlens.read_checkpoints(ckpts), ".", "keras")["metrics_from"] != "logs").all()
    table = runlens.read_checkpoints(ckpts, template=list(TEMPLATES.values()), logdir=logs)
    assert rows(table, ".", "weights")["val_loss"].tolist() == [
        f32(folder.logs[e]["val_loss"]) for e in range(EPOCHS)
    ]
    with pytest.raises(runlens.RunlensError):
        runlens.read_checkpoints(ckpts, logdir=tmp_path / "no-logs-here")


def test_checks_in_worker_processes_give_the_table_checked_here(tmp_path):
    """read_checkpoints opens and checks a big folder's files in worker processes (a Lightning
    sweep's 6,000 .ckpt: the prune dry run 30 -> 19 s): the table, its skipped files and its
    framework records are those of the check here, damaged files included, and no file is
    opened here when workers check them."""
    from pathlib import Path

    import runlens.checkpoints.find as find
    from runlens.checkpoints.index import read_checkpoints

    root = tmp_path / "logs"
    shutil.copytree(Path(__file__).resolve().parent.parent / "sample_logs", root, symlinks=True)
    keras = sorted(root.rglob("*.keras"))
    with open(keras[0], "r+b") as f:  # a save cut short
        f.truncate(os.path.getsize(keras[0]) // 2)
    ckpt = sorted(root.rglob("*.ckpt"))[0]
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 3] ^= 0xFF  # a flipped bit in a member
    ckpt.write_bytes(bytes(data))
    (ckpt.parent / "epoch=9-step=99.ckpt").write_bytes(b"not a checkpoint at all")
    here = read_checkpoints(root, workers=1)
    parent = os.getpid()
    real = find.inspect_file

    def only_in_workers(*args, **kwargs):
        assert os.getpid() != parent, "a file was checked in the calling process"
        return real(*args, **kwargs)

    find.inspect_file = only_in_workers
    try:
        there = read_checkpoints(root, workers=2)
    finally:
        find.inspect_file = real
    pd.testing.assert_frame_equal(here, there)
    assert here.attrs == there.attrs
    assert (~here["valid"]).sum() >= 2 and here.attrs["skipped"] and here.attrs["framework_best"]
