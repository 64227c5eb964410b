"""The public surface of every package under ``moltbot`` is pinned here.

Each package declares ``__all__`` (empty when callers import its modules instead).
Adding or removing a name, or adding a package, fails this test until
:data:`PUBLIC` says so too: a change of the public surface is always a visible,
reviewed change, never a side effect.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import moltbot

PUBLIC: dict[str, list[str]] = {
    "moltbot": ["__version__"],
    "moltbot.agents": [],
    "moltbot.agents.providers": [
        "APIS",
        "AssistantMessage",
        "Finished",
        "Message",
        "ModelRequest",
        "Provider",
        "ProviderError",
        "StreamEvent",
        "TextDelta",
        "ToolCall",
        "ToolCallStarted",
        "ToolResultMessage",
        "ToolSpec",
        "Usage",
        "UserMessage",
        "build",
    ],
    "moltbot.agents.tools": [
        "TOOLS",
        "Tool",
        "ToolContext",
        "ToolError",
        "ToolParams",
        "ToolResult",
    ],
    "moltbot.browser": [],
    "moltbot.canvas": [],
    "moltbot.channels": [
        "AccountState",
        "AccountStatus",
        "ChannelAuthFailed",
        "ChannelConfigError",
        "ChannelError",
        "ChannelNotReady",
        "InboundMessage",
        "Media",
        "OutboundMessage",
        "ReplyContext",
        "SendResult",
        "Sender",
        "TargetError",
        "UnknownChannel",
        "UnsupportedMessage",
    ],
    "moltbot.channels.discord": [],
    "moltbot.channels.matrix": [],
    "moltbot.channels.slack": [],
    "moltbot.channels.telegram": [],
    "moltbot.cli": [],
    "moltbot.devices": [],
    "moltbot.commands": [
        "REGISTRY",
        "AgentControl",
        "Command",
        "CommandContext",
        "CommandRegistry",
        "CommandReply",
        "CompactOutcome",
        "Invocation",
        "Reply",
        "SessionInfo",
        "command",
        "execute",
        "handle",
    ],
    "moltbot.config": [
        "Config",
        "ConfigSnapshot",
        "content_hash",
        "parse_text",
        "read_config",
        "update_config",
        "validate",
    ],
    "moltbot.doctor": [
        "Finding",
        "FixAction",
        "Member",
        "Report",
        "diagnose",
        "host_overview",
        "render_host_table",
    ],
    "moltbot.gateway": [],
    "moltbot.gateway.http": [],
    "moltbot.gateway.http.openai": ["setup_routes"],
    "moltbot.gateway.methods": [],
    "moltbot.instance": [
        "DEFAULT_AGENT_ID",
        "Identity",
        "Instance",
        "Invocation",
        "ServiceNames",
        "load",
        "resolve_identity",
        "resolve_instance",
        "service_names",
        "validate_profile",
    ],
    "moltbot.rescue": [
        "Actor",
        "AuditLog",
        "Change",
        "NotOwner",
        "Outcome",
        "Request",
        "Rescuer",
        "StartFailed",
        "TargetRefused",
    ],
    "moltbot.security": [],
    "moltbot.service": [
        "MANAGERS",
        "ServiceCommand",
        "ServiceSpec",
        "build_spec",
        "cli_prefix",
        "get_manager",
        "manager_name",
    ],
    "moltbot.automation": ["Clock", "ManualClock", "SystemClock"],
    "moltbot.onboard": [
        "Applied",
        "ChannelPlan",
        "Flags",
        "Plan",
        "Prompter",
        "Proposal",
        "QuestionaryPrompter",
        "WizardAborted",
        "apply",
        "check_plan",
        "dashboard_url",
        "install_service",
        "interview",
        "plan_from_flags",
        "propose",
        "summary",
    ],
    "moltbot.sessions": [
        "Origin",
        "SessionEntry",
        "SessionStore",
        "Transcript",
        "TranscriptRead",
        "agent_of",
        "main_key",
        "normalize_agent_id",
        "normalize_key",
        "ordered_messages",
    ],
    "moltbot.validation": [
        "AliasChoices",
        "BaseModel",
        "ConfigDict",
        "Field",
        "FieldInfo",
        "ValidationError",
        "field_validator",
        "model_validator",
        "to_camel",
    ],
}


def packages() -> list[str]:
    """Every package of the source tree (each directory with an ``__init__.py``)."""
    root = Path(moltbot.__path__[0])
    return sorted(
        ".".join(("moltbot", *init.parent.relative_to(root).parts))
        for init in root.rglob("__init__.py")
    )


def test_every_package_is_pinned() -> None:
    found = set(packages())
    assert found - set(PUBLIC) == set(), "new packages: add them (with their __all__) to PUBLIC"
    assert set(PUBLIC) - found == set(), "packages gone: remove them from PUBLIC"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_are_pinned(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} declares no __all__ (use [] to export nothing)"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    added = sorted(set(exported) - set(PUBLIC[name]))
    removed = sorted(set(PUBLIC[name]) - set(exported))
    assert not added and not removed, (
        f"{name}.__all__ changed (added {added}, removed {removed}): "
        "if intended, update PUBLIC in tests/test_public_api.py"
    )
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
