"""The async save machinery (the atomic write itself lives in ``msjax.common.atomic``).

Async saves run the same write on a thread (or a forked process) and return an ``AsyncSave``
handle; ``.result()`` waits and re-raises. The next save to the same file, ``wait_async_save()``
and interpreter exit also wait, and a background failure is raised there, never lost.

>>> handle = start_thread("/tmp/x.bin", lambda: atomic_write("/tmp/x.bin", lambda f: f.write(b"hi")))
>>> handle.result()
"""
from __future__ import annotations

import atexit
import os
import pickle
import sys
import threading
import traceback
import warnings
from collections.abc import Callable

from msjax.common.atomic import atomic_write
from msjax.errors import CheckpointError

__all__ = ["AsyncSave", "atomic_write", "start_thread", "start_process", "wait_for",
           "wait_async_save"]


def _run_then(fn, path):
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - the save itself succeeded; say what did not
        warnings.warn(f"after the async save of {path}: {type(err).__name__}: {err}", RuntimeWarning,
                      stacklevel=2)


class AsyncSave:
    """Handle of a background save: ``.result()`` waits and re-raises its error; ``.done()``.

    >>> handle = msjax.save_checkpoint(net, "net.ckpt", async_save=True)
    >>> handle.result()   # None once the file is committed
    """

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        self._done = threading.Event()
        self._error = None
        self._reported = False
        self._then = []
        self._then_lock = threading.Lock()

    def _finish(self, error=None):
        self._error = error
        with self._then_lock:
            then, self._then = self._then, None
        if error is None:
            for fn in then:
                _run_then(fn, self.path)
        self._done.set()

    def then(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` once the file is committed (at once if it already is); not after a
        failure. ``.result()`` returns only after ``fn`` ran. ``ModelCheckpoint`` removes the
        checkpoints a save replaces this way, so none goes before its successor exists."""
        with self._then_lock:
            if self._then is not None:
                self._then.append(fn)
                return
        if self._error is None:
            _run_then(fn, self.path)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout=None):
        """Wait for the save; raise its error (once reported, the error stays attached)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"async save of {self.path} still running after {timeout} s")
        _forget(self)
        if self._error is not None:
            self._reported = True
            raise self._error
        return None

    def __repr__(self):
        state = "running" if not self.done() else ("failed" if self._error else "done")
        return f"AsyncSave({self.path!r}, {state})"


_lock = threading.Lock()
_pending: dict[str, AsyncSave] = {}      # path -> newest handle not yet waited on


def _forget(handle):
    with _lock:
        if _pending.get(handle.path) is handle:
            del _pending[handle.path]


def wait_for(path) -> None:
    """Wait for an unfinished async save to ``path`` and raise its error, if any."""
    with _lock:
        handle = _pending.get(os.path.abspath(os.fspath(path)))
    if handle is not None:
        handle.result()


def wait_async_save() -> None:
    """Wait for every async save still running; raise the first background error.

    >>> msjax.save_checkpoint(net, "a.ckpt", async_save=True); msjax.wait_async_save()
    """
    with _lock:
        handles = list(_pending.values())
    first = None
    for handle in handles:
        try:
            handle.result()
        except Exception as err:  # noqa: BLE001 - re-raised below, after every save finished
            first = first or err
    if first is not None:
        raise first


def start_thread(path, job: Callable[[], None]) -> AsyncSave:
    """Run ``job()`` on a thread; errors go to the handle."""
    wait_for(path)
    handle = AsyncSave(path)

    def run():
        try:
            job()
        except Exception as err:  # noqa: BLE001 - handed to the caller through the handle
            handle._finish(err)
        except BaseException as err:  # SystemExit/KeyboardInterrupt: recorded, so .result() never hangs
            handle._finish(err)
            raise
        else:
            handle._finish()

    with _lock:
        _pending[handle.path] = handle
    threading.Thread(target=run, name=f"msjax-save:{os.path.basename(path)}", daemon=True).start()
    return handle


def start_process(path, job: Callable[[], None]) -> AsyncSave:
    """Run ``job()`` in a forked child (its memory is a copy-on-write snapshot of the caller's).

    The child reports failure through a pipe; a thread in the parent waits for it.
    """
    if not hasattr(os, "fork"):
        return start_thread(path, job)
    wait_for(path)
    handle = AsyncSave(path)
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # JAX warns on every fork; the child runs only numpy and file writes, never JAX, and
        # leaves with os._exit, so no JAX lock is ever needed there (MindSpore forks the same way)
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        pid = os.fork()
    if pid == 0:  # child: write, report, and leave without running the parent's atexit hooks
        status = 0
        try:
            os.close(read_fd)
            job()
        except Exception as err:  # noqa: BLE001 - reported to the parent
            status = 1
            _report(write_fd, err, path)
        except BaseException as err:  # SystemExit/KeyboardInterrupt: reported, then re-raised into
            status = 1                # the finally below, which ends the child (never the caller's code)
            _report(write_fd, err, path)
            raise
        finally:
            os.close(write_fd)
            os._exit(status)
    os.close(write_fd)

    def watch():
        chunks = []
        with os.fdopen(read_fd, "rb") as pipe:
            while chunk := pipe.read(65536):
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        error = None
        if chunks:
            try:
                error = pickle.loads(b"".join(chunks))
            except Exception:  # noqa: BLE001
                error = CheckpointError("async save process failed", file=path)
        elif status != 0:
            error = CheckpointError(f"async save process exited with status {status}", file=path)
        handle._finish(error)

    with _lock:
        _pending[handle.path] = handle
    threading.Thread(target=watch, name=f"msjax-save-watch:{pid}", daemon=True).start()
    return handle


def _report(write_fd, err, path):
    """Send ``err`` (or, when it does not pickle, its text) to the parent through ``write_fd``."""
    try:
        payload = pickle.dumps(err)
    except Exception:  # noqa: BLE001 - any error can fail to pickle, in any way; send its text
        payload = pickle.dumps(CheckpointError(
            f"async save failed: {''.join(traceback.format_exception_only(err)).strip()}", file=path))
    os.write(write_fd, payload)


def _wait_at_exit():
    with _lock:
        handles = list(_pending.values())
    for handle in handles:
        handle._done.wait()
        if handle._error is not None and not handle._reported:
            sys.stderr.write(f"msjax: async save of {handle.path} failed: "
                             f"{type(handle._error).__name__}: {handle._error}\n")


atexit.register(_wait_at_exit)
