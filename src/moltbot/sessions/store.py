"""The session store of one agent: ``sessions.json`` plus transcripts.

``<state>/agents/<agentId>/sessions/sessions.json`` maps a session key to a
:class:`SessionEntry`; the entry's ``sessionId`` names the transcript
``<sessionId>.jsonl`` next to it.

Index writes are read-modify-write under an exclusive OS lock
(``sessions.json.lock``) and land atomically (temp file, fsync, rename, fsync of
the directory), so several processes (a gateway and ``moltbot agent --local``)
can share a store and a crash never leaves a half-written index. A corrupt
index (edited by hand) is moved aside and rebuilt from the transcripts'
headers, so no conversation is lost.

Index updates are coroutines; the I/O runs in a worker thread and concurrent
updates share one write (group commit). Transcript appends are written at once
and fsync'd in a worker thread (:meth:`SessionStore.append`), or split into
:meth:`SessionStore.write` + :meth:`SessionStore.sync` to overlap the fsync with
other work.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moltbot.fsutil import write_atomic
from moltbot.sessions.origin import Origin
from moltbot.sessions.transcript import (
    Transcript,
    TranscriptRead,
    ordered_messages,
    read_tail,
)
from moltbot.validation import BaseModel, ConfigDict, Field, field_validator, to_camel

log = logging.getLogger(__name__)

INDEX_NAME = "sessions.json"
CACHE_MAX_BYTES = 8 * 1024 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


class SessionEntry(BaseModel):
    """One row of ``sessions.json`` (upstream's camelCase keys; unknown keys kept)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    session_id: str
    created_at: int = Field(default_factory=now_ms)
    updated_at: int = Field(default_factory=now_ms)
    session_file: str | None = None
    label: str | None = None
    display_name: str | None = None
    channel: str | None = None
    chat_type: str | None = None
    origin: Origin | None = None
    model: str | None = None
    model_provider: str | None = None
    model_override: str | None = None
    thinking_level: str | None = None
    verbose_level: str | None = None
    reasoning_level: str | None = None
    elevated_level: str | None = None
    response_usage: str | None = None
    send_policy: str | None = None
    group_activation: str | None = None
    exec_host: str | None = None
    exec_security: str | None = None
    exec_ask: str | None = None
    exec_node: str | None = None
    spawned_by: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    context_tokens: int | None = None
    aborted_last_run: bool | None = None
    last_run_id: str | None = None
    # the chat the agent last talked in (main session; heartbeat/cron target "last")
    last_channel: str | None = None
    last_to: str | None = None
    last_account_id: str | None = None
    last_thread_id: str | None = None
    # the last heartbeat alert delivered (duplicates within a day are not sent again)
    last_heartbeat_text: str | None = None
    last_heartbeat_sent_at: int | None = None
    compaction_count: int | None = None
    first_kept_entry_id: str | None = None
    """The oldest transcript entry the model still sees after the last compaction."""
    first_kept_offset: int | None = None
    """Its byte offset in the transcript (where reading starts)."""
    memory_flush_at: int | None = None
    memory_flush_compaction_count: int | None = None

    @field_validator("origin", mode="before")
    @classmethod
    def _origin_object(cls, value: Any) -> Any:
        # an origin this version cannot read must not cost the whole session
        return value if value is None or isinstance(value, dict | Origin) else None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


Mutation = Callable[[SessionEntry | None], SessionEntry | None]


class SessionStore:
    """Sessions of one agent in one directory."""

    def __init__(self, directory: Path, *, cwd: Path | None = None) -> None:
        self.directory = directory
        self.index_path = directory / INDEX_NAME
        self.cwd = cwd
        self._pending: list[tuple[str, Mutation, asyncio.Future[SessionEntry | None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._entries: dict[str, SessionEntry] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._transcripts: dict[str, Transcript] = {}
        self._reads: dict[str, TranscriptRead] = {}
        self._tails: dict[str, TranscriptRead] = {}
        """The part of each transcript from its compaction point on (see :meth:`read_from`)."""

    # ---- index -------------------------------------------------------------

    async def get(self, key: str) -> SessionEntry | None:
        self._refresh()
        return self._entries.get(key)

    async def all(self) -> dict[str, SessionEntry]:
        return self.snapshot()

    def snapshot(self) -> dict[str, SessionEntry]:
        """The index as on disk now, without waiting for pending updates (synchronous:
        a ``stat`` while the file is unchanged, one read when it changed)."""
        self._refresh()
        return dict(self._entries)

    async def update(self, key: str, mutate: Mutation) -> SessionEntry | None:
        """Apply ``mutate`` to the current entry (None if absent) and persist the result.

        Returning None deletes the entry. The mutation runs under the index lock on
        freshly read data, so concurrent writers (other processes) are merged.
        Updates that arrive while a write is in progress are applied together in
        the next write (group commit); each returns once a write holding it is
        on disk.
        """
        future: asyncio.Future[SessionEntry | None] = asyncio.get_running_loop().create_future()
        self._pending.append((key, mutate, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        return await future

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await asyncio.to_thread(self._update_sync, batch)
            except BaseException as exc:  # the index could not be written: fail the batch
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(
                            exc if isinstance(exc, Exception) else OSError("index write cancelled")
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def ensure(self, key: str, **fields: Any) -> SessionEntry:
        """The entry for ``key``, created (with a transcript) if missing."""
        entry = await self.get(key)
        if entry is not None and self.transcript_path(entry).exists():
            return entry

        def create(current: SessionEntry | None) -> SessionEntry:
            if current is not None:
                return current
            return SessionEntry(session_id=str(uuid.uuid4()), **fields)

        entry = await self.update(key, create)
        assert entry is not None
        await self._create_transcript(entry, key)
        return entry

    async def touch(self, key: str, **changes: Any) -> SessionEntry | None:
        """Set fields (``None`` clears) and bump ``updatedAt``; no-op when absent."""

        def apply(current: SessionEntry | None) -> SessionEntry | None:
            if current is None:
                return None
            data = current.model_dump()
            data.update(changes)
            data["updated_at"] = max(now_ms(), current.updated_at)
            return SessionEntry.model_validate(data)

        return await self.update(key, apply)

    async def add_usage(
        self, key: str, input_tokens: int, output_tokens: int, **changes: Any
    ) -> SessionEntry | None:
        def apply(current: SessionEntry | None) -> SessionEntry | None:
            if current is None:
                return None
            data = current.model_dump()
            data.update(changes)
            data["input_tokens"] = (current.input_tokens or 0) + input_tokens
            data["output_tokens"] = (current.output_tokens or 0) + output_tokens
            data["total_tokens"] = data["input_tokens"] + data["output_tokens"]
            data["updated_at"] = max(now_ms(), current.updated_at)
            return SessionEntry.model_validate(data)

        return await self.update(key, apply)

    async def reset(self, key: str) -> SessionEntry:
        """Start a fresh transcript (new ``sessionId``); labels and settings are kept."""

        def apply(current: SessionEntry | None) -> SessionEntry:
            data = current.model_dump() if current else {}
            for name in (
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "context_tokens",
                "aborted_last_run",
                "last_run_id",
                "session_file",
                "compaction_count",
                "first_kept_entry_id",
                "first_kept_offset",
                "memory_flush_at",
                "memory_flush_compaction_count",
            ):
                data.pop(name, None)
            data.update(session_id=str(uuid.uuid4()), created_at=now_ms(), updated_at=now_ms())
            return SessionEntry.model_validate(data)

        entry = await self.update(key, apply)
        assert entry is not None
        await self._create_transcript(entry, key)
        return entry

    async def _create_transcript(self, entry: SessionEntry, key: str) -> None:
        cwd = str(self.cwd) if self.cwd else None
        await asyncio.to_thread(self._transcript(entry).create, entry.session_id, key, cwd)

    async def delete(self, key: str, *, delete_transcript: bool = True) -> tuple[bool, list[str]]:
        """Remove ``key``. The transcript is renamed ``*.deleted.<ms>`` (archived), not erased."""
        removed: list[SessionEntry] = []

        def apply(current: SessionEntry | None) -> None:
            if current is not None:
                removed.append(current)
            return None

        await self.update(key, apply)
        if not removed:
            return False, []
        archived: list[str] = []
        if delete_transcript:
            path = self.transcript_path(removed[0])
            target = path.with_name(f"{path.name}.deleted.{now_ms()}")
            with contextlib.suppress(FileNotFoundError):
                path.rename(target)
                archived.append(str(target))
            self._transcripts.pop(removed[0].session_id, None)
            self._reads.pop(removed[0].session_id, None)
            self._tails.pop(removed[0].session_id, None)
        return True, archived

    # ---- transcripts -------------------------------------------------------

    def transcript_path(self, entry: SessionEntry) -> Path:
        if entry.session_file:
            return self.directory / Path(entry.session_file).name
        return self.directory / f"{entry.session_id}.jsonl"

    def _transcript(self, entry: SessionEntry) -> Transcript:
        found = self._transcripts.get(entry.session_id)
        if found is None:
            found = self._transcripts[entry.session_id] = Transcript(self.transcript_path(entry))
        return found

    async def append(self, entry: SessionEntry, item: dict[str, Any]) -> dict[str, Any]:
        """Append one transcript entry durably (fsync'd when this returns)."""
        written = self.write(entry, item)
        await self.sync(entry)
        return written

    def write(self, entry: SessionEntry, item: dict[str, Any]) -> dict[str, Any]:
        """Append one entry now, not yet durable: follow with :meth:`sync` before
        acknowledging it. (Lets a caller start work while the fsync runs.)"""
        transcript = self._transcript(entry)
        full, before, after = transcript.write(item)
        for cache in (self._reads, self._tails):
            cached = cache.get(entry.session_id)
            if cached is not None and cached.size == before:
                cached.entries.append(full)
                cached.offsets.append(transcript.last_offset)
                cached.size = after
        return full

    async def sync(self, entry: SessionEntry) -> None:
        await asyncio.to_thread(self._transcript(entry).sync)

    async def read(self, entry: SessionEntry) -> TranscriptRead:
        """The transcript (cached in memory while the file only grows through this store)."""
        path = self.transcript_path(entry)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self._reads.pop(entry.session_id, None)
            return TranscriptRead(None, [])
        cached = self._reads.get(entry.session_id)
        if cached is None or cached.size != size:
            cached = await asyncio.to_thread(self._transcript(entry).read)
            if cached.size <= CACHE_MAX_BYTES:
                self._reads[entry.session_id] = cached
            else:
                self._reads.pop(entry.session_id, None)
        return TranscriptRead(
            cached.header,
            list(cached.entries),
            list(cached.warnings),
            cached.size,
            list(cached.offsets),
        )

    async def read_from(self, entry: SessionEntry, offset: int) -> TranscriptRead:
        """The transcript from byte ``offset`` on (an entry's start), cached like
        :meth:`read`: a compacted session's turns cost what its kept part costs, however
        long the whole file has grown."""
        if offset <= 0:
            return await self.read(entry)
        path = self.transcript_path(entry)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self._tails.pop(entry.session_id, None)
            return TranscriptRead(None, [])
        cached = self._tails.get(entry.session_id)
        if cached is None or cached.start != offset or cached.size != size:
            cached = await asyncio.to_thread(self._transcript(entry).read_from, offset)
            if cached.size - offset <= CACHE_MAX_BYTES:
                self._tails[entry.session_id] = cached
            else:
                self._tails.pop(entry.session_id, None)
        return TranscriptRead(
            None,
            list(cached.entries),
            list(cached.warnings),
            cached.size,
            list(cached.offsets),
            cached.start,
        )

    async def recent_messages(
        self, entry: SessionEntry, count: int, *, before: str | None = None
    ) -> list[dict[str, Any]]:
        """At least the last ``count`` message entries (all, if fewer), in conversation
        order: from memory when the transcript is cached, else read backwards from the
        file's end (:func:`~moltbot.sessions.transcript.read_tail`), so the cost follows
        ``count``, not the transcript's length.

        With ``before`` (a message entry's id), at least the ``count`` messages before
        that one are included too: the read goes back until it has them (a page of
        older history costs what lies between the page and the file's end)."""
        path = self.transcript_path(entry)
        cached = self._reads.get(entry.session_id)
        if cached is not None:
            try:
                fresh = path.stat().st_size == cached.size
            except FileNotFoundError:
                fresh = False
            if fresh:
                return ordered_messages(cached.entries)

        def enough(entries: list[dict[str, Any]]) -> bool:
            if before is not None:
                at = next((i for i, e in enumerate(entries) if e.get("id") == before), None)
                if at is None:
                    return False
                entries = entries[:at]
            # one more than asked: a run whose messages straddle the cut keeps its place
            return sum(1 for e in entries if _is_message(e)) > count

        read = await asyncio.to_thread(read_tail, path, enough)
        return ordered_messages(read.entries)

    async def messages(self, entry: SessionEntry) -> list[dict[str, Any]]:
        """Message entries in conversation order (see :func:`ordered_messages`)."""
        return ordered_messages((await self.read(entry)).entries)

    # ---- sync internals (worker thread) ------------------------------------

    def _refresh(self) -> None:
        try:
            st = self.index_path.stat()
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._entries = self._read_index()
            self._stamp = stamp

    def _read_index(self) -> dict[str, SessionEntry]:
        try:
            raw_bytes = _read_regular(self.index_path)
        except FileNotFoundError:
            return {}
        except _NotRegular as exc:
            return self._recover(str(exc))
        except IsADirectoryError:
            return self._recover("a directory")
        try:
            raw = raw_bytes.decode("utf-8")  # undecodable bytes are corruption too
            data = json.loads(raw) if raw.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("not an object")
            entries: dict[str, SessionEntry] = {}
            for key, value in data.items():
                try:
                    entries[key] = SessionEntry.model_validate(value)
                except ValueError as exc:
                    log.warning(
                        "%s: session %s skipped (%s)",
                        self.index_path,
                        key,
                        str(exc).splitlines()[0],
                    )
            return entries
        except ValueError as exc:
            return self._recover(str(exc))

    def _recover(self, reason: str) -> dict[str, SessionEntry]:
        """Move a corrupt index aside and rebuild it from transcript headers."""
        stamp = now_ms()
        aside = self.index_path.with_name(f"{INDEX_NAME}.corrupt-{stamp}")
        for n in itertools.count(1):  # two recoveries in one millisecond keep both files
            if not aside.exists() and not aside.is_symlink():
                break
            aside = self.index_path.with_name(f"{INDEX_NAME}.corrupt-{stamp}-{n}")
        with contextlib.suppress(FileNotFoundError):
            self.index_path.rename(aside)
        log.error(
            "%s is corrupt (%s); moved to %s and rebuilt from transcripts",
            self.index_path,
            reason,
            aside.name,
        )
        entries: dict[str, SessionEntry] = {}
        for path in sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
            header = Transcript(path).read().header or {}
            key, sid = header.get("sessionKey"), header.get("id")
            if isinstance(key, str) and isinstance(sid, str):
                mtime = int(path.stat().st_mtime * 1000)
                entries[key] = SessionEntry(
                    session_id=sid, updated_at=mtime, session_file=path.name
                )
        self._write_index(entries)
        return entries

    def _update_sync(
        self, batch: list[tuple[str, Mutation, Any]]
    ) -> list[SessionEntry | None | Exception]:
        results: list[SessionEntry | None | Exception] = []
        with self._index_lock():
            self._refresh()  # parses the file only when another writer changed it
            entries = dict(self._entries)
            for key, mutate, _ in batch:
                try:
                    result = mutate(entries.get(key))
                except Exception as exc:  # that caller gets the error; the rest is written
                    results.append(exc)
                    continue
                if result is None:
                    entries.pop(key, None)
                else:
                    entries[key] = result
                results.append(result)
            self._write_index(entries)
            self._entries = entries
            st = self.index_path.stat()
            self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        return results

    @contextlib.contextmanager
    def _index_lock(self) -> Iterator[None]:
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / f"{INDEX_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_index(self, entries: dict[str, SessionEntry]) -> None:
        data = {key: entry.dump() for key, entry in entries.items()}
        payload = json.dumps(data, ensure_ascii=False, indent=2).encode()
        write_atomic(self.index_path, payload)  # all of it, or an error and no temp file
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _is_message(entry: dict[str, Any]) -> bool:
    return entry.get("type") == "message" and isinstance(entry.get("message"), dict)


class _NotRegular(Exception):
    pass


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``; :class:`_NotRegular` for a FIFO, device or directory
    (opened without blocking, so a FIFO put there cannot hang the reader)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegular("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)
