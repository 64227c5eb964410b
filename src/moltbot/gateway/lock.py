"""One gateway per state dir: an OS lock held for the life of the process.

The kernel drops the lock when the process dies, however it dies, so there is
never a stale lock to clean up after ``kill -9``. The lock file also records the
holder's pid and port so a second start can say who is running.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from moltbot.errors import AlreadyRunningError
from moltbot.fsutil import is_locked

__all__ = ["GatewayLock", "is_locked", "read_holder"]


class GatewayLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, port: int) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(self.path)
            pid = holder.get("pid", "unknown")
            holder_port = holder.get("port", "unknown")
            raise AlreadyRunningError(
                f"a gateway is already running for {self.path.parent} "
                f"(pid {pid}, port {holder_port})",
                hint="stop it first (moltbot gateway stop, or kill the pid), "
                "or use another --profile",
            ) from None
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {"pid": os.getpid(), "port": port, "startedAt": int(time.time() * 1000)}
            ).encode(),
        )
        os.fsync(fd)
        self._fd = fd

    def update_port(self, port: int) -> None:
        if self._fd is None:
            return
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        os.write(
            self._fd,
            json.dumps(
                {"pid": os.getpid(), "port": port, "startedAt": int(time.time() * 1000)}
            ).encode(),
        )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def read_holder(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
