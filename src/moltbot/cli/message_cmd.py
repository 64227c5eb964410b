"""`moltbot message send`: send a message through a channel."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import click

from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.channels.types import OutboundMessage
    from moltbot.errors import MethodError


@click.group(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot message send --channel telegram --target 123456789 --message 'Hello'\n"
        "  moltbot message send --channel slack --target channel:C0123 --message '*deploy* done'"
    )
)
def message() -> None:
    """Send messages through the configured channels."""


@message.command(
    "send",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot message send --channel telegram --target 123456789 --message 'Hello'\n"
        "  moltbot message send --channel telegram --target -1001234:topic:42 -m 'to a topic'\n"
        "  moltbot message send --channel slack --target user:U0123 -m 'hi' --media ./report.pdf\n"
        "\b\n"
        "Targets: Telegram chat id, @channel or <chat>:topic:<id>; Slack channel:<id>,\n"
        "user:<id> or a bare C/G/D/U id. Goes through the running gateway (send);\n"
        "without one, the CLI talks to the platform itself.\n"
        "Exit 9 when the platform refuses the target, 6 when it is unreachable."
    ),
)
@click.option(
    "--channel", help="A channel (telegram, slack, ...; default: the only configured one)."
)
@click.option("--target", "-t", required=True, help="Chat to send to.")
@click.option("--message", "-m", "text", default="", help="Text (Markdown).")
@click.option("--media", multiple=True, metavar="PATH|URL", help="Attach a file (repeatable).")
@click.option("--account", metavar="ID", help="Account id (default: default).")
@click.option("--reply-to", help="Message id to reply to.")
@click.option("--thread", "thread", help="Thread/topic id.")
@click.option("--direct", is_flag=True, help="Do not use the gateway; talk to the platform.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def send_cmd(
    channel: str | None,
    target: str,
    text: str,
    media: tuple[str, ...],
    account: str | None,
    reply_to: str | None,
    thread: str | None,
    direct: bool,
    as_json: bool,
) -> None:
    """Send a message (and files) to TARGET on CHANNEL."""
    from moltbot.errors import UsageError

    if not text.strip() and not media:
        raise UsageError("give --message and/or --media")
    result = deliver(
        channel,
        target,
        text,
        media=media,
        account=account,
        reply_to=reply_to,
        thread=thread,
        direct=direct,
    )
    if as_json:
        context.emit_json(result)
        return
    click.echo(
        f"sent to {result['channel']} {result.get('chatId') or result.get('channelId')} "
        f"(message {result.get('messageId')}, via {result['via']})"
    )


def deliver(
    channel: str | None,
    target: str,
    text: str,
    *,
    media: tuple[str, ...] = (),
    account: str | None = None,
    reply_to: str | None = None,
    thread: str | None = None,
    direct: bool = False,
    plain: bool = False,
) -> dict[str, Any]:
    """Send through the running gateway, or directly when none runs (or ``direct``)."""
    from pathlib import Path

    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, snapshot = cli.load()
    media = tuple(
        m if m.startswith(("http://", "https://")) else str(Path(m).expanduser().resolve())
        for m in media
    )
    target_info = resolve_target(instance, snapshot.config, cli.env)
    if target_info.running and not direct:
        from moltbot.errors import MethodError
        from moltbot.gateway.sync_client import SyncGatewayClient

        params: dict[str, Any] = {
            "to": target,
            "message": text,
            "idempotencyKey": str(uuid.uuid4()),
        }
        for key, value in (
            ("channel", channel),
            ("accountId", account),
            ("replyTo", reply_to),
            ("threadId", thread),
            ("mediaUrls", list(media) or None),
        ):
            if value:
                params[key] = value
        try:
            with SyncGatewayClient.for_target(target_info, 35.0) as client:
                payload = client.call("send", params)
        except MethodError as exc:
            raise _from_frame(exc) from None
        return {**payload, "via": "gateway"}
    from moltbot.channels.types import OutboundMessage
    from moltbot.errors import MethodError

    message = OutboundMessage(
        text=text, media=media, reply_to_id=reply_to, thread_id=thread, plain=plain
    )
    return _direct(instance, snapshot.config, cli.env, channel, account, target, message)


def _direct(
    instance: Any,
    config: Any,
    env: dict[str, str],
    channel: str | None,
    account: str | None,
    target: str,
    message: OutboundMessage,
) -> dict[str, Any]:
    from moltbot.channels import registry
    from moltbot.channels.errors import UnknownChannel
    from moltbot.channels.setup import resolve_one, send_direct

    if channel is None:
        active = registry.active_channels(config.channels or {}, env)
        if len(active) != 1:
            raise UnknownChannel(
                "name the channel with --channel" if active else "no channel is configured",
                hint="moltbot channels list",
            )
        channel = active[0]
    resolved = resolve_one(config, env, channel, account)
    result = send_direct(instance, resolved, target, message)
    out = {
        "channel": result.channel,
        "accountId": result.account_id,
        "messageId": result.message_id,
        "messageIds": list(result.message_ids),
        "via": "direct",
    }
    out[registry.manifest(result.channel).chat_key] = result.chat_id
    return out


def _from_frame(error: MethodError) -> Exception:
    """The channel error a refused ``send`` stands for (its exit code: 6, 2 or 9)."""
    from moltbot.channels.errors import ChannelNotReady, TargetError, UnknownChannel
    from moltbot.errors import UNAVAILABLE

    message = error.reason
    if error.code == UNAVAILABLE:
        return ChannelNotReady(message)
    if message.startswith(("unsupported channel", "channel ", "no channel", "several")):
        return UnknownChannel(message)
    return TargetError(message)
