"""``--trash``: move pruned checkpoints into a folder without ever writing through a symlink.

A trash folder may lie where other users can write (docs/checkpoints.md's own example is ``/tmp/old``),
so nothing in it is trusted:

- the path is resolved following only symlinks owned by this user or root (a symlink someone
  else planted at ``/tmp/old`` is refused), and must lie outside the checkpoint folder;
- the trash folder must not be writable by other users, unless it is sticky and this user's own
  (then others cannot rename or remove what runlens puts there); missing folders -- the trash and
  the sub-folders that keep each file's path relative to DIR -- are created with ``mkdir`` through
  the parent's descriptor (mode 0700), and every folder is opened with ``O_NOFOLLOW`` and must
  belong to this user and not be writable by others: a planted sub-folder or symlink refuses the
  prune before anything is removed;
- files are published with ``link`` (which never replaces an existing name; a taken name gets
  ``NAME (2).keras``) or, across filesystems, copied from the descriptor of the verified source
  into a new ``.NAME.XXXX.partial`` file created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, fsynced
  and linked into place; the source is removed only after that.
- a checkpoint folder is published by creating a free name with ``mkdir`` (exclusive: an existing
  name or a planted symlink is passed over, ``checkpoint-12 (2)``) and renaming the folder onto
  that empty folder of ours; across filesystems its tree is first copied through descriptors into
  a new ``.NAME.XXXX.partial`` folder (made with ``mkdir``, files with ``O_EXCL | O_NOFOLLOW``,
  symlinks copied as links, never followed), fsynced, then published the same way.

>>> trash = Trash.open("/tmp/old", root_real="/data/runs")     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass

from runlens.checkpoints.errors import PruneRefused
from runlens.checkpoints.folders import MAX_DEPTH, FolderTooDeep, remove_contents
from runlens.checkpoints.names import CHECKPOINT_SUFFIXES
from runlens.checkpoints.nofollow import (
    DIR_FLAGS,
    open_dir,
    open_real_dir,
    open_regular,
    resolve_trusted,
    writable_by_others,
)
from runlens.errors import RunlensError

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_MAX_TRIES = 10_000  # free names tried before giving up ("NAME (2).keras", "NAME (3).keras", ...)


@dataclass(frozen=True)
class Partial:
    """A complete copy in the trash under a temporary name, waiting to be published."""

    folder_fd: int
    name: str
    folder: str
    final: str


class Trash:
    """An open trash folder (see the module docstring); :meth:`close` when done."""

    def __init__(self, real: str) -> None:
        self.real = real
        self._fds: dict[str, int] = {}

    @classmethod
    def open(cls, trash: str | os.PathLike[str], *, root_real: str) -> Trash:
        """Check ``trash`` for a prune of ``root_real`` (nothing is created yet)."""
        shown = os.fspath(trash)
        try:
            real = resolve_trusted(os.path.abspath(shown))
        except OSError as exc:
            raise RunlensError(f"--trash {shown!r}: {exc.strerror or exc}; choose another folder") from exc
        if os.path.commonpath([real, root_real]) == root_real:
            raise RunlensError(
                f"--trash {shown!r} is inside the checkpoint folder; choose a folder outside it"
            )
        info = None
        if os.path.lexists(real):
            try:
                fd = open_real_dir(real)
            except OSError as exc:
                raise RunlensError(
                    f"--trash {shown!r} is not a folder runlens can open: {exc.strerror or exc}"
                ) from exc
            info = os.fstat(fd)
            os.close(fd)
        if info is not None and writable_by_others(info):
            raise RunlensError(
                f"--trash {shown!r}: other users can write in it; pass a folder only you can write "
                f"to (e.g. a new {os.path.join(shown, 'runlens-trash')!r}: runlens creates it)"
            )
        return cls(real)

    def prepare(self, folder: str) -> None:
        """Create (or check) the trash sub-folder for files of ``folder`` ('/'-separated,
        relative to DIR); :class:`PruneRefused` if any folder on the way is not safe to write in."""
        if folder in self._fds:
            return
        if not folder:
            self._root()
            return
        head, _, last = folder.rpartition("/")
        self.prepare(head)
        self._fds[folder] = self._child(self._fds[head], last, os.path.join(self.real, folder))

    def same_device(self, info: os.stat_result, folder: str) -> bool:
        """Whether a file with stat ``info`` lies on the filesystem of the trash's ``folder``."""
        return os.fstat(self._fds[folder]).st_dev == info.st_dev

    def move_in(
        self, src_dir_fd: int, src_name: str, src_fd: int, info: os.stat_result, folder: str, name: str
    ) -> str:
        """Hard-link the source into the trash under a free name (copy it where links fail)."""
        dest = self._fds[folder]
        for candidate in _free_names(name):
            try:
                os.link(src_name, candidate, src_dir_fd=src_dir_fd, dst_dir_fd=dest, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                return self.publish(self.copy_in(src_fd, info, folder, name))  # no hard links here
            os.fsync(dest)
            return os.path.join(self.real, folder, candidate)
        raise OSError(errno.EEXIST, f"no free name for {name} in the trash")

    def copy_in(self, src_fd: int, info: os.stat_result, folder: str, name: str) -> Partial:
        """A complete, fsynced copy of the open source in a new temporary file of the trash."""
        dest = self._fds[folder]
        for _ in range(_MAX_TRIES):
            partial = f".{name[:200]}.{secrets.token_hex(4)}.partial"
            try:
                out = os.open(partial, _NEW_FILE, 0o600, dir_fd=dest)
                break
            except FileExistsError:
                continue
        else:
            raise OSError(errno.EEXIST, f"no free temporary name for {name} in the trash")
        try:
            _copy_file(src_fd, out, info)
        except BaseException:
            os.close(out)
            os.unlink(partial, dir_fd=dest)
            raise
        os.close(out)
        return Partial(dest, partial, folder, name)

    def publish(self, partial: Partial) -> str:
        """Give a complete copy its final name (a free one: nothing is replaced)."""
        for candidate in _free_names(partial.final):
            try:
                os.link(partial.name, candidate, src_dir_fd=partial.folder_fd, dst_dir_fd=partial.folder_fd)
            except FileExistsError:
                continue
            except OSError as exc:  # a filesystem without hard links: rename onto a name seen free
                if exc.errno not in (errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                if _exists(candidate, partial.folder_fd):
                    continue
                os.rename(partial.name, candidate, src_dir_fd=partial.folder_fd, dst_dir_fd=partial.folder_fd)
            else:
                os.unlink(partial.name, dir_fd=partial.folder_fd)
            os.fsync(partial.folder_fd)
            return os.path.join(self.real, partial.folder, candidate)
        raise OSError(errno.EEXIST, f"no free name for {partial.final} in the trash")

    def discard(self, partial: Partial) -> None:
        """Remove a copy that will not be published."""
        with contextlib.suppress(OSError):
            os.unlink(partial.name, dir_fd=partial.folder_fd)

    def move_folder_in(self, src_dir_fd: int, src_name: str, folder: str, name: str) -> str:
        """Move the folder ``src_name`` (on the trash's filesystem) in under a free name."""
        return self._place_folder(src_dir_fd, src_name, self._fds[folder], folder, name)

    def copy_folder_in(self, src_fd: int, folder: str, name: str) -> Partial:
        """A complete, fsynced copy of the folder open at ``src_fd`` in a new temporary folder."""
        dest = self._fds[folder]
        for _ in range(_MAX_TRIES):
            partial = f".{name[:200]}.{secrets.token_hex(4)}.partial"
            try:
                os.mkdir(partial, 0o700, dir_fd=dest)
                break
            except FileExistsError:
                continue
        else:
            raise OSError(errno.EEXIST, f"no free temporary name for {name} in the trash")
        out = os.open(partial, DIR_FLAGS, dir_fd=dest)
        try:
            _copy_tree(src_fd, out, 0)
            os.fsync(out)
        except BaseException:
            with contextlib.suppress(OSError):
                remove_contents(out)
                os.rmdir(partial, dir_fd=dest)
            raise
        finally:
            os.close(out)
        return Partial(dest, partial, folder, name)

    def publish_folder(self, partial: Partial) -> str:
        """Give a complete folder copy a free final name."""
        return self._place_folder(
            partial.folder_fd, partial.name, partial.folder_fd, partial.folder, partial.final
        )

    def discard_folder(self, partial: Partial) -> None:
        """Remove a folder copy that will not be published."""
        with contextlib.suppress(OSError):
            fd = os.open(partial.name, DIR_FLAGS, dir_fd=partial.folder_fd)
            try:
                remove_contents(fd)
            finally:
                os.close(fd)
            os.rmdir(partial.name, dir_fd=partial.folder_fd)

    def _place_folder(self, src_dir_fd: int, src_name: str, dest: int, folder: str, name: str) -> str:
        """Rename a folder onto a free name of the trash: the name is made first with ``mkdir``
        (exclusive; ours, empty), then the rename replaces that empty folder atomically."""
        for candidate in _free_names(name):
            try:
                os.mkdir(candidate, 0o700, dir_fd=dest)
            except FileExistsError:
                continue
            try:
                os.rename(src_name, candidate, src_dir_fd=src_dir_fd, dst_dir_fd=dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.rmdir(candidate, dir_fd=dest)
                raise
            os.fsync(dest)
            return os.path.join(self.real, folder, candidate)
        raise OSError(errno.EEXIST, f"no free name for {name} in the trash")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _root(self) -> None:
        """Open the trash folder, creating it and its missing parents (each one checked)."""
        parts = [p for p in self.real.split("/") if p]
        existing = max(len(parts) - 1, 0)
        while existing > 0 and not os.path.lexists("/" + "/".join(parts[:existing])):
            existing -= 1
        try:
            fd = open_dir(parts[:existing])
        except OSError as exc:
            raise PruneRefused(f"refusing: cannot open the trash {self.real}: {exc.strerror or exc}") from exc
        try:
            for depth in range(existing, len(parts)):
                child = self._child(fd, parts[depth], "/" + "/".join(parts[: depth + 1]))
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self._fds[""] = fd

    def _child(self, parent: int, name: str, shown: str) -> int:
        """The sub-folder ``name`` of ``parent``, made if missing; refused if it is unsafe."""
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as exc:
            raise PruneRefused(
                f"refusing: cannot create the trash folder {shown}: {exc.strerror or exc}"
            ) from exc
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise PruneRefused(
                f"refusing: the trash folder {shown} is a symlink or not a folder "
                f"({exc.strerror or exc}); choose another --trash; nothing was deleted"
            ) from exc
        if writable_by_others(os.fstat(fd)):
            os.close(fd)
            raise PruneRefused(
                f"refusing: the trash folder {shown} belongs to another user or others can write "
                "in it; choose another --trash; nothing was deleted"
            )
        return fd


def _copy_file(src_fd: int, out: int, info: os.stat_result) -> None:
    """Copy an open source into an open new file, with its times, fsynced."""
    offset = 0
    while chunk := os.pread(src_fd, _CHUNK, offset):
        os.write(out, chunk)
        offset += len(chunk)
    os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.fsync(out)


def _copy_tree(src: int, dest: int, depth: int) -> None:
    """Copy the folder open at ``src`` into the empty folder open at ``dest``: files into new
    ``O_EXCL | O_NOFOLLOW`` files, symlinks as symlinks, sub-folders likewise; nothing followed."""
    if depth >= MAX_DEPTH:
        raise FolderTooDeep(errno.ELOOP, f"folders nested more than {MAX_DEPTH} deep")
    for name in sorted(os.listdir(src)):
        info = os.lstat(name, dir_fd=src)
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dest)
        elif stat.S_ISDIR(info.st_mode):
            os.mkdir(name, 0o700, dir_fd=dest)
            inner_src = os.open(name, DIR_FLAGS, dir_fd=src)
            try:
                inner_dest = os.open(name, DIR_FLAGS, dir_fd=dest)
                try:
                    _copy_tree(inner_src, inner_dest, depth + 1)
                    os.fsync(inner_dest)
                finally:
                    os.close(inner_dest)
            finally:
                os.close(inner_src)
        else:
            file_fd, file_info = open_regular(name, dir_fd=src)  # a FIFO or device: NotRegularFile
            try:
                out = os.open(name, _NEW_FILE, 0o600, dir_fd=dest)
                try:
                    _copy_file(file_fd, out, file_info)
                finally:
                    os.close(out)
            finally:
                os.close(file_fd)


def _free_names(name: str):
    """``name``, then ``stem (2).suffix``, ``stem (3).suffix``, ... (the checkpoint suffix kept)."""
    yield name
    suffix = next((s for s in CHECKPOINT_SUFFIXES if name.endswith(s)), "")
    stem = name[: len(name) - len(suffix)]
    for n in range(2, _MAX_TRIES):
        yield f"{stem} ({n}){suffix}"


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True
