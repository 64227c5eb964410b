"""The exec approvals file of one instance: ``<state>/exec-approvals.json``.

Upstream's format (``version: 1``)::

    {"version": 1,
     "defaults": {"security": "allowlist", "ask": "on-miss", "askFallback": "deny"},
     "agents": {"main": {"ask": "always",
                         "allowlist": [{"id": "...", "pattern": "/usr/bin/uname",
                                        "lastUsedAt": 1700000000000}]},
                "*": {...}}}

``security`` (``deny``/``allowlist``/``full``) and ``ask`` (``off``/``on-miss``/
``always``) can only *tighten* the config's ``tools.exec.security`` and
``tools.exec.ask``: the effective security is the stricter of the two, the
effective ask the more asking. ``askFallback`` says what happens when nobody
answers an approval in time: ``deny`` (default), ``allowlist`` (run only what the
allowlist vouches for) or ``full`` (run it). An agent's ``allowlist`` entries are
glob patterns of executable paths (``*`` within a path component, ``**`` across);
an operator's "allow always" adds the command's executable here. Entries of the
agent ``*`` apply to every agent.

:func:`snapshot` is what ``exec.approvals.get`` returns (``hash`` is the sha256 of
the file's bytes, of nothing when it does not exist); :func:`replace` writes a
new file only when the caller's ``baseHash`` is that hash (compare-and-swap, as
``config.*``). Writes are atomic (``0600``). A socket section (upstream's macOS
companion app) is kept as written but its token is never sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from moltbot.errors import ConflictError, UsageError
from moltbot.fsutil import write_json_atomic

Security = Literal["deny", "allowlist", "full"]
Ask = Literal["off", "on-miss", "always"]
SECURITY_ORDER: dict[str, int] = {"deny": 0, "allowlist": 1, "full": 2}
ASK_ORDER: dict[str, int] = {"off": 0, "on-miss": 1, "always": 2}
DECISIONS = ("allow-once", "allow-always", "deny")
WILDCARD_AGENT = "*"

__all__ = [
    "ASK_ORDER",
    "DECISIONS",
    "SECURITY_ORDER",
    "AgentPolicy",
    "ApprovalsFile",
]

_lock = threading.RLock()


@dataclass(frozen=True)
class AgentPolicy:
    """What applies to one agent's ``exec`` (config and file combined)."""

    security: Security
    ask: Ask
    ask_fallback: Security
    patterns: tuple[str, ...]


class ApprovalsFile:
    """``<state>/exec-approvals.json`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _raw(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def load(self) -> dict[str, Any]:
        """The normalized file (an empty one when missing or unreadable)."""
        return normalize(_parse(self._raw()))

    def snapshot(self) -> dict[str, Any]:
        """``{path, exists, hash, file}`` with the socket token left out."""
        raw = self._raw()
        return {
            "path": str(self.path),
            "exists": raw is not None,
            "hash": hashlib.sha256(raw or b"").hexdigest(),
            "file": redacted(normalize(_parse(raw))),
        }

    def replace(self, file: dict[str, Any], base_hash: str | None) -> dict[str, Any]:
        """Write ``file`` (already validated against the schema) if ``base_hash`` is the
        current file's hash (required once the file exists); returns the new snapshot.
        Raises :class:`ConflictError` for a stale or missing hash."""
        with _lock:
            raw = self._raw()
            if raw is not None:
                current = hashlib.sha256(raw).hexdigest()
                if not base_hash:
                    raise ConflictError(
                        "exec approvals base hash required; re-run exec.approvals.get and retry"
                    )
                if base_hash != current:
                    raise ConflictError(
                        "exec approvals changed since last load; re-run exec.approvals.get "
                        "and retry"
                    )
            previous = normalize(_parse(raw))
            merged = normalize(file)
            old_socket = previous.get("socket") or {}
            socket = {**old_socket, **(merged.get("socket") or {})}
            if socket:
                merged["socket"] = socket
            else:
                merged.pop("socket", None)
            self._write(merged)
            return self.snapshot()

    def policy(self, agent_id: str, config_security: str, config_ask: str) -> AgentPolicy:
        """The effective policy of ``agent_id`` (see the module docstring)."""
        file = self.load()
        defaults = file.get("defaults") or {}
        agents = file.get("agents") or {}
        own = agents.get(agent_id) or {}
        wild = agents.get(WILDCARD_AGENT) or {}

        def pick(key: str) -> Any:
            for source in (own, wild, defaults):
                if source.get(key) is not None:
                    return source[key]
            return None

        security = _stricter(config_security, pick("security"))
        ask = _more_asking(config_ask, pick("ask"))
        fallback = pick("askFallback")
        fallback = fallback if fallback in SECURITY_ORDER else "deny"
        patterns = tuple(
            str(entry.get("pattern", ""))
            for entry in (*(wild.get("allowlist") or ()), *(own.get("allowlist") or ()))
            if isinstance(entry, dict) and entry.get("pattern")
        )
        return AgentPolicy(security, ask, _stricter(security, fallback), patterns)  # type: ignore[arg-type]

    def allow_always(self, agent_id: str, pattern: str, command: str) -> None:
        """Add ``pattern`` to the agent's allowlist (no duplicate), as used now."""
        pattern = pattern.strip()
        if not pattern:
            return
        with _lock:
            file = self.load()
            agents = file.setdefault("agents", {})
            agent = agents.setdefault(agent_id, {})
            allowlist = agent.setdefault("allowlist", [])
            now = int(time.time() * 1000)
            for entry in allowlist:
                if entry.get("pattern") == pattern:
                    entry.update(lastUsedAt=now, lastUsedCommand=command)
                    break
            else:
                allowlist.append(
                    {
                        "id": str(uuid.uuid4()),
                        "pattern": pattern,
                        "lastUsedAt": now,
                        "lastUsedCommand": command,
                    }
                )
            self._write(file)

    def record_use(self, agent_id: str, pattern: str, command: str, resolved: str) -> None:
        """Note on a matching entry that it was used (``lastUsedAt`` and what ran)."""
        with _lock:
            file = self.load()
            changed = False
            for key in (agent_id, WILDCARD_AGENT):
                for entry in ((file.get("agents") or {}).get(key) or {}).get("allowlist") or []:
                    if entry.get("pattern") == pattern:
                        entry.update(
                            lastUsedAt=int(time.time() * 1000),
                            lastUsedCommand=command,
                            lastResolvedPath=resolved,
                        )
                        changed = True
            if changed:
                self._write(file)

    def _write(self, file: dict[str, Any]) -> None:
        write_json_atomic(self.path, file)


def _parse(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {"version": 1}
    try:
        data = json.loads(raw)
    except ValueError:
        return {"version": 1}
    return data if isinstance(data, dict) and data.get("version") == 1 else {"version": 1}


def normalize(file: dict[str, Any]) -> dict[str, Any]:
    """Upstream's normal form: ``version: 1``; the legacy agent ``default`` folded into
    ``main``; every allowlist entry with an ``id``; empty sections left out."""
    out: dict[str, Any] = {"version": 1}
    socket = {k: v.strip() for k, v in (file.get("socket") or {}).items() if isinstance(v, str)}
    socket = {k: v for k, v in socket.items() if v and k in ("path", "token")}
    if socket:
        out["socket"] = socket
    defaults = {
        k: v
        for k, v in (file.get("defaults") or {}).items()
        if k in ("security", "ask", "askFallback", "autoAllowSkills") and v is not None
    }
    if defaults:
        out["defaults"] = defaults
    agents: dict[str, Any] = {}
    raw_agents = dict(file.get("agents") or {})
    legacy = raw_agents.pop("default", None)
    for key, agent in raw_agents.items():
        if isinstance(agent, dict):
            agents[key] = _agent(agent)
    if isinstance(legacy, dict):
        main = agents.get("main", {})
        merged = {**_agent(legacy), **{k: v for k, v in main.items() if k != "allowlist"}}
        seen: set[str] = set()
        entries = []
        for entry in [*main.get("allowlist", []), *_agent(legacy).get("allowlist", [])]:
            key = entry["pattern"].strip().lower()
            if key and key not in seen:
                seen.add(key)
                entries.append(entry)
        if entries:
            merged["allowlist"] = entries
        agents["main"] = merged
    if agents:
        out["agents"] = agents
    return out


def _agent(agent: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: v
        for k, v in agent.items()
        if k in ("security", "ask", "askFallback", "autoAllowSkills") and v is not None
    }
    entries = []
    for entry in agent.get("allowlist") or []:
        if isinstance(entry, dict) and isinstance(entry.get("pattern"), str):
            kept = {
                k: v
                for k, v in entry.items()
                if k in ("id", "pattern", "lastUsedAt", "lastUsedCommand", "lastResolvedPath")
                and v is not None
            }
            kept.setdefault("id", str(uuid.uuid4()))
            entries.append(kept)
    if entries:
        out["allowlist"] = entries
    return out


def redacted(file: dict[str, Any]) -> dict[str, Any]:
    """Without the socket token (a secret of upstream's macOS app)."""
    out = dict(file)
    socket = out.pop("socket", None) or {}
    if socket.get("path"):
        out["socket"] = {"path": socket["path"]}
    return out


def _stricter(a: str, b: Any) -> str:
    if b not in SECURITY_ORDER:
        return a if a in SECURITY_ORDER else "deny"
    return a if SECURITY_ORDER.get(a, 0) <= SECURITY_ORDER[b] else str(b)


def _more_asking(a: str, b: Any) -> str:
    if b not in ASK_ORDER:
        return a if a in ASK_ORDER else "on-miss"
    return a if ASK_ORDER.get(a, 1) >= ASK_ORDER[b] else str(b)


def check_decision(decision: str) -> str:
    if decision not in DECISIONS:
        raise UsageError(f"invalid decision {decision!r} (allow-once, allow-always or deny)")
    return decision
