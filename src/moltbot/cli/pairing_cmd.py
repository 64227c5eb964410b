"""`moltbot pairing list|approve|reject`: DM pairing requests of chat channels."""

from __future__ import annotations

import time

import click

from moltbot.cli import context

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot pairing list\n"
        "  moltbot pairing approve telegram ABCD2345\n"
        "  moltbot --profile rescue pairing reject slack ABCD2345"
    )
)
def pairing() -> None:
    """Approve or reject senders who asked to talk to the bot (pairing codes)."""


def _store(channel: str) -> object:
    from moltbot.channels.pairing import PairingStore

    cli = context.get()
    instance, _ = cli.load()
    return PairingStore(instance.credentials_dir, channel.lower())


@pairing.command(
    "list", epilog=("\b\nExamples:\n  moltbot pairing list\n  moltbot pairing list telegram --json")
)
@click.argument("channel", required=False)
@_json
def list_cmd(channel: str | None, as_json: bool) -> None:
    """Pending requests (all channels, or CHANNEL). Codes expire after one hour."""
    from moltbot.channels.pairing import PairingStore, list_channels_with_pairing

    cli = context.get()
    instance, _ = cli.load()
    names = [channel.lower()] if channel else list_channels_with_pairing(instance.credentials_dir)
    rows = []
    for name in names:
        store = PairingStore(instance.credentials_dir, name)
        for request in store.pending():
            rows.append(
                {
                    "channel": name,
                    **request.as_json(),
                    "expiresInSeconds": int(request.expires_at() - time.time()),
                }
            )
    if as_json:
        context.emit_json({"requests": rows})
        return
    if not rows:
        click.echo("No pending pairing requests.")
        return
    for row in rows:
        meta = row["meta"]
        who = meta.get("name") or meta.get("username") or ""
        minutes = max(0, row["expiresInSeconds"] // 60)
        click.echo(
            f"{row['channel']:<9} {row['code']}  {row['id']:<14} {who:<20} expires in {minutes} min"
        )


@pairing.command(
    "approve",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot pairing approve telegram ABCD2345\n"
        "  moltbot pairing approve slack ABCD2345 --notify\n"
        "\b\n"
        "Exit 9 when no pending request has that code (unknown or expired)."
    ),
)
@click.argument("channel")
@click.argument("code")
@click.option("--notify", is_flag=True, help="Tell the sender they were approved.")
@_json
def approve_cmd(channel: str, code: str, notify: bool, as_json: bool) -> None:
    """Allow the sender of pairing CODE on CHANNEL to talk to the bot."""
    store = _store(channel)
    request = store.approve(code)  # type: ignore[attr-defined]
    notified = None
    if notify:
        notified = _notify(channel.lower(), request)
    if as_json:
        context.emit_json(
            {
                "approved": True,
                "channel": channel.lower(),
                "id": request.id,
                "code": request.code,
                "meta": dict(request.meta),
                "notified": notified,
            }
        )
        return
    who = request.meta.get("name") or request.meta.get("username") or request.id
    click.echo(f"approved {channel.lower()} sender {who} (id {request.id})")
    if notify and notified is not True:
        context.warn(f"could not notify the sender: {notified}")


@pairing.command("reject", epilog=("\b\nExample:\n  moltbot pairing reject telegram ABCD2345"))
@click.argument("channel")
@click.argument("code")
@_json
def reject_cmd(channel: str, code: str, as_json: bool) -> None:
    """Drop the pairing request with CODE (the sender may ask again later)."""
    request = _store(channel).reject(code)  # type: ignore[attr-defined]
    if as_json:
        context.emit_json(
            {"rejected": True, "channel": channel.lower(), "id": request.id, "code": request.code}
        )
        return
    click.echo(f"rejected {channel.lower()} request {request.code} (id {request.id})")


def _notify(channel: str, request: object) -> bool | str:
    from moltbot.cli.message_cmd import deliver
    from moltbot.errors import MoltbotError

    meta = getattr(request, "meta", {})
    target = str(meta.get("chatId") or getattr(request, "id", ""))
    try:
        deliver(
            channel,
            target,
            "✅ Moltbot: access approved. Send a message to start.",
            account=meta.get("accountId"),
            plain=True,
        )
    except MoltbotError as exc:
        return exc.message
    return True
