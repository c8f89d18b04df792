"""runlens.json: schema checks, atomic writes (a writer killed at any moment leaves a valid file),
non-finite floats, finding manifests. No TensorFlow here: the bundle's real manifests are checked
in tests/test_keras_*.py."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import runlens
from runlens.manifest import MANIFEST_NAME, find_manifests, write_manifest


def _manifest(n: int = 2, **changes) -> dict:
    entries = [
        {
            "epoch": e,
            "wall_time": 1000.0 + e,
            "logs": {"loss": 1.0 / (e + 1), "val_loss": 0.5},
            "learning_rate": 0.1,
            "early_stopping": {"wait": e, "best": 0.5, "best_epoch": 0},
            "reduce_lr": None,
            "checkpoint": f"checkpoints/epoch_{e + 1:03d}.keras",
        }
        for e in range(n)
    ]
    manifest = {
        "schema": "runlens-manifest",
        "schema_version": 1,
        "run_dir": "/runs/a",
        "status": "running",
        "ended_normally": False,
        "started_at": "2026-01-01T00:00:00.000+00:00",
        "updated_at": "2026-01-01T00:01:00.000+00:00",
        "ended_at": None,
        "versions": {"runlens": "0.1.0"},
        "process": {"pid": 1, "host": "h"},
        "config": {
            "monitor": "val_loss",
            "mode": "auto",
            "direction": "min",
            "early_stopping": {},
            "reduce_lr": None,
            "keep_best": 3,
            "keep_last": 1,
            "checkpoint_template": "epoch_{epoch:03d}.keras",
        },
        "hparams": {"units": 8},
        "attempts": [],
        "epochs_trained": n,
        "last_epoch": n - 1 if n else None,
        "epochs": entries,
        "early_stopping": {
            "stopped_epoch": None,
            "best_epoch": 0,
            "best_value": 0.5,
            "restored": None,
            "restored_epoch": None,
        },
        "reduce_lr": None,
        "checkpoints": {"folder": "checkpoints", "kept": []},
    }
    manifest.update(changes)
    return manifest


def test_write_then_read_round_trips_with_non_finite_floats(tmp_path):
    m = _manifest()
    m["epochs"][1]["logs"] = {"loss": math.nan, "val_loss": math.inf, "accuracy": -math.inf}
    m["early_stopping"]["best_value"] = math.nan
    path = write_manifest(tmp_path, m)
    assert path == tmp_path / MANIFEST_NAME
    json.loads(path.read_text())  # strict JSON: no bare NaN/Infinity
    assert '"NaN"' in path.read_text()
    back = runlens.read_manifest(tmp_path)
    logs = back["epochs"][1]["logs"]
    assert math.isnan(logs["loss"]) and logs["val_loss"] == math.inf and logs["accuracy"] == -math.inf
    assert math.isnan(back["early_stopping"]["best_value"])
    assert back["epochs"][0] == m["epochs"][0] and back["hparams"] == {"units": 8}
    assert runlens.read_manifest(path)["status"] == "running"  # the file itself works too
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temporary file left


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "other"}', "'schema' is not 'runlens-manifest'"),
        (json.dumps(_manifest(schema_version=2)), "newer than this runlens reads"),
        (json.dumps({k: v for k, v in _manifest().items() if k != "epochs"}), "'epochs' is missing"),
        (json.dumps(_manifest(status="exploded")), "'status' 'exploded' is not one of"),
        (json.dumps(_manifest(epochs_trained=True)), "'epochs_trained' is True, expected int"),
        (json.dumps(_manifest(epochs=[{"epoch": "0"}])), "'epochs[0].epoch' is '0', expected int"),
    ],
)
def test_damaged_or_foreign_manifests_are_errors_naming_the_file(tmp_path, content, message):
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(runlens.RunlensError, match=re.escape(message)) as info:
        runlens.read_manifest(tmp_path)
    assert str(tmp_path / MANIFEST_NAME) in str(info.value)


def test_a_manifest_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    (tmp_path / MANIFEST_NAME).write_bytes(json.dumps(_manifest()).encode()[:-1] + b'"\xff"}')
    with pytest.raises(runlens.RunlensError, match="not valid JSON") as info:
        runlens.read_manifest(tmp_path)
    assert str(tmp_path / MANIFEST_NAME) in str(info.value)


def test_a_huge_or_deeply_nested_file_planted_as_runlens_json_is_refused_not_loaded(tmp_path, monkeypatch):
    """A file past MAX_MANIFEST_BYTES is not read whole (a 50 GB file there would fill memory);
    JSON nested 100,000 deep raises RecursionError in json.loads: both are errors naming the file."""
    import runlens.manifest as manifest

    path = tmp_path / MANIFEST_NAME
    text = json.dumps(_manifest())
    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", len(text))
    path.write_text(text)
    assert runlens.read_manifest(tmp_path)["schema"] == "runlens-manifest"  # at the limit: read
    path.write_text(text + " ")
    with pytest.raises(runlens.RunlensError, match="not a manifest runlens writes") as info:
        runlens.read_manifest(tmp_path)
    assert str(path) in str(info.value)
    monkeypatch.undo()
    path.write_text("[" * 100_000)
    with pytest.raises(runlens.RunlensError, match="nested too deeply") as info:
        runlens.read_manifest(tmp_path)
    assert str(path) in str(info.value)


def test_a_fifo_planted_as_runlens_json_is_refused_not_waited_on(tmp_path):
    """Reading a FIFO blocks until something writes to it: a report of a logdir with one planted
    as a run's runlens.json hung for ever. It is refused, and the report names it (a process with
    a timeout: a regression hangs no test run)."""
    import shutil
    from pathlib import Path

    logdir = tmp_path / "logs"
    shutil.copytree(Path(__file__).resolve().parent.parent / "sample_logs" / "plateau", logdir / "plateau")
    (logdir / "plateau" / MANIFEST_NAME).unlink()
    os.mkfifo(logdir / "plateau" / MANIFEST_NAME)
    done = subprocess.run(
        [sys.executable, "-m", "runlens", "report", str(logdir)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"{logdir / 'plateau' / MANIFEST_NAME}: cannot be read (not a regular file (a FIFO))" in done.stdout
    )
    with pytest.raises(runlens.RunlensError, match="not a regular file"):  # not waited on: see above
        runlens.read_manifest(logdir / "plateau")


def test_a_missing_manifest_says_where_one_comes_from(tmp_path):
    with pytest.raises(runlens.RunlensError, match="runlens.keras.callbacks"):
        runlens.read_manifest(tmp_path)


def test_a_failed_write_leaves_the_previous_manifest(tmp_path):
    write_manifest(tmp_path, _manifest(n=1))
    broken = _manifest(n=2, hparams={"units": object()})  # not JSON-serialisable
    with pytest.raises(TypeError):
        write_manifest(tmp_path, broken)
    assert runlens.read_manifest(tmp_path)["epochs_trained"] == 1


_WRITER = """
import sys
from runlens.manifest import write_manifest
sys.path.insert(0, {tests!r})
from test_manifest import _manifest
write_manifest({folder!r}, _manifest(n=0))  # its first write imports what writing needs
print("ready", flush=True)
n = 1
while True:
    write_manifest({folder!r}, _manifest(n=n % 300))
    n += 1
"""


def test_a_writer_killed_at_any_moment_leaves_a_valid_manifest(tmp_path):
    # kill -9 a process that rewrites the manifest in a loop, at varied moments: every time the
    # file left behind is a complete manifest (old or new), never a mix or a partial file.
    code = _WRITER.format(tests=os.path.dirname(__file__), folder=str(tmp_path))
    counts = set()
    for delay in (0.05, 0.11, 0.17, 0.23, 0.31):
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        counts.add(runlens.read_manifest(tmp_path)["epochs_trained"])
    assert len(counts) > 1  # the kills landed at different points of the loop


def test_find_manifests_names_runs_as_read_epochs_does(tmp_path):
    for run in ("a", "b/c"):
        (tmp_path / run).mkdir(parents=True)
        write_manifest(tmp_path / run, _manifest())
    (tmp_path / "d").mkdir()
    assert find_manifests(tmp_path) == {
        "a": tmp_path / "a" / MANIFEST_NAME,
        "b/c": tmp_path / "b/c" / MANIFEST_NAME,
    }
    assert find_manifests(tmp_path / "a") == {".": tmp_path / "a" / MANIFEST_NAME}
