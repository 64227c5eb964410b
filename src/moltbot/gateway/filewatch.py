"""Watch one file for changes: the gateway's config file (hot reload).

On Linux the kernel's inotify is used directly (through libc, with the event loop
reading its descriptor), which costs no thread and no extra library. Elsewhere, or
when libc has no inotify, ``watchfiles`` does it. ``watchfiles`` and its backend
(a Rust thread plus an anyio worker thread) are about 2 MiB of an idle gateway's
memory (docs/benchmarks.md, footprint section), hence this module.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

# from <sys/inotify.h>
# modify, attrib, close_write, moved_from, moved_to, create, delete
_MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200
_OVERFLOW = 0x4000  # the kernel dropped events: the file may have changed
_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
_EVENT = struct.Struct("iIII")


async def changes(path: Path, debounce_ms: int, step_ms: int = 50) -> AsyncIterator[None]:
    """Yield once the watch is in place (a change made before then is the caller's to
    check), then once per debounced batch of changes to ``path``: created, written,
    replaced, removed, or its symlink swapped. The file's folder must exist."""
    fd = _inotify(path.parent)
    if fd is None:
        async for _ in _watchfiles(path, debounce_ms, step_ms):
            yield None
        return
    loop = asyncio.get_running_loop()
    target = os.path.realpath(path)
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        yield None
        while True:
            await ready.wait()
            if not _drain(fd, path.parent, target, ready):
                continue
            await asyncio.sleep(debounce_ms / 1000)  # a batch: what the editor writes at once
            _drain(fd, path.parent, target, ready)
            yield None
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _inotify(folder: Path) -> int | None:
    """An inotify descriptor watching ``folder``, or None where inotify is unavailable."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):  # not Linux, or no glibc-compatible libc
        return None
    fd = init(_NONBLOCK_CLOEXEC)
    if fd < 0:
        return None
    if add(fd, os.fsencode(folder), _MASK) < 0:
        os.close(fd)
        error = ctypes.get_errno()
        raise OSError(error, f"cannot watch {folder}: {os.strerror(error)}")
    return fd


def _drain(fd: int, folder: Path, target: str, ready: asyncio.Event) -> bool:
    """Read every pending event; True when one of them concerns the target file."""
    ready.clear()
    hit = False
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return hit
        offset = 0
        while offset < len(data):
            _wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            name = data[start : start + size].rstrip(b"\0")
            offset = start + size
            changed = name and os.path.realpath(folder / os.fsdecode(name)) == target
            hit = hit or bool(changed) or bool(mask & _OVERFLOW)


async def _watchfiles(path: Path, debounce_ms: int, step_ms: int) -> AsyncIterator[None]:
    import importlib

    watchfiles = await asyncio.to_thread(importlib.import_module, "watchfiles")
    target = os.path.realpath(path)
    yield None  # watchfiles sets its watch up on the first step: a change may slip by here
    async for batch in watchfiles.awatch(
        path.parent,
        recursive=False,
        debounce=debounce_ms,
        step=step_ms,
        watch_filter=lambda _change, changed: os.path.realpath(changed) == target,
    ):
        if batch:
            yield None
