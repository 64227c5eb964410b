"""Which agents exist, which is the default, and where each one's workspace is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moltbot.config.schema import Config
from moltbot.instance.resolve import DEFAULT_AGENT_ID, Instance


@dataclass(frozen=True)
class AgentSpec:
    id: str
    name: str | None
    workspace: Path
    default: bool


def agent_specs(config: Config, instance: Instance) -> list[AgentSpec]:
    """``agents.list`` entries (or the implicit ``main`` agent), default first marked.

    The default agent is the entry with ``default: true``, else the first entry.
    It works in the instance workspace unless its entry names another; any other
    agent works in ``<instance workspace>-<agentId>`` unless configured.
    """
    entries = config.agents.entries
    if not entries:
        return [AgentSpec(DEFAULT_AGENT_ID, None, instance.workspace, True)]
    default_id = default_agent_id(config)
    out = []
    for entry in entries:
        if entry.workspace:
            workspace = _expand(entry.workspace, instance.home)
        elif entry.id == default_id:
            workspace = instance.workspace
        else:
            workspace = instance.workspace.with_name(f"{instance.workspace.name}-{entry.id}")
        out.append(AgentSpec(entry.id, entry.name, workspace, entry.id == default_id))
    return out


def default_agent_id(config: Config) -> str:
    """The one rule for the default agent: the ``agents.list`` entry with
    ``default: true``, else the first entry, else the implicit ``main``."""
    entries = config.agents.entries
    if not entries:
        return DEFAULT_AGENT_ID
    return next((e.id for e in entries if e.default), entries[0].id)


def _expand(value: str, home: Path) -> Path:
    if value == "~" or value.startswith("~/"):
        return home / value[2:] if value != "~" else home
    return Path(value).resolve()
