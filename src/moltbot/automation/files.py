"""Reading the files automation keeps (store, run logs, ``HEARTBEAT.md``) without ever
blocking: the file is opened non-blocking and checked with ``fstat`` before any read,
so a FIFO or a device put at its path is refused, not waited on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from moltbot.safepath import describe


class NotRegularFile(OSError):
    """The path is a FIFO, device, socket or directory; ``kind`` says which."""

    def __init__(self, path: Path, mode: int) -> None:
        self.kind = describe(mode)
        super().__init__(f"{path} is {self.kind}, not a file")


def read_regular(path: Path, *, max_bytes: int, tail: bool = False) -> bytes | None:
    """At most ``max_bytes`` of ``path`` (the first ones, or with ``tail`` the last ones);
    ``None`` when it does not exist. Raises :class:`NotRegularFile`, or ``OSError``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, info.st_mode)
        if tail and info.st_size > max_bytes:
            os.lseek(fd, info.st_size - max_bytes, os.SEEK_SET)
        chunks: list[bytes] = []
        left = max_bytes
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


__all__ = ["NotRegularFile", "read_regular"]
