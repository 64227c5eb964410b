"""The system prompt, rebuilt for every run from the workspace's bootstrap files.

Order: who the assistant is, its tools, safety, the workspace, the time zone,
then ``# Project Context`` with each bootstrap file (AGENTS, SOUL, TOOLS,
IDENTITY, USER, HEARTBEAT, BOOTSTRAP while present, MEMORY if present), then a
``## Runtime`` line. Each file is capped at ``agents.defaults.bootstrapMaxChars``
(first 70 % + last 20 % around a marker) and the files together at
:data:`TOTAL_MAX_CHARS`; a missing required file becomes a ``[MISSING]`` line so
the agent knows to create it.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from moltbot.instance.workspace import BOOTSTRAP_FILES, FIRST_RUN_FILE

OPTIONAL_FILES = (FIRST_RUN_FILE, "MEMORY.md")
TOTAL_MAX_CHARS = 100_000


@dataclass(frozen=True)
class Identity:
    name: str | None = None
    emoji: str | None = None
    vibe: str | None = None
    avatar: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("name", self.name),
                ("emoji", self.emoji),
                ("theme", self.vibe),
                ("avatar", self.avatar),
            )
            if v
        }


@dataclass(frozen=True)
class BootstrapFile:
    name: str
    path: Path
    content: str | None
    """None when missing; ``""`` when empty."""
    truncated: bool = False


_FIELD = re.compile(
    r"^\s*[-*]?\s*\**\s*(name|emoji|vibe|creature|theme|avatar)\s*\**\s*:\s*\**\s*"
    r"(.+?)\s*$",
    re.IGNORECASE,
)
_cache: dict[Path, tuple[tuple[int, int], str | None]] = {}


def _read(path: Path) -> str | None:
    """File text, cached by (mtime, size); None when missing or unreadable."""
    try:
        st = path.stat()
    except OSError:
        _cache.pop(path, None)
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        text: str | None = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    _cache[path] = (stamp, text)
    return text


def read_identity(workspace: Path) -> Identity:
    """Name, emoji, vibe, avatar from ``IDENTITY.md`` (``- Name: Molty`` lines)."""
    text = _read(workspace / "IDENTITY.md") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match:
            key = match.group(1).lower()
            key = "vibe" if key in ("creature", "theme") and "vibe" not in found else key
            value = match.group(2).strip().strip("*_").strip()
            if value and not value.startswith(("(", "[")):
                found.setdefault(key, value)
    return Identity(found.get("name"), found.get("emoji"), found.get("vibe"), found.get("avatar"))


def trim(text: str, limit: int, name: str) -> tuple[str, bool]:
    if limit <= 0 or len(text) <= limit:
        return text, False
    head, tail = int(limit * 0.7), int(limit * 0.2)
    marker = f"\n\n[...truncated, read {name} for full content...]\n\n"
    return text[:head] + marker + text[-tail:], True


def load_bootstrap(
    workspace: Path, max_chars: int, total_max: int = TOTAL_MAX_CHARS
) -> list[BootstrapFile]:
    files: list[BootstrapFile] = []
    budget = total_max
    for name in (*BOOTSTRAP_FILES, *OPTIONAL_FILES):
        path = workspace / name
        text = _read(path)
        if text is None and name == "MEMORY.md":
            path = workspace / "memory.md"
            text = _read(path)
        if text is None:
            if name not in OPTIONAL_FILES:
                files.append(BootstrapFile(name, path, None))
            continue
        if not text.strip():
            continue
        content, cut = trim(text.strip(), min(max_chars, max(budget, 0)), name)
        budget -= len(content)
        files.append(BootstrapFile(name, path, content, cut))
    return files


@dataclass(frozen=True)
class PromptInputs:
    agent_id: str
    workspace: Path
    model: str
    tools: Sequence[tuple[str, str]]
    channel: str = "webchat"
    bootstrap_max_chars: int = 20_000
    extra: str | None = None
    thinking: str | None = None
    skills: str | None = None
    """The eligible skills block (see :mod:`moltbot.agents.skills`)."""


def build_system_prompt(inputs: PromptInputs) -> str:
    identity = read_identity(inputs.workspace)
    who = "You are a personal assistant running inside Moltbot."
    if identity.name:
        who += f" Your name is {identity.name}" + (f" {identity.emoji}" if identity.emoji else "")
        who += "."
    parts = [who]
    if inputs.tools:
        lines = "\n".join(f"- {name}: {desc.splitlines()[0]}" for name, desc in inputs.tools)
        parts.append(
            "## Tooling\nTools available to you (call them; do not describe calls):\n" + lines
        )
    parts.append(
        "## Safety\nNever reveal secrets (API keys, tokens, passwords). Ask before "
        "destructive or irreversible actions. Private things stay private."
    )
    parts.append(
        f"## Workspace\nYour working directory is: {inputs.workspace}\n"
        "Relative paths in file tools resolve there; files outside it are not "
        "reachable."
    )
    if inputs.skills:
        parts.append(inputs.skills)
    parts.append(f"## Current Date & Time\nTime zone: {_timezone()}")
    context = []
    for item in load_bootstrap(inputs.workspace, inputs.bootstrap_max_chars):
        if item.content is None:
            context.append(f"## {item.name}\n\n[MISSING] Expected at: {item.path}")
        else:
            context.append(f"## {item.name}\n\n{item.content}")
    if context:
        parts.append(
            "# Project Context\nThe workspace files below describe who you are and "
            "whom you help. Embody SOUL.md.\n\n" + "\n\n".join(context)
        )
    if inputs.extra:
        parts.append(inputs.extra.strip())
    parts.append(
        "## Runtime\nRuntime: "
        + " | ".join(
            (
                f"agent={inputs.agent_id}",
                f"host={socket.gethostname()}",
                f"os={platform.system()} {platform.release()}",
                f"model={inputs.model}",
                f"channel={inputs.channel}",
                f"thinking={inputs.thinking or 'off'}",
            )
        )
    )
    return "\n\n".join(parts)


def _timezone() -> str:
    tz = os.environ.get("TZ")
    if tz:
        return tz
    try:
        link = os.readlink("/etc/localtime")
        if "zoneinfo/" in link:
            return link.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return time.tzname[0] or "UTC"
