"""Helpers for the agent end-to-end tests: a gateway subprocess whose model is a stand-in."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from gateway_harness import CORE_ONLY, GatewayProcess, start_gateway


def write_config(home: Path, profile: str, config: dict[str, Any]) -> Path:
    state = home / f".clawdbot-{profile}"
    state.mkdir(parents=True, exist_ok=True)
    data = {
        "gateway": {"mode": "local", "auth": {"token": secrets.token_urlsafe(24)}},
        "agents": {"defaults": {"workspace": str(home / f"clawd-{profile}")}},
    }
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merged = dict(data[key])
            for sub, sub_value in value.items():
                if isinstance(sub_value, dict) and isinstance(merged.get(sub), dict):
                    merged[sub] = {**merged[sub], **sub_value}
                else:
                    merged[sub] = sub_value
            data[key] = merged
        else:
            data[key] = value
    path = state / "moltbot.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def start(
    home: Path, config: dict[str, Any], profile: str = "main", env: dict[str, str] | None = None
) -> GatewayProcess:
    write_config(home, profile, config)
    return start_gateway(home, profile, env={**CORE_ONLY, **(env or {})})


def chat_events(client: Any, run_id: str) -> list[dict[str, Any]]:
    return [
        f["payload"]
        for f in client.events
        if f["event"] == "chat" and f["payload"]["runId"] == run_id
    ]


def agent_events(client: Any, run_id: str, stream: str | None = None) -> list[dict[str, Any]]:
    return [
        f["payload"]
        for f in client.events
        if f["event"] == "agent"
        and f["payload"]["runId"] == run_id
        and (stream is None or f["payload"]["stream"] == stream)
    ]


def is_chat(run_id: str, *states: str) -> Any:
    return lambda f: (
        f["event"] == "chat" and f["payload"]["runId"] == run_id and f["payload"]["state"] in states
    )
