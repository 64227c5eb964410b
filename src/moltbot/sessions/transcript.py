"""One session's transcript: an append-only JSONL file.

Line 1 is the header ``{"type":"session","version":3,"id":<sessionId>,
"timestamp":ISO,"cwd":...,"sessionKey":...}``; every later line is an entry
``{"type":"message","id","parentId","timestamp","runId"?,"message":{...}}``
(the pi-coding-agent shape upstream uses).

Durability: :meth:`Transcript.append` writes one line with ``O_APPEND`` and
fsyncs before returning, so an acknowledged entry survives ``kill -9``. A crash
mid-write can leave a torn last line; reading skips it with a warning, and the
next append first terminates it so later entries stay parseable.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERSION = 3
_TAIL_BYTES = 65536


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_entry_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class TranscriptRead:
    header: dict[str, Any] | None
    entries: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    size: int = 0
    """Bytes read (the file's size at the time)."""
    offsets: list[int] = field(default_factory=list)
    """The byte offset in the file of each of :attr:`entries`."""
    start: int = 0
    """Where reading began (0: the whole file; see :meth:`Transcript.read_from`)."""


class Transcript:
    """A transcript file. Methods are synchronous (call them from a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_offset = 0
        """The byte offset of the entry :meth:`write` wrote last."""
        self._last_id: str | None = None
        self._last_id_known = False

    def create(self, session_id: str, session_key: str, cwd: str | None) -> bool:
        """Write the header if the file does not exist yet. Returns True if created."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        header = {
            "type": "session",
            "version": VERSION,
            "id": session_id,
            "timestamp": now_iso(),
            "cwd": cwd,
            "sessionKey": session_key,
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, _line(header))
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.path.parent)
        self._last_id, self._last_id_known = None, True
        return True

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one entry (``id``/``parentId``/``timestamp`` filled in), fsync'd."""
        full, _, _ = self.write(entry)
        self.sync()
        return full

    def write(self, entry: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """Append one entry without fsync: ``(entry, size before, size after)``.

        Not durable until :meth:`sync` returns; a small write, fine on the event loop.
        """
        if not self._last_id_known:
            self._last_id = _tail_id(self.path)
            self._last_id_known = True
        full = {
            "type": entry.get("type", "message"),
            "id": entry.get("id") or new_entry_id(),
            "parentId": entry.get("parentId", self._last_id),
            "timestamp": now_iso(),
        }
        full.update({k: v for k, v in entry.items() if k not in full})
        line = data = _line(full)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # terminate a torn line left by a crash
            os.write(fd, data)
        finally:
            os.close(fd)
        self._last_id = full["id"]
        self.last_offset = size + len(data) - len(line)
        return full, size, size + len(data)

    def sync(self) -> None:
        """fsync the file: every entry written before this call is durable after it."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> TranscriptRead:
        """All entries; unparseable lines are skipped with a warning, never raised."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return TranscriptRead(None, [])
        read = parse(raw, str(self.path))
        read.size = len(raw)
        return read

    def read_from(self, offset: int) -> TranscriptRead:
        """The entries from byte ``offset`` on (an entry's start, from
        :attr:`TranscriptRead.offsets`): what a compacted session's context needs,
        without reading the turns before it."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                raw = handle.read()
        except FileNotFoundError:
            return TranscriptRead(None, [])
        read = parse(raw, str(self.path), base=offset, header_allowed=offset == 0)
        read.size, read.start = offset + len(raw), offset
        return read


def read_tail(
    path: Path, enough: Callable[[list[dict[str, Any]]], bool], *, block: int = _TAIL_BYTES
) -> TranscriptRead:
    """The entries at the end of ``path``, read backwards a block at a time (each block
    twice the last) until ``enough(entries)`` says so or the file's start is reached:
    a long transcript costs what its tail costs, never the whole file.

    ``entries`` are in file order; the header is only returned when the whole file was
    read. ``size`` is the number of bytes read. A torn line is skipped as in :func:`parse`.
    """
    try:  # without blocking: a FIFO put in a transcript's place must not hang the reader
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return TranscriptRead(None, [])
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        end = handle.seek(0, os.SEEK_END)
        start, chunk, done = end, b"", 0
        while start > 0:
            step = min(start, block)
            start -= step
            handle.seek(start)
            chunk = handle.read(step) + chunk
            done += step
            block *= 2
            if start == 0:
                break
            # a line cut by the block's start is read whole with the next block
            cut = chunk.find(b"\n")
            if cut < 0:
                continue
            read = parse(chunk[cut + 1 :], str(path), base=start + cut + 1, warn=False)
            if enough(read.entries):
                for warning in read.warnings:
                    log.warning("%s", warning)
                read.size = done
                return read
        read = parse(chunk, str(path))
        read.size = done
        return read


def parse(
    raw: bytes, source: str, *, base: int = 0, header_allowed: bool = True, warn: bool = True
) -> TranscriptRead:
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    offsets: list[int] = []
    warnings: list[str] = []
    lines = raw.split(b"\n")
    position = base
    for number, line in enumerate(lines, 1):
        at = position
        position += len(line) + 1
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not an object")
        except ValueError:
            torn = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
            what = "torn last line" if torn else f"unreadable line {number}"
            warnings.append(f"{source}: {what} skipped ({len(line)} bytes)")
            continue
        if item.get("type") == "session" and header is None and not entries and header_allowed:
            header = item
        else:
            entries.append(item)
            offsets.append(at)
    for warning in warnings if warn else ():
        log.warning("%s", warning)
    return TranscriptRead(header, entries, warnings, offsets=offsets)


def ordered_messages(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Message entries in conversation order.

    A message queued while another run is active is written when it is accepted,
    i.e. before the active run's reply. Entries are therefore grouped by
    ``runId`` (runs in the order of their first entry) so that every run's
    messages stay together: user1, assistant1, user2, assistant2.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for index, entry in enumerate(entries):
        if entry.get("type") != "message" or not isinstance(entry.get("message"), dict):
            continue
        group = entry.get("runId") or f"#{index}"
        groups.setdefault(group, []).append(entry)
    return [entry for group in groups.values() for entry in group]


def _line(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _tail_id(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read()
    except FileNotFoundError:
        return None
    for line in reversed(tail.split(b"\n")):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("type") != "session" and item.get("id"):
            return str(item["id"])
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def peek(path: Path, window: int = 16384) -> tuple[str | None, dict[str, Any] | None]:
    """``(first user text, last message with text)`` from the file's head and tail only."""
    try:
        with path.open("rb") as handle:
            head = handle.read(window)
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - window))
            tail = handle.read()
    except OSError:
        return None, None
    first: str | None = None
    for line in head.split(b"\n"):
        message = _message_of(line)
        if message and message.get("role") == "user":
            first = _text(message.get("content"))
            if first:
                break
    last: dict[str, Any] | None = None
    for line in reversed(tail.split(b"\n")):
        message = _message_of(line)
        if (
            message
            and message.get("role") in ("user", "assistant")
            and _text(message.get("content"))
        ):
            last = message
            break
    return first, last


def _message_of(line: bytes) -> dict[str, Any] | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    message = item.get("message") if isinstance(item, dict) else None
    return message if isinstance(message, dict) else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""
