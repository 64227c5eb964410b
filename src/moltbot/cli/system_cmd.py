"""`moltbot system ...`: system events, heartbeats and presence (as upstream's
`openclaw system`). All go through the running gateway."""

from __future__ import annotations

from typing import Any

import click

from moltbot.cli import context
from moltbot.cli.cron_cmd import Gateway, gateway_options

EXAMPLES = """\b
Examples:
  moltbot system event --text 'Deploy finished' --mode now
  moltbot system heartbeat last
  moltbot system heartbeat disable
"""


def _online(url: str | None, token: str | None, timeout_ms: int) -> Gateway:
    from moltbot.errors import GatewayUnreachableError

    gateway = Gateway(url, token, timeout_ms)
    if gateway.offline:
        raise GatewayUnreachableError(
            f"no gateway runs at {gateway.target.url}", hint="start it: moltbot gateway"
        )
    return gateway


@click.group(epilog=EXAMPLES)
def system() -> None:
    """System events, heartbeats and presence of the running gateway."""


@system.command("event")
@gateway_options
@click.option("--text", required=True, help="The note for the main session.")
@click.option(
    "--mode",
    type=click.Choice(["now", "next-heartbeat"]),
    default="next-heartbeat",
    show_default=True,
    help="now: run a heartbeat at once; next-heartbeat: wait for the next one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def event_cmd(
    url: str | None, token: str | None, timeout_ms: int, text: str, mode: str, as_json: bool
) -> None:
    """Queue a system event for the main session (the `wake` method)."""
    from moltbot.errors import UsageError

    if not text.strip():
        raise UsageError("--text must not be empty")
    result = _online(url, token, timeout_ms).call("wake", {"mode": mode, "text": text.strip()})
    context.emit(result, as_json, "ok")


@system.group("heartbeat")
def heartbeat() -> None:
    """Heartbeat controls."""


def _heartbeat_command(method: str, params: dict[str, Any] | None, help_text: str) -> Any:
    @gateway_options
    @click.option("--json", "as_json", is_flag=True, help="Print JSON (the default output).")
    def command(url: str | None, token: str | None, timeout_ms: int, as_json: bool) -> None:
        context.emit_json(_online(url, token, timeout_ms).call(method, params))

    command.__doc__ = help_text
    return command


heartbeat.command("last")(_heartbeat_command("last-heartbeat", None, "The last heartbeat event."))
heartbeat.command("enable")(
    _heartbeat_command("set-heartbeats", {"enabled": True}, "Switch heartbeats on.")
)
heartbeat.command("disable")(
    _heartbeat_command("set-heartbeats", {"enabled": False}, "Switch heartbeats off.")
)


@system.command("presence")
@gateway_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default output).")
def presence_cmd(url: str | None, token: str | None, timeout_ms: int, as_json: bool) -> None:
    """Clients and nodes connected to the gateway."""
    context.emit_json(_online(url, token, timeout_ms).call("system-presence"))
