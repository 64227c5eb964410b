"""Looking at a target from the outside: its config, its gateway, its log, its service,
its doctor findings. Nothing here writes anything.

The target's config is read leniently (``${VAR}`` references the rescue instance
cannot resolve are kept, not errors) but otherwise exactly as its gateway reads it, so
"invalid" means its gateway would refuse to start; a syntax error comes with its
``file:line:column``. The log is read from the end (at most :data:`LOG_WINDOW` bytes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.config.store import content_hash, parse_text, read_text, validate
from moltbot.errors import AuthError, ConfigError, MoltbotError
from moltbot.fsutil import open_regular
from moltbot.instance.resolve import Instance

LOG_WINDOW = 256 * 1024
MAX_LOG_LINES = 200
MAX_LINE_CHARS = 300
LAST_ERRORS = 3


@dataclass(frozen=True)
class ConfigCheck:
    """The target's config file as its gateway would read it."""

    path: Path
    exists: bool
    valid: bool
    hash: str | None
    raw: str | None
    error: str | None = None
    location: dict[str, Any] | None = None
    """``{file, line, column}`` of a syntax error (or a byte that is not UTF-8)."""
    warnings: tuple[str, ...] = ()

    def where(self) -> str:
        """``file:line:col`` of the error, or the file."""
        if self.location:
            loc = self.location
            return f"{loc['file']}:{loc['line']}:{loc['column']}"
        return str(self.path)

    def wire(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "exists": self.exists,
            "valid": self.valid,
            "hash": self.hash,
            "error": self.error,
            "location": self.location,
            "warnings": list(self.warnings),
        }


def check_config(path: Path, env: Mapping[str, str]) -> ConfigCheck:
    """Read and validate ``path`` (see the module doc). Never raises for a bad file, and
    never blocks on something that is not a regular file (a FIFO)."""
    try:
        os.close(open_regular(path))
        raw = read_text(path)
    except FileNotFoundError:
        return ConfigCheck(path, False, True, None, None)
    except ConfigError as exc:
        return ConfigCheck(path, True, False, None, None, exc.message, _location(exc))
    except OSError as exc:
        return ConfigCheck(path, True, False, None, None, f"cannot read config {path}: {exc}")
    digest = content_hash(raw) if raw else None
    try:
        data = parse_text(raw, str(path))
        _, warnings = validate(data, env, str(path), missing_env="keep")
    except ConfigError as exc:
        return ConfigCheck(path, True, False, digest, raw, exc.message, _location(exc))
    return ConfigCheck(path, True, True, digest, raw, warnings=warnings)


def _location(exc: ConfigError) -> dict[str, Any] | None:
    details = exc.details
    if isinstance(details, dict) and {"file", "line", "column"} <= details.keys():
        return {"file": details["file"], "line": details["line"], "column": details["column"]}
    return None


# -- the log ------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    time: str
    level: str
    subsystem: str
    message: str
    exit_code: int | None = None

    def line(self) -> str:
        clock = self.time[11:19] if len(self.time) >= 19 else self.time
        text = f"{clock} {self.level} {self.subsystem}: {self.message}"
        return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


def read_log(log_file: Path, window: int = LOG_WINDOW) -> list[LogEntry]:
    """The entries of the last ``window`` bytes of the gateway's JSON-lines log."""
    try:
        with os.fdopen(open_regular(log_file), "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - window))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    if size > window and lines:
        lines = lines[1:]  # the first one is cut
    entries = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        code = data.get("exitCode")
        entries.append(
            LogEntry(
                str(data.get("time", "")),
                str(data.get("level", "")),
                str(data.get("subsystem", "")),
                str(data.get("message", "")),
                code if isinstance(code, int) and not isinstance(code, bool) else None,
            )
        )
    return entries


@dataclass(frozen=True)
class LastRun:
    """How the target's last run ended, from its log."""

    exit_code: int | None
    ended: str | None
    """``stopped``, ``failed``, ``running`` (started, no end recorded) or None (no log)."""
    errors: tuple[str, ...] = ()


def last_run(entries: list[LogEntry]) -> LastRun:
    """The end of the last run and the error lines logged since the last run that came
    up (so a failed start shows what went wrong before it too)."""
    starts = [i for i, e in enumerate(entries) if e.message.startswith("listening on ")]
    recent = entries[starts[-1] :] if starts else entries
    errors = tuple(e.line() for e in recent if e.level in ("error", "critical"))[-LAST_ERRORS:]
    for entry in reversed(entries):
        if entry.exit_code is not None:
            return LastRun(entry.exit_code, "stopped" if entry.exit_code == 0 else "failed", errors)
        if entry.message.startswith("listening on "):
            return LastRun(None, "running", errors)
    return LastRun(None, None, errors)


def tail_log(
    log_file: Path, lines: int, grep: str | None = None, window: int = LOG_WINDOW
) -> list[str]:
    """The last ``lines`` entries (at most :data:`MAX_LOG_LINES`) as readable lines; with
    ``grep``, only those containing it (case-insensitive, plain text, not a pattern)."""
    wanted = max(1, min(lines, MAX_LOG_LINES))
    entries = read_log(log_file, window)
    shown = [entry.line() for entry in entries]
    if grep:
        needle = grep.lower()
        shown = [line for line in shown if needle in line.lower()]
    return shown[-wanted:]


# -- the gateway and its service ------------------------------------------------------


@dataclass(frozen=True)
class Running:
    """What the target's running gateway says about itself (None fields: unknown)."""

    pid: int | None
    port: int | None
    ports: dict[str, int] = field(default_factory=dict)
    answering: bool = False
    uptime_ms: int | None = None
    version: str | None = None
    error: str | None = None


def running(instance: Instance, env: Mapping[str, str], timeout: float = 3.0) -> Running | None:
    """The target's gateway if one holds its lock, asked for its ``status`` with the
    token of the target's own config; ``None`` when none runs."""
    from moltbot.gateway.probe import probe
    from moltbot.gateway.target import running_gateway, running_target

    runtime = running_gateway(instance)
    if runtime is None:
        return None
    pid = runtime.get("pid") if isinstance(runtime.get("pid"), int) else None
    ports = {
        key: runtime[key]
        for key in ("port", "controlPort", "canvasPort")
        if isinstance(runtime.get(key), int)
    }
    target = running_target(instance.identity, env)
    if target is None:
        return Running(pid, ports.get("port"), ports, error="its config cannot be read")
    rpc = probe(target, timeout)
    if not rpc["ok"]:
        if rpc.get("kind") == "auth" and _http_health(target.host, target.port, timeout):
            error = "answers /health; its token is not known here (set in its own environment?)"
            return Running(pid, ports.get("port"), ports, answering=True, error=error)
        return Running(pid, ports.get("port"), ports, error=rpc.get("error"))
    status = rpc["status"].instance
    return Running(
        status.pid or pid,
        status.port,
        ports,
        answering=True,
        uptime_ms=status.uptime_ms,
        version=status.version,
    )


@dataclass(frozen=True)
class Health:
    """The target answered: through the protocol's ``health`` with the token of its own
    config (``payload`` is the :class:`~moltbot.gateway.status.HealthPayload`), or — when
    its token is not known here (a ``${VAR}`` only its own environment sets) — through
    the unauthenticated ``GET /health`` of its port (``payload`` None)."""

    via: str
    payload: Any = None


def health(instance: Instance, env: Mapping[str, str], timeout: float = 3.0) -> Health | None:
    """Whether the target's gateway answers ``health`` (see :class:`Health`); ``None``
    while none of it answers."""
    from moltbot.gateway.status import HealthPayload, parse
    from moltbot.gateway.sync_client import SyncGatewayClient
    from moltbot.gateway.target import running_target

    target = running_target(instance.identity, env)
    if target is None:
        return None
    try:
        with SyncGatewayClient.for_target(target, timeout) as client:
            return Health("protocol", parse(HealthPayload, client.call("health")))
    except AuthError:
        return _http_health(target.host, target.port, timeout)
    except MoltbotError:
        return None


def _http_health(host: str, port: int, timeout: float) -> Health | None:
    from moltbot.service.inspect import probe_health

    answer = probe_health(port, host, timeout)
    return Health("http") if answer.get("ok") else None


def service(instance: Instance, env: Mapping[str, str]) -> dict[str, Any]:
    """The target's own service: manager, name, installed, running (or why unknown)."""
    from moltbot.service.inspect import service_facts

    facts = service_facts(instance, env)
    keys = ("manager", "name", "installed", "available", "unavailable", "running", "runtime")
    return {key: facts.get(key) for key in keys}


def doctor(instance: Instance, env: Mapping[str, str]) -> Any:
    """The target's doctor :class:`~moltbot.doctor.Report` (its findings, and the fixes
    ``doctor --fix`` would apply in ``auto_plans``), without the host-wide part."""
    from moltbot.doctor import diagnose

    return diagnose(instance.identity, env, host=False)


def short_error(message: str) -> str:
    """The first line of a config error, and its first problem when it lists several."""
    lines = [line for line in message.splitlines() if line.strip()]
    if not lines:
        return message
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[1].strip().removeprefix('- ')}"
    return first


__all__ = [
    "ConfigCheck",
    "Health",
    "LastRun",
    "LogEntry",
    "Running",
    "check_config",
    "doctor",
    "health",
    "last_run",
    "read_log",
    "running",
    "service",
    "short_error",
    "tail_log",
]
