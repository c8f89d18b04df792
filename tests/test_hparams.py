"""read_hparams on hparams written by others: tensorboardX add_hparams, TensorBoard's own hparams
API inside Keras' layout, resumed runs, damaged files. (The bundle's own round trip is in
tests/test_keras_early_stop.py.)"""

from __future__ import annotations

import warnings

import pandas
import pytest
import writers

import runlens


@pytest.fixture(scope="module")
def tf_hparams_logdir(tmp_path_factory):
    """``exp1``: TensorBoard's ``hp.hparams`` in a Keras-layout run's train writer, written twice
    (a resumed run) with a scalar next to it; ``exp2``: ``hp.hparams`` in a writer at the run
    folder, other values and kinds; ``plain``: scalars only."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    root = tmp_path_factory.mktemp("tf_hparams")

    def write(folder, hparams):
        writer = tf.summary.create_file_writer(str(folder))
        with writer.as_default():
            hp.hparams(hparams)
            tf.summary.scalar("epoch_loss", 0.5, step=0)
        writer.close()

    write(root / "exp1" / "train", {"lr": 0.1, "units": 8, "optimizer": "sgd", "bn": True})
    write(root / "exp1" / "train", {"lr": 0.05, "units": 8, "optimizer": "sgd", "bn": True})
    write(root / "exp2", {"lr": 0.2, "units": 16, "optimizer": "adam", "dropout": 0.3})
    writers.write_tf2_scalars(root / "plain")
    return root


def test_tensorboardx_add_hparams(tmp_path):
    writers.write_tensorboardx(tmp_path)
    hp = runlens.read_hparams(tmp_path)
    assert hp.to_dict("records") == [{"run": "hparams", "lr": 0.1, "units": 8.0}]


def test_tensorboard_hparams_api_in_keras_layout_and_at_the_run(tf_hparams_logdir):
    hp = runlens.read_hparams(tf_hparams_logdir).set_index("run")
    assert list(hp.index) == ["exp1", "exp2"]  # train/ belongs to its run; 'plain' has none
    assert list(hp.columns) == ["bn", "dropout", "lr", "optimizer", "units"]
    assert hp.loc["exp1", "lr"] == 0.05  # written twice: the last one wins
    assert (hp.loc["exp1", "optimizer"], hp.loc["exp2", "optimizer"]) == ("sgd", "adam")
    assert hp.loc["exp1", "bn"] == True and hp.loc["exp2", "bn"] is pandas.NA  # noqa: E712
    assert hp.loc["exp2", "dropout"] == 0.3 and hp.loc["exp1", "dropout"] is pandas.NA
    dtypes = {k: str(v) for k, v in hp.dtypes.items()}
    assert dtypes == {
        "bn": "boolean",
        "dropout": "Float64",
        "lr": "Float64",
        "optimizer": "string",
        "units": "Float64",
    }


def test_runs_filter_and_no_hparams(tf_hparams_logdir):
    assert list(runlens.read_hparams(tf_hparams_logdir, runs="exp2")["run"]) == ["exp2"]
    none = runlens.read_hparams(tf_hparams_logdir, runs="plain")
    assert list(none.columns) == ["run"] and none.empty
    with pytest.raises(runlens.RunlensError, match="no such file or folder"):
        runlens.read_hparams(tf_hparams_logdir / "exp1" / "nothing-here-yet")


def test_a_damaged_file_keeps_what_is_intact_and_warns(tf_hparams_logdir, copy_logdir):
    root = copy_logdir(tf_hparams_logdir)
    _first, second = writers.event_files(root / "exp1" / "train")
    spans = writers.record_spans(second)
    hparams_record = next(s for s in spans if b"_hparams_" in second.read_bytes()[s.payload : s.end])
    writers.flip_bit(second, hparams_record.payload + 5)  # its payload CRC now fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hp = runlens.read_hparams(root).set_index("run")
    assert hp.loc["exp1", "lr"] == 0.1  # the damaged second session is skipped: the first stays
    assert any(issubclass(w.category, runlens.DamagedDataWarning) for w in caught)
    assert [p["kind"] for p in hp.attrs["problems"]] == ["bad-payload-crc"]


@pytest.mark.parametrize("cache", [False, True])
def test_the_read_of_a_logdir_marks_the_files_holding_hparams(tf_hparams_logdir, tmp_path, cache):
    """The report takes the hparams files from its read's plugin marks (no second listing, no
    byte scan): they give read_hparams' frame, on TensorBoard's own hparams API (a resumed run's
    two sessions in one file) and tensorboardX's add_hparams, read fresh or from the cache."""
    from runlens.events.logdir import read_logdir
    from runlens.hparams import PLUGIN_NAME, SESSION_START_TAG, hparams_of_files

    writers.write_tensorboardx(tmp_path / "tbx")
    for root in (tf_hparams_logdir, tmp_path / "tbx"):
        for _ in range(2 if cache else 1):  # the second read comes from the pack
            _, found = read_logdir(root, cache=tmp_path / "cache" if cache else None)
            files = found.files_with(SESSION_START_TAG, PLUGIN_NAME)
            assert files and found.complete
            assert {f.path for f in files} < {f.path for f in found.files}  # not every file
            pandas.testing.assert_frame_equal(hparams_of_files(files), runlens.read_hparams(root))


def test_hparams_read_in_worker_processes_give_the_same_frame(tf_hparams_logdir, copy_logdir, monkeypatch):
    """HParamsAhead (runlens report reads a sweep's hparams files in its read's workers): one
    file per task, so a resumed run's two files go to different workers and the last written must
    still win; a damaged file's warning comes in the caller's process, its problem in attrs."""
    from concurrent.futures import ProcessPoolExecutor

    import runlens.hparams as hparams
    from runlens.events.sources import find_event_files

    root = copy_logdir(tf_hparams_logdir)
    writers.flip_bit(writers.event_files(root / "exp2")[0], 30)  # within its first record
    files = find_event_files(root)
    monkeypatch.setattr(hparams, "_FILES_PER_TASK", 1)
    with ProcessPoolExecutor(2) as pool, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ahead = hparams.HParamsAhead(files, pool).frame()
        expected = hparams.hparams_of_files(files)
    pandas.testing.assert_frame_equal(ahead, expected)
    assert ahead.set_index("run").loc["exp1", "lr"] == 0.05
    assert ahead.attrs["problems"] == expected.attrs["problems"] != []
    damaged = [w for w in caught if issubclass(w.category, runlens.DamagedDataWarning)]
    assert len(damaged) == 2  # once from each read, in this process


def test_small_files_framed_together_read_as_each_file_on_its_own(tf_hparams_logdir, copy_logdir, tmp_path):
    """sessions_of_files frames small files in batches: over intact, resumed (two files of one
    run), tensorboardX, truncated, bit-flipped, empty and garbage files and one above the
    whole-file size, it gives what reading each file on its own gives, problems in file order."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    import runlens.hparams as hparams
    from runlens.events.files import WHOLE_FILE_BYTES

    root = copy_logdir(tf_hparams_logdir)
    writers.write_tensorboardx(root / "tbx")
    big = root / "big"
    writer = tf.summary.create_file_writer(str(big))
    with writer.as_default():
        hp.hparams({"lr": 0.3})
        for step in range(WHOLE_FILE_BYTES // 40):
            tf.summary.scalar("epoch_loss", 0.5, step=step)
    writer.close()
    assert writers.event_files(big)[0].stat().st_size > WHOLE_FILE_BYTES
    for name in ("truncated", "flipped"):
        writers.write_tensorboardx(root / name)
    truncated = writers.event_files(root / "truncated")[-1]
    writers.truncate(truncated, truncated.stat().st_size - 3)
    flipped = writers.event_files(root / "flipped")[-1]
    writers.flip_bit(flipped, flipped.stat().st_size - 10)
    writers.write_empty(root / "empty")
    writers.write_garbage(root / "garbage")
    paths = [str(p) for p in sorted(root.rglob("events.out.tfevents*"))]
    assert len(paths) >= 9

    expected_problems: list = []
    expected = [hparams._sessions(p, expected_problems, None) for p in paths]
    for at in range(len(paths)):  # each file first in line, so every kind starts a batch once
        order = paths[at:] + paths[:at]
        got, problems = hparams.sessions_of_files(order)
        assert got == expected[at:] + expected[:at]
        assert sorted(p.message for p in problems) == sorted(p.message for p in expected_problems)
        assert [p.path for p in problems] == [
            p.path for p in sorted(problems, key=lambda p: order.index(p.path))
        ]
    assert sum(map(len, expected)) >= 5 and len(expected_problems) >= 3


def test_hparams_read_ahead_and_not_needed_are_cancelled(tf_hparams_logdir, monkeypatch):
    """A report without Keras runs takes no hparams: the tasks no worker started are dropped."""
    import threading
    from concurrent.futures import CancelledError, ThreadPoolExecutor

    import runlens.hparams as hparams
    from runlens.events.sources import find_event_files

    monkeypatch.setattr(hparams, "_FILES_PER_TASK", 1)
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(release.wait)  # the only worker is busy
        ahead = hparams.HParamsAhead(find_event_files(tf_hparams_logdir), pool)
        ahead.cancel()
        release.set()
        with pytest.raises(CancelledError):
            ahead.frame()
