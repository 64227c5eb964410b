"""Crash-safe file replacement and cross-process lock files.

Readers of a file written here see either the old content or the new one,
never a torn mix: the data goes to a temp file ``.<name>.<random>.tmp`` in the
same directory, which is renamed over ``path``. A writer that dies mid-write
leaves only that temp file behind (``config.store`` sweeps its own).

Lock files hold an OS lock (``flock``), which the kernel drops when the holder
dies, so there is never a stale lock to clean up.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "acquire_lock",
    "is_locked",
    "locked",
    "open_regular",
    "write_atomic",
    "write_json_atomic",
]


def write_atomic(
    path: Path,
    data: bytes | str,
    *,
    mode: int = 0o600,
    sync: bool = True,
    dir_mode: int = 0o700,
) -> None:
    """Replace ``path`` with ``data`` (``str`` is encoded as UTF-8) in one rename.

    Missing parent directories are created with ``dir_mode`` (less the umask). The file gets
    exactly ``mode`` (the umask does not apply). With ``sync`` the data is
    fsync'd before the rename, so it survives a power loss once this returns
    (the directory entry itself is not synced; see ``config.store``).
    """
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    import tempfile  # here, not at the top: readers (`moltbot status`) never pay for it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_regular(path: Path | str, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """``os.open`` that never blocks on, nor uses, anything but a regular file: a FIFO or
    a device where a file should be raises ``OSError`` (the descriptor is closed)."""
    import stat

    fd = os.open(path, flags | os.O_NONBLOCK, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o600, sync: bool = True) -> None:
    """:func:`write_atomic` of ``data`` as indented UTF-8 JSON with a final newline."""
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode=mode, sync=sync)


def acquire_lock(path: Path, timeout: float) -> int:
    """Take an exclusive lock on ``path``; the open descriptor, to ``os.close`` to release.

    The file (mode 0600) and its parents (0700) are created when missing. Waits
    up to ``timeout`` seconds for another holder, then raises :class:`TimeoutError`.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(f"timed out waiting for {path}") from None
            time.sleep(0.005)


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold the lock of :func:`acquire_lock` for the ``with`` block."""
    fd = acquire_lock(path, timeout)
    try:
        yield
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """Whether a live process holds the lock on ``path`` (tested without keeping it)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
