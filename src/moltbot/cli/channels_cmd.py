"""`moltbot channels list|status|add|remove`."""

from __future__ import annotations

from typing import Any

import click

from moltbot.cli import context

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_account = click.option("--account", "account", metavar="ID", help="Account id (default: default).")


@click.group(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot channels add telegram --token 123:ABC\n"
        "  moltbot channels status --probe\n"
        "  moltbot --profile rescue channels list --json"
    )
)
def channels() -> None:
    """Messaging connections (Telegram, Slack): configure and inspect them."""


@channels.command("list", epilog=("\b\nExample:\n  moltbot channels list --json"))
@_json
def list_cmd(as_json: bool) -> None:
    """Configured channel accounts, from the config (no network)."""
    from moltbot.channels.setup import list_accounts

    cli = context.get()
    _, snapshot = cli.load()
    rows = list_accounts(snapshot.config, cli.env)
    if as_json:
        context.emit_json({"accounts": rows})
        return
    if not rows:
        click.echo("No channels configured. Add one: moltbot channels add telegram --token ...")
        return
    for row in rows:
        if row.get("error"):
            click.echo(f"{row['channel']:<9} invalid config: {row['error']}")
            continue
        state = "enabled" if row["enabled"] else "disabled"
        if not row["configured"]:
            state += f", missing {', '.join(row['missing'])}"
        click.echo(
            f"{row['channel']:<9} {row['accountId']:<10} {row['mode'] or '':<8} "
            f"dm={row['dmPolicy']:<9} token={row['tokenSource']:<22} {state}"
        )


@channels.command(
    "status",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot channels status\n"
        "  moltbot channels status --probe --json\n"
        "\b\n"
        "Asks the running gateway (channels.status); without one, shows the\n"
        "config and, with --probe, checks each account's credentials directly."
    ),
)
@click.option("--probe", is_flag=True, help="Check the credentials against the platform now.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds.")
@_json
def status_cmd(probe: bool, timeout: float, as_json: bool) -> None:
    """Channel accounts: state, connection, last error (from the running gateway)."""
    from moltbot.errors import GatewayUnreachableError
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, snapshot = cli.load()
    target = resolve_target(instance, snapshot.config, cli.env)
    payload: dict[str, Any] | None = None
    source = "gateway"
    if target.running:
        from moltbot.gateway.client import SyncGatewayClient

        try:
            with SyncGatewayClient.for_target(target, timeout + 5) as client:
                payload = client.call(
                    "channels.status", {"probe": probe, "timeoutMs": int(timeout * 1000)}
                )
        except GatewayUnreachableError as exc:
            context.warn(f"{exc.message}; showing the config instead")
    if payload is None:
        source = "config"
        payload = _offline_status(instance, snapshot.config, cli.env, probe, timeout)
    payload["source"] = source
    if as_json:
        context.emit_json(payload)
        return
    _render(payload)


def _offline_status(
    instance: Any, config: Any, env: dict[str, str], probe: bool, timeout: float
) -> dict[str, Any]:
    from moltbot.channels.errors import ChannelError
    from moltbot.channels.manager import status_payload
    from moltbot.channels.setup import list_accounts, probe_account, resolve_one
    from moltbot.channels.types import AccountState, AccountStatus

    statuses: dict[str, list[AccountStatus]] = {}
    errors: dict[str, str] = {}
    for row in list_accounts(config, env):
        if row.get("error"):
            errors[row["channel"]] = row["error"]
            statuses.setdefault(row["channel"], [])
            continue
        status = AccountStatus(
            channel=row["channel"],
            account_id=row["accountId"],
            name=row["name"],
            enabled=row["enabled"],
            configured=row["configured"],
            mode=row["mode"],
            token_source=row["tokenSource"],
            dm_policy=row["dmPolicy"],
            state=AccountState.STOPPED if row["enabled"] else AccountState.DISABLED,
        )
        if row["missing"]:
            status.error("not configured: missing " + ", ".join(row["missing"]))
        if probe and row["enabled"] and row["configured"]:
            import time

            try:
                status.probe = probe_account(
                    instance, resolve_one(config, env, row["channel"], row["accountId"]), timeout
                )
            except ChannelError as exc:
                status.probe = {"ok": False, "error": exc.message}
            status.last_probe_at = time.time()
        statuses.setdefault(row["channel"], []).append(status)
    return status_payload(list(statuses), statuses, errors)


def _render(payload: dict[str, Any]) -> None:
    order = payload.get("channelOrder") or []
    if not order:
        click.echo("No channels configured. Add one: moltbot channels add telegram --token ...")
        if payload.get("error"):
            click.echo(f"gateway: {payload['error']}")
        return
    if payload.get("source") == "config":
        click.echo("Gateway not running: showing the config.")
    for name in order:
        label = payload["channelLabels"].get(name, name)
        summary = payload["channels"].get(name, {})
        click.echo(f"{label}: {summary.get('state')}")
        for account in payload["channelAccounts"].get(name, []):
            bits = [account["state"]]
            if account.get("connected"):
                bits.append("connected")
            if account.get("mode"):
                bits.append(account["mode"])
            bot = account.get("bot") or {}
            if bot.get("username"):
                bits.append("@" + str(bot["username"]))
            if account.get("reconnectAttempts"):
                bits.append(f"{account['reconnectAttempts']} reconnects")
            click.echo(f"  {account['accountId']}: {', '.join(bits)}")
            probe = account.get("probe")
            if probe:
                result = "ok" if probe.get("ok") else f"failed: {probe.get('error')}"
                click.echo(f"    probe: {result}")
            if account.get("lastError"):
                click.echo(f"    last error: {account['lastError']}")
        if summary.get("lastError") and not payload["channelAccounts"].get(name):
            click.echo(f"  error: {summary['lastError']}")


@channels.command(
    "add",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot channels add telegram --token 123456:ABC-DEF\n"
        "  moltbot channels add telegram --account work --token 789:XYZ \\\n"
        "      --dm-policy allowlist --allow-from 12345\n"
        "  moltbot channels add slack --bot-token xoxb-... --app-token xapp-...\n"
        "  moltbot channels add slack --mode http --bot-token xoxb-... --signing-secret abc123\n"
        "\b\n"
        "The credentials are checked against the platform first (--no-probe skips\n"
        "that). Exit 7 when the platform refuses them, 78 for an invalid result;\n"
        "nothing is written then."
    ),
)
@click.argument("channel", type=click.Choice(["telegram", "slack"], case_sensitive=False))
@_account
@click.option("--token", help="Telegram bot token (from @BotFather).")
@click.option("--token-file", help="Telegram: read the bot token from this file.")
@click.option("--bot-token", help="Slack bot token (xoxb-...).")
@click.option("--app-token", help="Slack app-level token (xapp-..., Socket Mode).")
@click.option("--signing-secret", help="Slack signing secret (HTTP Events mode).")
@click.option(
    "--mode",
    type=click.Choice(["polling", "webhook", "socket", "http"]),
    help="Telegram: polling|webhook; Slack: socket|http.",
)
@click.option("--webhook-url", help="Telegram webhook mode: public URL Telegram calls.")
@click.option("--webhook-secret", help="Telegram webhook mode: secret token.")
@click.option("--api-root", help="Telegram Bot API root (default https://api.telegram.org).")
@click.option("--api-url", help="Slack Web API base URL (default https://slack.com/api/).")
@click.option(
    "--dm-policy",
    type=click.Choice(["pairing", "allowlist", "open", "disabled"]),
    help="Who may DM the bot (default pairing).",
)
@click.option("--allow-from", multiple=True, metavar="ID", help="Allowed sender (repeatable).")
@click.option(
    "--group-policy",
    type=click.Choice(["open", "allowlist", "disabled"]),
    help="Who may trigger the bot in groups (default allowlist).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="ID",
    help="Only answer in these groups/channels (repeatable).",
)
@click.option("--name", help="Display name of this account.")
@click.option("--no-probe", is_flag=True, help="Do not check the credentials first.")
@_json
def add_cmd(
    channel: str,
    account: str | None,
    token: str | None,
    token_file: str | None,
    bot_token: str | None,
    app_token: str | None,
    signing_secret: str | None,
    mode: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    api_root: str | None,
    api_url: str | None,
    dm_policy: str | None,
    allow_from: tuple[str, ...],
    group_policy: str | None,
    groups: tuple[str, ...],
    name: str | None,
    no_probe: bool,
    as_json: bool,
) -> None:
    """Add or update a channel account (Telegram bot, Slack app)."""
    from moltbot.channels.setup import add_channel
    from moltbot.errors import UsageError

    channel = channel.lower()
    if channel == "telegram":
        if bot_token or app_token or signing_secret or api_url:
            raise UsageError("--bot-token/--app-token/--signing-secret/--api-url are Slack options")
        if mode in ("socket", "http"):
            raise UsageError("telegram --mode is polling or webhook")
        answers: dict[str, Any] = {
            "token": token,
            "token_file": token_file,
            "mode": mode,
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
            "api_root": api_root,
        }
    else:
        if token_file or webhook_url or webhook_secret or api_root:
            raise UsageError("--token-file/--webhook-*/--api-root are Telegram options")
        if mode in ("polling", "webhook"):
            raise UsageError("slack --mode is socket or http")
        answers = {
            "bot_token": bot_token or token,
            "app_token": app_token,
            "signing_secret": signing_secret,
            "mode": mode,
            "api_url": api_url,
        }
    answers.update(
        dm_policy=dm_policy,
        allow_from=list(allow_from) or None,
        group_policy=group_policy,
        groups=list(groups) or None,
        name=name,
    )
    cli = context.get()
    instance, _ = cli.load()
    change = add_channel(
        instance, cli.env, channel, account=account or "default", probe=not no_probe, **answers
    )
    if as_json:
        context.emit_json(change.as_dict())
        return
    bot = (change.probe or {}).get("bot") or {}
    who = f" (@{bot['username']})" if bot.get("username") else ""
    click.echo(
        f"{change.action} {channel} account {change.account_id}{who} in "
        f"{context.home_relative(change.config_path, cli.home)}"
    )
    flag = "" if instance.profile == "default" else f"--profile {instance.profile} "
    click.echo(f"A running gateway picks this up on its own; otherwise: moltbot {flag}gateway")
    if (dm_policy or "pairing") == "pairing":
        click.echo(
            f"Strangers get a pairing code; approve with: moltbot {flag}pairing approve "
            f"{channel} <code>"
        )


@channels.command(
    "remove",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot channels remove slack\n"
        "  moltbot channels remove telegram --account work --disable"
    ),
)
@click.argument("channel")
@_account
@click.option("--disable", is_flag=True, help="Keep the config, set enabled: false.")
@_json
def remove_cmd(channel: str, account: str | None, disable: bool, as_json: bool) -> None:
    """Remove a channel (or one account). Pairing approvals are kept. Exit 9 if absent."""
    from moltbot.channels.setup import remove_channel

    cli = context.get()
    instance, _ = cli.load()
    change = remove_channel(instance, cli.env, channel, account=account, disable=disable)
    if as_json:
        context.emit_json(change.as_dict())
        return
    click.echo(f"{change.action} {change.channel}" + (f" account {account}" if account else ""))
