"""Atomic file writes that cannot lie, and the temporary files a killed save leaves behind.

Every file msjax writes (checkpoints, safetensors, MINDIR, AIR, ONNX, graph.meta, orbax staging)
goes through here: a temporary file beside the target, every byte written (a short write is
continued until the disk refuses, never ignored), fsync, rename onto the target, fsync of the
directory. A failure at any point raises a write error naming the file and the cause
(``CheckpointWriteError`` / ``ExportWriteError``, also ``OSError``s), removes the temporary file
and leaves the previous file untouched.

Temporary names are ``.<target name>.msjax-<pid>-<token>.tmp``. The writer holds an exclusive
``flock`` on its temporary file (or directory) for as long as it writes; the lock dies with the
process, so ``clean_orphans`` can tell a killed save's leftovers (lock free) from a live writer's
(lock held), whichever process or thread that writer is, and whatever pid the dead one had.

>>> atomic_write("/tmp/x.bin", lambda f: f.write(b"hi"))
"""
from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import functools
import os
import re
import secrets
import shutil
from collections.abc import Callable

try:
    import fcntl
except ImportError:      # no flock (Windows): writes stay atomic, but no temporary counts as dead
    fcntl = None

from msjax.errors import CheckpointWriteError

# POSIX open flags (0 where the OS has none)
_O_CLOEXEC, _O_NOFOLLOW, _O_DIRECTORY, _O_NONBLOCK = (
    getattr(os, flag, 0) for flag in ("O_CLOEXEC", "O_NOFOLLOW", "O_DIRECTORY", "O_NONBLOCK"))

__all__ = ["atomic_write", "temp_path", "LockedTempDir", "exchange", "fsync_dir", "clean_orphans", "is_temp_name",
           "write_error"]

_TEMP = re.compile(r"^\.(?P<target>.+)\.msjax-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.tmp$")

#: how a write failure reads, by errno (the rest use the OS's own strerror)
_CAUSES = {
    _errno.ENOSPC: "no space left on the device",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EFBIG: "file too large for this file system or process limit (RLIMIT_FSIZE)",
    _errno.EIO: "I/O error from the device",
    _errno.EROFS: "the file system is read-only",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "operation not permitted",
}


def is_temp_name(name: str) -> bool:
    """Whether ``name`` (a directory entry) is an msjax temporary file or directory."""
    return _TEMP.match(name) is not None


def temp_path(path) -> str:
    """A fresh temporary name beside ``path`` (not created)."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(directory, f".{base}.msjax-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def write_error(err: OSError, path, error=CheckpointWriteError, what="save"):
    """The msjax write error for ``err``: names ``path``, the cause and that nothing was lost."""
    cause = _CAUSES.get(err.errno) or err.strerror or str(err)
    return error(f"{what} failed: {cause} ({_errno.errorcode.get(err.errno, err.errno)}); the "
                 f"previous file, if any, is untouched", file=path, errno=err.errno)


def _lock(fd) -> bool:
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _create_locked(path, make):
    """(temporary path, fd) of a new temporary entry beside ``path``, made by ``make(tmp)`` (which
    returns an fd) and locked.

    Dead writers' temporaries in the directory are removed first. A cleaner may take a
    just-created entry's lock before its writer does and remove it; the writer then finds its
    name gone or pointing elsewhere, and tries a new name.
    """
    clean_orphans(os.path.dirname(os.path.abspath(os.fspath(path))))
    for _ in range(100):
        tmp = temp_path(path)
        fd = make(tmp)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), os.lstat(tmp)):
                return tmp, fd
        except FileNotFoundError:
            pass
        except OSError:
            os.close(fd)
            _remove_if_dead(tmp)
            raise
        os.close(fd)
    raise OSError(_errno.EEXIST, "could not create a temporary file", tmp)


def _new_file(tmp):
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)


def _new_dir(tmp):
    os.mkdir(tmp, 0o755)
    return os.open(tmp, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)


def _write_all(fd, data) -> int:
    """Write every byte of ``data``; a short write is continued, so the disk's refusal raises."""
    view = memoryview(data).cast("B")
    total = len(view)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(_errno.EIO, "write returned no progress")
        view = view[n:]
    return total


class _Sink:
    """The file object a write callback gets: ``write`` writes everything or raises."""

    def __init__(self, fd):
        self._fd = fd

    def write(self, data) -> int:
        return _write_all(self._fd, data)

    def flush(self) -> None:          # nothing is buffered
        pass

    def fileno(self) -> int:
        return self._fd


def atomic_write(path, write: Callable, *, fsync: bool = True, error=CheckpointWriteError,
                 what: str = "save") -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it onto ``path``.

    ``write`` gets a file object whose ``write`` writes every byte or raises. ``error`` is the class raised for an
    ``OSError`` on the way; dead temporary files in the directory are removed first.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    tmp = fd = None
    try:
        tmp, fd = _create_locked(path, _new_file)
        _keep_mode(tmp, path)
        write(_Sink(fd))
        if fsync:
            os.fsync(fd)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        if isinstance(err, error):
            raise
        raise write_error(err, path, error, what) from err
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    if fsync:
        fsync_dir(directory)


def _keep_mode(tmp, path):
    """mkstemp-like 0600 -> the replaced file's mode, else the usual 0644."""
    with contextlib.suppress(OSError):
        os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644)


def fsync_dir(directory) -> None:
    """fsync a directory so a rename in it survives a power cut (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


class LockedTempDir:
    """A new temporary directory beside ``path`` (dead temporaries there are removed first),
    locked until ``close()`` removes it.

    For writers that produce a directory (orbax): build inside ``.path``, move the result out,
    then close. Held across threads (an async save closes it on its writer thread).
    """

    def __init__(self, path):
        self.path, self._fd = _create_locked(path, _new_dir)

    def close(self) -> None:
        if self._fd is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._fd)
            self._fd = None


_RENAME_EXCHANGE = 2


def exchange(a, b) -> None:
    """Swap the directory entries ``a`` and ``b`` in one atomic step (Linux renameat2).

    Where the OS or file system cannot, falls back to moving ``b`` aside into ``a``'s place by two
    renames (an instant in which ``b`` does not exist).
    """
    renameat2 = _renameat2()
    if renameat2 is not None:
        AT_FDCWD = -100
        if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (_errno.ENOSYS, _errno.EINVAL, _errno.ENOTSUP):
            raise OSError(err, os.strerror(err), b)
    aside = a + ".old"
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


@functools.cache
def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def clean_orphans(directory) -> list[str]:
    """Remove the temporary files and directories of dead msjax writers in ``directory``.

    A live writer (this process or another) holds its lock and is left alone. Returns the
    removed paths.

    >>> clean_orphans("ckpt")                                       # doctest: +SKIP
    ['ckpt/.lenet-1_4.ckpt.msjax-4242-9f1c2a3b.tmp']
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        if is_temp_name(name) and _remove_if_dead(os.path.join(directory, name)):
            removed.append(os.path.join(directory, name))
    return removed


def _remove_if_dead(tmp) -> bool:
    try:
        fd = os.open(tmp, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
    except OSError:
        return False
    try:
        if not _lock(fd) or not os.path.samestat(os.fstat(fd), os.lstat(tmp)):
            return False
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.unlink(tmp)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
