"""What every command receives: the invocation, the environment, and output helpers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from moltbot.instance.resolve import Identity, Instance, Invocation


@dataclass
class CliContext:
    invocation: Invocation
    env: dict[str, str]
    home: Path
    color: bool = True
    _warned: bool = field(default=False, repr=False)

    def identity(self, *, port: int | None = None) -> Identity:
        from moltbot.instance import resolve_identity

        identity = resolve_identity(self._with_port(port), self.env, self.home)
        self._warn(identity)
        return identity

    def load(self, *, port: int | None = None, strict: bool | None = None) -> tuple[Instance, Any]:
        """The resolved instance and its config snapshot (validated)."""
        from moltbot.instance import load

        instance, snapshot = load(self._with_port(port), self.env, self.home, strict=strict)
        self._warn(instance.identity)
        for warning in config_warnings(snapshot):
            warn(warning)
        return instance, snapshot

    def _with_port(self, port: int | None) -> Invocation:
        inv = self.invocation
        return Invocation(profile=inv.profile, dev=inv.dev, port=port if port else inv.port)

    def _warn(self, identity: Identity) -> None:
        if not self._warned:
            for line in identity.warnings:
                warn(line)
            self._warned = True


def config_warnings(snapshot: Any) -> list[str]:
    """The config's warnings: unknown keys, and channel sections no known channel reads."""
    warnings = list(snapshot.warnings)
    if snapshot.config.channels:
        from moltbot.channels.registry import config_warnings as channel_warnings

        warnings += channel_warnings(snapshot.config.channels)
    return warnings


def get(ctx: click.Context | None = None) -> CliContext:
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(CliContext)
    if obj is None:  # a command invoked directly (tests)
        obj = CliContext(Invocation(), dict(os.environ), Path.home())
        ctx.obj = obj
    return obj


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        emit_json(data)
    elif text is not None:
        click.echo(text)


def home_relative(path: Path | str, home: Path) -> str:
    text = str(path)
    prefix = str(home).rstrip("/") + "/"
    return "~/" + text[len(prefix) :] if text.startswith(prefix) else text


def examples(*commands: str, notes: str = "") -> str:
    """A --help epilog listing example commands (kept verbatim by click's \\b marker)."""
    text = "\b\nExamples:\n" + "\n".join(f"  {command}" for command in commands)
    return text + (f"\n\b\n{notes}" if notes else "")


def target_options(func: Any) -> Any:
    """The options of every command that talks to this instance's gateway."""
    for option in reversed(
        [
            click.option("--url", help="Gateway WebSocket URL (default: this instance's)."),
            click.option("--token", help="Gateway token (default: env, then config)."),
            click.option("--password", help="Gateway password (password auth)."),
            click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        ]
    ):
        func = option(func)
    return func
