"""Memory: the agent's notes in its workspace, searchable.

The notes are plain Markdown: ``MEMORY.md`` (or ``memory.md``) and ``memory/**/*.md``
in the agent's workspace. They are indexed in ``<state>/memory/<agentId>.sqlite``:
each file cut into chunks of about :data:`CHUNK_CHARS` characters (whole lines,
overlapping by :data:`OVERLAP_CHARS`), kept in an SQLite FTS5 table ranked by BM25.
With ``agents.defaults.memorySearch.embeddings`` set, every chunk also gets an
embedding from that provider's OpenAI-compatible ``/embeddings`` endpoint, and results
are ranked by ``0.7 × cosine + 0.3 × full-text score``.

Freshness: a watcher (``watchfiles``) re-indexes a file when it changes; a search
also re-checks the files' size and modification time first, so a change the watcher
has not seen yet (or made while the gateway was down) is never missed. A file is
read again only when it changed. Symlinks are not followed; files outside the
workspace are never read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHUNK_CHARS = 1600
OVERLAP_CHARS = 320
SNIPPET_CHARS = 700
MAX_FILE_BYTES = 2_000_000
VECTOR_WEIGHT, TEXT_WEIGHT = 0.7, 0.3
_WORD = re.compile(r"\w+", re.UNICODE)

Embedder = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
"""Texts -> their embeddings (one vector each)."""


@dataclass(frozen=True)
class Chunk:
    path: str
    start_line: int
    end_line: int
    text: str


@dataclass(frozen=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    snippet: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "startLine": self.start_line,
            "endLine": self.end_line,
            "score": round(self.score, 4),
            "snippet": self.snippet,
        }


def memory_files(workspace: Path) -> list[Path]:
    """``MEMORY.md`` (else ``memory.md``) and ``memory/**/*.md``: regular files; links
    (to files or folders) are not followed, so nothing outside the workspace is read."""
    return [path for path, _ in memory_stats(workspace)]


def memory_stats(workspace: Path) -> list[tuple[Path, os.stat_result]]:
    """:func:`memory_files` with their ``lstat`` (one ``scandir`` pass)."""
    out: list[tuple[Path, os.stat_result]] = []
    for name in ("MEMORY.md", "memory.md"):
        path = workspace / name
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            out.append((path, info))
            break
    folder = workspace / "memory"
    if not folder.is_dir() or folder.is_symlink():
        return out
    for root, dirs, _files in os.walk(folder, followlinks=False):
        dirs.sort()
        with os.scandir(root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.endswith(".md") and entry.is_file(follow_symlinks=False):
                    out.append((Path(entry.path), entry.stat(follow_symlinks=False)))
    return out


def is_memory_path(relative: str) -> bool:
    """Whether a workspace-relative path is a memory file (``memory_get`` may read it)."""
    parts = Path(relative).parts
    if not parts or ".." in parts or Path(relative).is_absolute():
        return False
    if len(parts) == 1:
        return parts[0] in ("MEMORY.md", "memory.md")
    return parts[0] == "memory" and relative.endswith(".md")


def chunk(path: str, text: str) -> list[Chunk]:
    """Whole lines in chunks of about :data:`CHUNK_CHARS`, overlapping by
    :data:`OVERLAP_CHARS` (line numbers from 1)."""
    lines = text.splitlines()
    chunks: list[Chunk] = []
    start = 0
    while start < len(lines):
        size, end = 0, start
        while end < len(lines) and (size == 0 or size + len(lines[end]) + 1 <= CHUNK_CHARS):
            size += len(lines[end]) + 1
            end += 1
        body = "\n".join(lines[start:end]).strip()
        if body:
            chunks.append(Chunk(path, start + 1, end, body))
        if end >= len(lines):
            break
        back, overlap = end, 0
        while back > start + 1 and overlap < OVERLAP_CHARS:
            back -= 1
            overlap += len(lines[back]) + 1
        start = max(back, start + 1)
    return chunks


def fts_query(query: str) -> str | None:
    """The words of ``query`` as an FTS5 query (each quoted, OR-ed): no syntax of the
    user's can break it."""
    words = [w for w in _WORD.findall(query.lower()) if w]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class MemoryIndex:
    """The index of one agent's memory files (see the module docstring). Methods are
    thread-safe; the async ones run SQLite in a worker thread."""

    def __init__(
        self,
        workspace: Path,
        db_path: Path,
        embedder: Embedder | None = None,
        embedder_id: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.db_path = db_path
        self.embedder = embedder
        self.embedder_id = embedder_id or ""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._sync_lock = asyncio.Lock()
        self.syncs = 0
        """Syncs that changed something (for tests and logs)."""
        self._watcher: asyncio.Task[None] | None = None
        self.watching = asyncio.Event()
        """Set once the watcher sees changes (and has indexed what was there before)."""
        self._vectors: tuple[int, Any, list[int]] | None = None

    # ---- storage --------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.db_path, check_same_thread=False)
            db.executescript(
                """
                PRAGMA journal_mode=WAL;
                PRAGMA synchronous=NORMAL;
                CREATE TABLE IF NOT EXISTS files (
                    path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, hash TEXT);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
                CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
                    text, path UNINDEXED, start_line UNINDEXED, end_line UNINDEXED,
                    tokenize='unicode61');
                CREATE TABLE IF NOT EXISTS vectors (
                    rowid INTEGER PRIMARY KEY, vector BLOB);
                """
            )
            row = db.execute("SELECT value FROM meta WHERE key='embedder'").fetchone()
            if (row[0] if row else "") != self.embedder_id:  # another embedder: start over
                db.executescript("DELETE FROM files; DELETE FROM chunks; DELETE FROM vectors;")
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('embedder', ?)", (self.embedder_id,)
                )
                db.commit()
            with contextlib.suppress(OSError):
                self.db_path.chmod(0o600)
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT count(*) FROM chunks").fetchone()[0])

    # ---- keeping it fresh --------------------------------------------------------------

    def _changes(self) -> tuple[list[tuple[Path, str, int, int]], list[str]]:
        """Files to (re)index and indexed paths that are gone."""
        with self._lock:
            known = {
                row[0]: (row[1], row[2])
                for row in self._conn().execute("SELECT path, mtime_ns, size FROM files")
            }
        changed: list[tuple[Path, str, int, int]] = []
        present = set()
        for path, info in memory_stats(self.workspace):
            relative = path.relative_to(self.workspace).as_posix()
            present.add(relative)
            if info.st_size > MAX_FILE_BYTES:
                continue
            if known.get(relative) != (info.st_mtime_ns, info.st_size):
                changed.append((path, relative, info.st_mtime_ns, info.st_size))
        return changed, [p for p in known if p not in present]

    async def sync(self) -> bool:
        """Index what changed since the last sync; True when anything did."""
        async with self._sync_lock:
            changed, gone = await asyncio.to_thread(self._changes)
            if not changed and not gone:
                return False
            pending: list[tuple[str, int, int, str, list[Chunk]]] = []
            for path, relative, mtime, size in changed:
                try:
                    data = await asyncio.to_thread(path.read_bytes)
                except OSError:
                    continue
                text = data.decode("utf-8", "replace")
                digest = hashlib.sha256(data).hexdigest()
                pending.append((relative, mtime, size, digest, chunk(relative, text)))
            vectors: list[list[list[float]]] = []
            if self.embedder is not None:
                for *_, chunks in pending:
                    vectors.append(await self._embed([c.text for c in chunks]) if chunks else [])
            await asyncio.to_thread(self._store, pending, vectors, gone)
            self.syncs += 1
            return True

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        assert self.embedder is not None
        out: list[list[float]] = []
        for start in range(0, len(texts), 64):
            out += await self.embedder(texts[start : start + 64])
        return out

    def _store(
        self,
        pending: list[tuple[str, int, int, str, list[Chunk]]],
        vectors: list[list[list[float]]],
        gone: list[str],
    ) -> None:
        from array import array

        with self._lock:
            db = self._conn()
            with db:
                for path in [p[0] for p in pending] + gone:
                    rows = [
                        r[0] for r in db.execute("SELECT rowid FROM chunks WHERE path=?", (path,))
                    ]
                    db.executemany("DELETE FROM vectors WHERE rowid=?", [(r,) for r in rows])
                    db.execute("DELETE FROM chunks WHERE path=?", (path,))
                    db.execute("DELETE FROM files WHERE path=?", (path,))
                for index, (path, mtime, size, digest, chunks) in enumerate(pending):
                    for position, item in enumerate(chunks):
                        cursor = db.execute(
                            "INSERT INTO chunks (text, path, start_line, end_line) "
                            "VALUES (?, ?, ?, ?)",
                            (item.text, item.path, item.start_line, item.end_line),
                        )
                        if vectors:
                            blob = array("f", vectors[index][position]).tobytes()
                            db.execute(
                                "INSERT INTO vectors (rowid, vector) VALUES (?, ?)",
                                (cursor.lastrowid, blob),
                            )
                    db.execute("INSERT INTO files VALUES (?, ?, ?, ?)", (path, mtime, size, digest))
            self._vectors = None

    def watch(self) -> None:
        """Start re-indexing on file changes (a background task, until :meth:`stop`)."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name=f"memory {self.workspace}")

    async def _watch(self) -> None:
        from watchfiles import awatch

        self.workspace.mkdir(parents=True, exist_ok=True)
        try:
            async for changes in awatch(
                self.workspace, recursive=True, step=200, rust_timeout=1000, yield_on_timeout=True
            ):
                if not self.watching.is_set():  # watching now: catch up with the files once
                    self.watching.set()
                    await self.sync()
                relative = [
                    Path(p).relative_to(self.workspace).as_posix()
                    for _, p in changes
                    if Path(p).is_relative_to(self.workspace)
                ]
                if any(is_memory_path(r) or r == "memory" for r in relative):
                    try:
                        await self.sync()
                    except Exception:
                        log.exception("memory index of %s: sync failed", self.workspace)
        except (FileNotFoundError, RuntimeError) as exc:  # the workspace went away
            log.warning("memory watcher of %s stopped: %s", self.workspace, exc)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        await asyncio.to_thread(self.close)

    # ---- searching -----------------------------------------------------------------

    async def search(self, query: str, limit: int = 6) -> list[Hit]:
        """The best chunks for ``query`` (fresh: changed files are re-indexed first)."""
        await self.sync()
        vector = None
        if self.embedder is not None and query.strip():
            vector = (await self.embedder([query]))[0]
        return await asyncio.to_thread(self._search, query, limit, vector)

    def _search(self, query: str, limit: int, vector: list[float] | None) -> list[Hit]:
        match = fts_query(query)
        scores: dict[int, float] = {}
        with self._lock:
            db = self._conn()
            if match is not None:
                rows = db.execute(
                    "SELECT rowid, bm25(chunks) FROM chunks WHERE chunks MATCH ? "
                    "ORDER BY bm25(chunks) LIMIT ?",
                    (match, limit * 4),
                ).fetchall()
                for rowid, rank in rows:
                    strength = max(0.0, -float(rank))  # bm25(): more negative is better
                    text_score = strength / (1.0 + strength)
                    scores[rowid] = TEXT_WEIGHT * text_score if vector is not None else text_score
            if vector is not None:
                for rowid, similarity in self._nearest(db, vector, limit * 4):
                    scores[rowid] = scores.get(rowid, 0.0) + VECTOR_WEIGHT * similarity
            best = sorted(scores.items(), key=lambda item: -item[1])[:limit]
            hits = []
            for rowid, score in best:
                row = db.execute(
                    "SELECT path, start_line, end_line, text FROM chunks WHERE rowid=?", (rowid,)
                ).fetchone()
                if row:
                    hits.append(
                        Hit(row[0], int(row[1]), int(row[2]), row[3][:SNIPPET_CHARS], score)
                    )
        return hits

    def _nearest(
        self, db: sqlite3.Connection, vector: list[float], k: int
    ) -> list[tuple[int, float]]:
        import numpy as np

        version = int(db.execute("SELECT count(*), max(rowid) FROM vectors").fetchone()[0] or 0)
        if self._vectors is None or self._vectors[0] != version:
            rows = db.execute("SELECT rowid, vector FROM vectors").fetchall()
            if not rows:
                return []
            matrix = np.vstack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = matrix / np.where(norms == 0, 1, norms)
            self._vectors = (version, matrix, [r for r, _ in rows])
        _, matrix, ids = self._vectors
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if norm == 0 or matrix.shape[1] != query.shape[0]:
            return []
        similarity = matrix @ (query / norm)
        top = np.argsort(-similarity)[:k]
        return [(ids[i], float(max(0.0, similarity[i]))) for i in top]


def openai_embedder(
    base_url: str, api_key: str | None, model: str, headers: dict[str, str], timeout: float
) -> Embedder:
    """Embeddings from an OpenAI-compatible ``POST /embeddings`` (the ``openai`` SDK)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or "none",
        default_headers=headers or None,
        timeout=timeout,
        max_retries=1,
    )

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        response = await client.embeddings.create(model=model, input=list(texts))
        return [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]

    return embed
