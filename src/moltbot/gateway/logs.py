"""Gateway logging: JSON lines in <state>/logs/gateway.jsonl (size-rotated) and a
readable console. ``--verbose`` mirrors debug lines (handshakes, frames) to the console.
:func:`tail_file` and :func:`last_error` read the file back (``logs.tail``, ``moltbot
logs``, ``moltbot status``), with or without a running gateway."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import Any

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3

_LEVEL_COLORS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[36m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[31;1m",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "subsystem": record.name.removeprefix("moltbot."),
            "message": record.getMessage(),
        }
        exit_code = getattr(record, "exit_code", None)
        if exit_code is not None:  # how a run ended (``moltbot rescue X status`` reads it)
            entry["exitCode"] = exit_code
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def __init__(self, color: bool) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = record.levelname.lower()
        name = record.name.removeprefix("moltbot.")
        line = f"{stamp} {level:<7} {name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if self.color:
            return f"{_LEVEL_COLORS.get(record.levelname, '')}{line}\x1b[0m"
        return line


def configure(log_file: Path, *, verbose: bool, color: bool) -> logging.Handler:
    """Set up file + console logging; returns the file handler (for file-only records)."""
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = logging.getLogger("moltbot")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    file_handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    file_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    file_handler.setFormatter(JsonFormatter())
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(ConsoleFormatter(color and sys.stderr.isatty()))
    root.addHandler(file_handler)
    root.addHandler(console)
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return file_handler


def record_to_file(handler: logging.Handler, message: str, exit_code: int | None = None) -> None:
    """Write one error record to the log file only (the CLI already printed it), with the
    exit code the process is about to exit with."""
    record = logging.LogRecord("moltbot.gateway", logging.ERROR, __file__, 0, message, None, None)
    record.exit_code = exit_code
    handler.handle(record)


def last_error(log_file: Path, max_bytes: int = 64 * 1024) -> str | None:
    """The last error-level message of the gateway's last run, for `status` when the
    gateway is down. ``None`` when that run started cleanly or stopped cleanly: an
    error of an earlier failed start is history, not the current state."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = str(entry.get("message", ""))
        if entry.get("level") in ("error", "critical"):
            return f"{entry.get('time', '')} {message}".strip()
        if message == "gateway stopped" or message.startswith("listening on "):
            return None
    return None


def tail_file(
    path: os.PathLike[str] | str, cursor: int | None, limit: int, max_bytes: int
) -> dict[str, Any]:
    """Lines of ``path`` after byte ``cursor`` (or its end), at most ``limit`` lines and
    ``max_bytes`` bytes. ``reset`` says the file shrank (rotated) since the cursor."""
    result: dict[str, Any] = {"file": str(path), "cursor": 0, "size": 0, "lines": []}
    try:
        size = os.path.getsize(path)
    except OSError:
        return result
    reset = cursor is not None and cursor > size
    start = 0 if reset else (cursor if cursor is not None else max(0, size - max_bytes))
    truncated = size - start > max_bytes
    start = max(start, size - max_bytes)
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(size - start)
    lines = data.decode("utf-8", errors="replace").split("\n")
    if start > 0 and (cursor is None or truncated):
        lines = lines[1:]  # first line is partial
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > limit:
        lines = lines[-limit:]  # upstream's `truncated` means bytes were skipped, not lines
    result.update(cursor=size, size=size, lines=lines)
    if truncated:
        result["truncated"] = True
    if reset:
        result["reset"] = True
    return result


def upstream_line(line: str) -> str:
    """A log line as upstream's file logger (tslog) writes it, so its CLI (``openclaw
    logs``) and Control UI show level, subsystem and message: ``"0"`` is the logger's
    name (``{"subsystem": ...}``), ``"1"`` the message, ``_meta`` the level and date.
    Our own keys are kept; a line that is not ours is passed through."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "_meta" in entry or "message" not in entry:
        return line
    name = json.dumps({"subsystem": str(entry.get("subsystem", ""))})
    level = str(entry.get("level", "info")).upper()
    out = {
        "0": name,
        "1": str(entry["message"]),
        "_meta": {
            "name": name,
            "logLevelName": {"WARNING": "WARN", "CRITICAL": "FATAL"}.get(level, level),
            "date": entry.get("time"),
        },
        **entry,
    }
    return json.dumps(out, ensure_ascii=False)
