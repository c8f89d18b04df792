"""A checkpoint -- a Keras file or an HF Trainer folder -- is judged through the one descriptor
opened for it, never through a symlink, and one that changes while it is read is "cannot tell"
(``runlens.checkpoints.validate.inspect_held``, which ``inspect_file`` and ``inspect_hf_folder``
share). Real ModelCheckpoint and Trainer output; the changes are real writes made while the
verdict is being read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runlens.checkpoints.folders import folder_identity
from runlens.checkpoints.hf_folder import check_hf_folder, inspect_hf_folder
from runlens.checkpoints.nofollow import DIR_FLAGS, FileIdentity, open_regular
from runlens.checkpoints.validate import check_open, inspect_file, inspect_held

CHANGED = "changed while being read (still being written?)"


def a_keras_file(folder) -> Path:
    return folder.files("every")[0]


def an_hf_folder(hf_copy: Path) -> Path:
    return sorted(hf_copy.glob("checkpoint-*"))[-1]


def file_identity(fd: int) -> FileIdentity:
    return FileIdentity.of(os.fstat(fd))


def test_a_whole_file_and_folder_are_valid_with_the_identity_read(folder, hf_copy):
    path = a_keras_file(folder)
    identity, verdict = inspect_file(str(path), "keras")
    assert verdict.valid, verdict.reason
    assert identity == FileIdentity.of(os.stat(path))
    checkpoint = an_hf_folder(hf_copy)
    identity, verdict = inspect_hf_folder(str(checkpoint))
    assert verdict.valid, verdict.reason
    fd = os.open(checkpoint, DIR_FLAGS)
    try:
        assert identity == folder_identity(fd)
    finally:
        os.close(fd)


def test_symlinks_are_not_opened(folder, hf_copy, tmp_path):
    (tmp_path / "file_link.keras").symlink_to(a_keras_file(folder))
    (tmp_path / "folder_link").symlink_to(an_hf_folder(hf_copy), target_is_directory=True)
    for identity, verdict in [
        inspect_file(str(tmp_path / "file_link.keras"), "keras"),
        inspect_hf_folder(str(tmp_path / "folder_link")),
    ]:
        assert identity is None
        assert (verdict.valid, verdict.checkpoint) == (False, None)
        assert verdict.reason.startswith("cannot open: ")


def test_a_fifo_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.keras")
    identity, verdict = inspect_file(str(tmp_path / "pipe.keras"), "keras")
    assert identity is None and verdict.reason.startswith("cannot open: ")


def test_a_file_written_to_while_it_is_read_cannot_be_told(folder):
    path = a_keras_file(folder)

    def check_while_appending(fd: int, identity: FileIdentity):
        with os.fdopen(fd, "rb", closefd=False) as file:
            verdict = check_open(file, "keras", identity.size)
        with open(path, "ab") as writer:  # another process saving into the same file
            writer.write(b"\0")
        return verdict

    before = FileIdentity.of(os.stat(path))
    identity, verdict = inspect_held(lambda: open_regular(str(path))[0], file_identity, check_while_appending)
    assert identity == before
    assert (verdict.valid, verdict.reason, verdict.checkpoint) == (False, CHANGED, None)


def test_a_folder_written_to_while_it_is_read_cannot_be_told(hf_copy):
    checkpoint = an_hf_folder(hf_copy)

    def check_while_saving(fd: int, _identity) -> object:
        verdict = check_hf_folder(fd)
        (checkpoint / "optimizer.pt").write_bytes(b"more")  # the Trainer still saving
        return verdict

    identity, verdict = inspect_held(
        lambda: os.open(checkpoint, DIR_FLAGS), folder_identity, check_while_saving
    )
    assert identity is not None
    assert (verdict.valid, verdict.reason, verdict.checkpoint) == (False, CHANGED, None)


def test_a_read_error_is_cannot_read_and_the_descriptor_is_closed(folder):
    path = a_keras_file(folder)
    opened = []

    def open_it() -> int:
        opened.append(open_regular(str(path))[0])
        return opened[-1]

    def fail(fd: int, _identity) -> object:
        raise IsADirectoryError(21, "Is a directory")  # what reading a descriptor can raise

    identity, verdict = inspect_held(open_it, file_identity, fail)
    assert identity is None
    assert (verdict.valid, verdict.reason, verdict.checkpoint) == (False, "cannot read: Is a directory", None)
    with pytest.raises(OSError):  # closed (nothing else opened a file in between)
        os.fstat(opened[0])
