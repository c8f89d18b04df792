"""Reading through any concurrent.futures.Executor (a real Dask LocalCluster), and from remote
filesystems through fsspec: its memory filesystem and a real S3-compatible server on loopback."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import writers

import runlens


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def mixed_logdir(tf_logdir, simple_value_logdir, keras_resumed_run, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(tf_logdir.path, root / "tf")
    shutil.copytree(simple_value_logdir.path, root / "sv")
    shutil.copytree(keras_resumed_run.path, root / "resumed", ignore=shutil.ignore_patterns("backup"))
    return root


def test_any_executor_gives_the_serial_result(mixed_logdir):
    with ThreadPoolExecutor(2) as pool:
        assert_same(
            runlens.read_scalars(mixed_logdir, executor=pool), runlens.read_scalars(mixed_logdir, workers=1)
        )


def test_a_real_dask_cluster_gives_the_serial_result(mixed_logdir):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        frame = runlens.read_scalars(mixed_logdir, executor=client.get_executor())
        epochs = runlens.read_epochs(mixed_logdir / "resumed", executor=client.get_executor())
    assert_same(frame, runlens.read_scalars(mixed_logdir, workers=1))
    pd.testing.assert_frame_equal(epochs, runlens.read_epochs(mixed_logdir / "resumed"))


def upload(fs, local, remote):
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{remote}/{path.relative_to(local).as_posix()}")


def test_fsspec_memory_filesystem(mixed_logdir):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    upload(fs, mixed_logdir, "/logs")
    try:
        remote = runlens.read_scalars("memory://logs")
        local = runlens.read_scalars(mixed_logdir)
        assert_same(remote, local)  # same runs, tags, values, order
        one = writers.event_files(mixed_logdir / "tf" / "tf2")[0]
        single = runlens.read_scalars(f"memory://logs/tf/tf2/{one.name}")
        assert set(single["run"].astype(str)) == {"."}
        with pytest.raises(runlens.RunlensError, match="no such file or folder"):
            runlens.read_scalars("memory://nothing/here")
    finally:
        fs.rm("/logs", recursive=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible HTTP server (moto's server mode) on loopback, started and stopped here."""
    server_module = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"},
    }
    yield options
    server.stop()


def test_s3_logdir_streamed_from_a_real_server(mixed_logdir, s3_server):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    fs.mkdir("runs-bucket")
    upload(fs, mixed_logdir, "runs-bucket/logs")
    remote = runlens.read_scalars("s3://runs-bucket/logs", storage_options=s3_server)
    assert_same(remote, runlens.read_scalars(mixed_logdir))
    epochs = runlens.read_epochs("s3://runs-bucket/logs/resumed", storage_options=s3_server, cache=False)
    pd.testing.assert_frame_equal(epochs, runlens.read_epochs(mixed_logdir / "resumed"))


def test_a_read_ahead_gives_the_serial_result_from_the_reads_it_started(mixed_logdir):
    from runlens.events.read_ahead import ReadAhead

    with ReadAhead(mixed_logdir) as ahead:
        started = dict(ahead._started)
        assert started  # every task was submitted when the read-ahead was made
        frame = runlens.read_scalars(mixed_logdir, executor=ahead)
        assert not ahead._started  # ... and the read took those, none was read twice
    assert_same(frame, runlens.read_scalars(mixed_logdir, workers=1))
    assert frame.attrs == runlens.read_scalars(mixed_logdir, workers=1).attrs


def test_a_read_ahead_reads_the_files_it_listed_and_anything_else_it_is_asked(tmp_path, mixed_logdir):
    import shutil

    from runlens.events.read_ahead import ReadAhead

    root = tmp_path / "growing"
    shutil.copytree(mixed_logdir / "tf", root / "tf")
    alone = runlens.read_scalars(root, workers=1)
    with ReadAhead(root) as ahead:
        shutil.copytree(mixed_logdir / "sv", root / "sv")  # a run added after the read-ahead listed
        assert_same(runlens.read_scalars(root, executor=ahead), alone)  # read as listed then
        # another selection than the one it listed for: listed and read anew, by its workers
        assert_same(
            runlens.read_scalars(root, runs="sv*", executor=ahead), runlens.read_scalars(root, runs="sv*")
        )

    with ReadAhead(tmp_path / "missing") as ahead, pytest.raises(runlens.RunlensError, match="no such file"):
        runlens.read_scalars(tmp_path / "missing", executor=ahead)


def test_a_process_running_tensorflow_reads_in_workers_it_does_not_fork(mixed_logdir):
    # forking a process whose libraries run threads can leave the child holding their locks
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import pandas as pd
        import runlens
        from runlens.events.read_ahead import ReadAhead
        from runlens.processes import ForkedPool, fork_is_safe, worker_context
        assert fork_is_safe() and worker_context().get_start_method() == "fork"
        serial = runlens.read_scalars({str(mixed_logdir)!r}, workers=1)
        with ReadAhead({str(mixed_logdir)!r}) as ahead:  # its workers: one start, forked
            assert isinstance(ahead._pool, ForkedPool)
            pd.testing.assert_frame_equal(runlens.read_scalars({str(mixed_logdir)!r}, executor=ahead), serial)
        pd.testing.assert_frame_equal(runlens.read_scalars({str(mixed_logdir)!r}, workers=2), serial)
        import tensorflow
        assert not fork_is_safe() and worker_context().get_start_method() == "forkserver"
        with ReadAhead({str(mixed_logdir)!r}) as ahead:  # its worker: from the fork server
            assert ahead._pool._mp_context.get_start_method() == "forkserver"
            pd.testing.assert_frame_equal(runlens.read_scalars({str(mixed_logdir)!r}, executor=ahead), serial)
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("ok")
