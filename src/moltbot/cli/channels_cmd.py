"""`moltbot channels list|status|add|remove`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

import click

from moltbot.channels.config import DmPolicy, GroupPolicy
from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.channels.manifest import ChannelManifest

DM_POLICIES = get_args(DmPolicy)
GROUP_POLICIES = get_args(GroupPolicy)

_NONE_CONFIGURED = "No channels configured. Add one: moltbot channels add CHANNEL (see --help)"
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
    """Messaging connections (Telegram, Slack, ...): configure and inspect them."""


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
        click.echo(_NONE_CONFIGURED)
        return
    for row in rows:
        if row.get("error"):
            click.echo(f"{row['channel']:<9} {row['error']}")
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
        from moltbot.gateway.sync_client import SyncGatewayClient

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
    import time

    from moltbot.channels.errors import ChannelError
    from moltbot.channels.setup import list_accounts, probe_account, resolve_one
    from moltbot.channels.types import AccountState, AccountStatus, ChannelReport
    from moltbot.gateway.channel_status import status_payload

    statuses: dict[str, list[AccountStatus]] = {}
    errors: dict[str, str] = {}
    for row in list_accounts(config, env):
        statuses.setdefault(row["channel"], [])
        if row.get("error"):
            errors[row["channel"]] = row["error"]
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
            try:
                status.probe = probe_account(
                    instance, resolve_one(config, env, row["channel"], row["accountId"]), timeout
                )
            except ChannelError as exc:
                status.probe = {"ok": False, "error": exc.message}
            status.last_probe_at = time.time()
        statuses[row["channel"]].append(status)
    return status_payload(
        [ChannelReport(name, tuple(items), errors.get(name)) for name, items in statuses.items()]
    )


def _render(payload: dict[str, Any]) -> None:
    order = payload.get("channelOrder") or []
    if not order:
        click.echo(_NONE_CONFIGURED)
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


class _AddGroup(click.Group):
    """``channels add <channel>``: one sub-command per channel manifest, with its flags."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from moltbot.channels import registry

        return registry.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from moltbot.channels import registry

        manifest = registry.manifests().get(name.lower())
        return _add_command(manifest) if manifest else None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            from moltbot.channels import registry

            registry.manifest(args[0])  # raises UnknownChannel naming the known channels
        return super().resolve_command(ctx, args)


@channels.group(
    "add",
    cls=_AddGroup,
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
        "nothing is written then. `moltbot channels add CHANNEL --help` lists its flags."
    ),
)
def add_group() -> None:
    """Add or update a channel account (a Telegram bot, a Slack app, ...)."""


def _add_command(manifest: ChannelManifest) -> click.Command:
    """The ``channels add <id>`` command, generated from ``manifest``."""
    params: list[click.Parameter] = [
        click.Option(["--account", "account"], metavar="ID", help="Account id (default: default).")
    ]
    for field in manifest.setup:
        params.append(
            click.Option(
                [*field.flags, field.answer],
                type=click.Choice(list(field.choices)) if field.choices else None,
                metavar=field.metavar,
                help=field.help,
            )
        )
    params += [
        click.Option(
            ["--dm-policy"],
            type=click.Choice(list(DM_POLICIES)),
            help="Who may DM the bot (default pairing).",
        ),
        click.Option(
            ["--allow-from"],
            multiple=True,
            metavar="ID",
            help=f"Allowed sender (repeatable; {manifest.sender_hint}).",
        ),
        click.Option(
            ["--group-policy"],
            type=click.Choice(list(GROUP_POLICIES)),
            help="Who may trigger the bot in groups (default allowlist).",
        ),
        click.Option(
            ["--group", "groups"],
            multiple=True,
            metavar="ID",
            help="Only answer in these groups/channels (repeatable).",
        ),
        click.Option(["--name"], help="Display name of this account."),
        click.Option(["--no-probe"], is_flag=True, help="Do not check the credentials first."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print JSON."),
    ]

    def run(
        account: str | None,
        dm_policy: str | None,
        allow_from: tuple[str, ...],
        group_policy: str | None,
        groups: tuple[str, ...],
        name: str | None,
        no_probe: bool,
        as_json: bool,
        **fields: Any,
    ) -> None:
        _add(
            manifest.id,
            account,
            {
                **fields,
                "dm_policy": dm_policy,
                "allow_from": list(allow_from) or None,
                "group_policy": group_policy,
                "groups": list(groups) or None,
                "name": name,
            },
            probe=not no_probe,
            as_json=as_json,
        )

    return click.Command(
        manifest.id,
        params=params,
        callback=run,
        help=f"Add or update a {manifest.label} {manifest.noun} account.",
        short_help=f"Add or update a {manifest.label} {manifest.noun}.",
    )


def _add(
    channel: str, account: str | None, answers: dict[str, Any], *, probe: bool, as_json: bool
) -> None:
    from moltbot.channels.setup import add_channel

    cli = context.get()
    instance, _ = cli.load()
    change = add_channel(
        instance, cli.env, channel, account=account or "default", probe=probe, **answers
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
    if (answers.get("dm_policy") or "pairing") == "pairing":
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


@channels.command(
    "logout",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  moltbot channels logout matrix\n"
        "  moltbot channels logout telegram --account work --json\n"
        "\b\n"
        "Through the running gateway (channels.logout), else directly. The account\n"
        "stops, its session on the platform ends where it has one (Matrix: the\n"
        "access token), and its credentials are removed from the config."
    ),
)
@click.argument("channel")
@_account
@_json
def logout_cmd(channel: str, account: str | None, as_json: bool) -> None:
    """Log a channel account out and forget its credentials (exit 2: not configured)."""
    import asyncio

    from moltbot.channels.setup import logout_account, resolve_one
    from moltbot.errors import GatewayUnreachableError
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, snapshot = cli.load()
    target = resolve_target(instance, snapshot.config, cli.env)
    result: dict[str, Any] | None = None
    if target.running:
        from moltbot.gateway.sync_client import SyncGatewayClient

        params = {"channel": channel, **({"accountId": account} if account else {})}
        try:
            with SyncGatewayClient.for_target(target, 60) as client:
                result = client.call("channels.logout", params)
        except GatewayUnreachableError as exc:
            context.warn(f"{exc.message}; logging out directly")
    if result is None:
        resolved = resolve_one(snapshot.config, cli.env, channel, account)
        result = asyncio.run(logout_account(instance, cli.env, resolved))
    if as_json:
        context.emit_json(result)
        return
    what = f"{result['channel']} account {result['accountId']}"
    if result["cleared"]:
        click.echo(f"logged out {what}: removed {', '.join(result.get('clearedKeys') or [])}")
    else:
        click.echo(f"logged out {what}: no credentials in the config")
    if result.get("envToken"):
        context.warn("its token comes from the environment; unset it there too")
