"""Run logs: ``<cron dir>/runs/<jobId>.jsonl``, one line per finished run.

Each line is upstream's ``CronRunLogEntry``: ``{ts, jobId, action: "finished",
status, error?, summary?, runAtMs, durationMs, nextRunAtMs?}``. A log over
:data:`MAX_BYTES` is cut to its newest :data:`KEEP_LINES` lines (atomically). A
torn last line (a crash mid-append) is skipped when reading; a line is never
longer than :data:`MAX_LINE_CHARS` (summaries are cut).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import orjson

from moltbot.automation.files import read_regular
from moltbot.automation.jobs import check_job_id
from moltbot.fsutil import write_atomic

MAX_BYTES = 2_000_000
KEEP_LINES = 2_000
MAX_LINE_CHARS = 8_000
MAX_READ_BYTES = 16 * 1024 * 1024


class RunLog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, job_id: str) -> Path:
        return self.directory / f"{check_job_id(job_id)}.jsonl"

    def append(self, entry: dict[str, Any]) -> None:
        """Append one entry (blocking: call from a worker thread)."""
        for key in ("summary", "error"):
            value = entry.get(key)
            if isinstance(value, str) and len(value) > MAX_LINE_CHARS // 2:
                entry[key] = value[: MAX_LINE_CHARS // 2] + "…"
        path = self.path(entry["jobId"])
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600
        )
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return  # never write into a FIFO or device someone put there
            os.write(fd, orjson.dumps(entry) + b"\n")
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            self._prune(path)

    def _prune(self, path: Path) -> None:
        lines = [line for line in (_read(path) or b"").split(b"\n") if line.strip()]
        write_atomic(path, b"\n".join(lines[-KEEP_LINES:]) + b"\n")

    def read(self, job_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The newest ``limit`` entries of ``job_id``, oldest first."""
        raw = _read(self.path(job_id))
        if not raw:
            return []
        out: list[dict[str, Any]] = []
        for line in reversed(raw.split(b"\n")):
            if len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if (
                isinstance(entry, dict)
                and entry.get("action") == "finished"
                and entry.get("jobId") == job_id
                and isinstance(entry.get("ts"), int)
            ):
                out.append(entry)
        out.reverse()
        return out


def _read(path: Path) -> bytes | None:
    try:
        return read_regular(path, max_bytes=MAX_READ_BYTES, tail=True)
    except OSError:  # a FIFO or directory someone put there, unreadable: no history
        return None


__all__ = ["KEEP_LINES", "MAX_BYTES", "RunLog"]
