"""Helpers of the rescue tests: instances written on this test's HOME, real gateway
subprocesses, and the clean-up of every gateway a rescue started on its own."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_harness import (
    CORE_ONLY,
    GatewayProcess,
    free_port_block,
    launch_gateway,
    start_gateway,
)

BROKEN_LINE = '    "mode": "local" oops,'


@dataclass
class Host:
    """Instances written on this test's HOME; gateways started and stopped for the test."""

    home: Path
    ports: dict[str, int] = field(default_factory=dict)
    started: list[GatewayProcess] = field(default_factory=list)

    def state(self, profile: str) -> Path:
        return self.home / f".clawdbot-{profile}"

    def config_path(self, profile: str) -> Path:
        return self.state(profile) / "moltbot.json"

    def write(self, profile: str, extra: dict[str, Any] | None = None) -> Path:
        """A plain-JSON config for ``profile`` with its own port, token and workspace."""
        port = self.ports.setdefault(profile, free_port_block())
        data = {
            "gateway": {
                "mode": "local",
                "port": port,
                "auth": {"token": secrets.token_urlsafe(24)},
            },
            "agents": {"defaults": {"workspace": str(self.home / f"clawd-{profile}")}},
        }
        _merge(data, extra or {})
        path = self.config_path(profile)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def start(self, profile: str, env: dict[str, str] | None = None) -> GatewayProcess:
        gw = start_gateway(
            self.home, profile, port=self.ports[profile], port_flag=False, env=env or CORE_ONLY
        )
        self.started.append(gw)
        return gw

    def break_config(self, profile: str) -> tuple[int, int]:
        """A hand edit that is not JSON5: returns the (line, column) of the error."""
        path = self.config_path(profile)
        lines = path.read_text().splitlines()
        index = next(i for i, line in enumerate(lines) if '"mode": "local"' in line)
        lines[index] = BROKEN_LINE
        path.write_text("\n".join(lines) + "\n")
        return index + 1, BROKEN_LINE.index("oops") + 1

    def fail_to_start(self, profile: str) -> int:
        """Start ``profile``'s gateway as a supervisor would; it must exit (its code)."""
        proc, _ = launch_gateway(self.home, profile, env=CORE_ONLY)
        return proc.wait(60)

    def runtime_pid(self, profile: str) -> int | None:
        try:
            data = json.loads((self.state(profile) / "gateway.json").read_text())
        except (OSError, ValueError):
            return None
        return data.get("pid")

    def stop_everything(self) -> None:
        for gw in self.started:
            gw.stop()
        for profile in self.ports:  # gateways a rescue started detached
            pid = self.runtime_pid(profile)
            if pid:
                _terminate(pid)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def dead_model() -> dict[str, Any]:
    """Config of a model whose provider is down (nothing listens on its port) and whose
    key is stale: no model works for an instance with it."""
    return {
        "models": {
            "providers": {
                "openai": {
                    "baseUrl": f"http://127.0.0.1:{free_port_block()}/v1",
                    "apiKey": "sk-expired",
                }
            }
        },
        "agents": {"defaults": {"model": "openai/gpt-4o"}},
    }


def audit(host: Host, profile: str = "rescue") -> list[dict[str, Any]]:
    path = host.state(profile) / "rescue" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def steps(entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["op"], e["target"], e["result"]) for e in entries]
