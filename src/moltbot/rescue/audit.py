"""The rescue audit log: ``<state>/rescue/audit.jsonl`` of the rescue instance.

One JSON line per step — every operation asked for, refused, waiting for its
confirmation, confirmed, applied or failed — with who asked (``actor``), through which
front-end (``via``), the target, the operation and its arguments (secrets redacted),
and for changes the target config's hash before and after. Mode 0600 in a 0700
directory; at 1 MiB the file is moved to ``audit.jsonl.1`` (one generation kept).
Lines are appended with one ``write`` each under an OS lock, so writers in several
processes (the gateway, the CLI) never interleave.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moltbot.fsutil import locked, open_regular

MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Actor:
    """Who asks: ``kind`` is the front-end (``cli``, ``protocol``, ``chat``, ``webchat``,
    ``agent``); ``key`` identifies the asker for confirmations (a chat sender in one
    conversation, a protocol device); ``label`` is for people and the audit log."""

    kind: str
    key: str
    label: str


class AuditLog:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "rescue" / "audit.jsonl"

    def append(
        self,
        actor: Actor,
        target: str,
        op: str,
        result: str,
        *,
        args: dict[str, Any] | None = None,
        message: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:
        """Append one step; returns the entry. Raises ``OSError`` (a step that cannot be
        audited is not taken: callers write the entry before they act)."""
        entry: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "actor": actor.label,
            "via": actor.kind,
            "target": target,
            "op": op,
            "result": result,
        }
        if args:
            entry["args"] = args
        if message:
            entry["message"] = message[:500]
        if before is not None:
            entry["before"] = before
        if after is not None:
            entry["after"] = after
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with locked(self.path.with_name("audit.lock"), 10.0):
            try:
                if self.path.stat().st_size + len(line) > MAX_BYTES:
                    os.replace(self.path, self.path.with_name("audit.jsonl.1"))
            except FileNotFoundError:
                pass
            fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every entry of the current file (a torn line is skipped)."""
        try:
            with os.fdopen(open_regular(self.path), "rb") as handle:
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found


__all__ = ["Actor", "AuditLog"]
