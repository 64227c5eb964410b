"""Watch what reaches the disk: every ``os.fsync`` and ``os.replace``, in order.

    spy = FsyncSpy.install(monkeypatch)
    ...                                   # the write under test
    spy.synced(path)                      # sizes ``path`` had when it was fsync'd

The real calls still run (nothing is faked); each fsync records the path of the
descriptor and its size at that moment, so a test can tell that the bytes it
was promised were on disk before the call that promised them returned.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class FsyncSpy:
    events: list[tuple[str, Path, Any]] = field(default_factory=list)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> FsyncSpy:
        spy = cls()
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: Any) -> None:
            number = fd if isinstance(fd, int) else fd.fileno()
            info = os.fstat(number)
            path = Path(os.readlink(f"/proc/self/fd/{number}"))
            kind = "fsync-dir" if stat.S_ISDIR(info.st_mode) else "fsync"
            spy.events.append((kind, path, info.st_size))
            real_fsync(fd)

        def replace(src: Any, dst: Any, **kwargs: Any) -> None:
            real_replace(src, dst, **kwargs)
            spy.events.append(("replace", Path(os.fsdecode(dst)), Path(os.fsdecode(src))))

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        return spy

    def synced(self, path: Path) -> list[int]:
        """Sizes of ``path`` at each fsync of it."""
        return [size for kind, p, size in self.events if kind == "fsync" and p == path]

    def index(self, kind: str, path: Path) -> int:
        """Position of the last event of ``kind`` on ``path`` (ValueError if none)."""
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i][0] == kind and self.events[i][1] == path:
                return i
        raise ValueError(f"no {kind} of {path} in {self.events}")

    def clear(self) -> None:
        self.events.clear()
