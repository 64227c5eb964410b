"""`moltbot [--profile P] onboard`: flags → plan → (wizard) → apply → summary.

The work is done by :mod:`moltbot.onboard`; this module declares the options
(the channel options are generated from the channel manifests), picks the
wizard when there is a terminal, and prints the summary.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from moltbot.cli import context

EPILOG = """\b
Examples:
  moltbot onboard
  moltbot onboard --non-interactive
  moltbot --profile rescue onboard --non-interactive --install-daemon
  moltbot --profile rescue onboard --non-interactive --port 19789 \\
      --model openai/gpt-4o --api-key-env OPENAI_API_KEY
  moltbot onboard --non-interactive --telegram-token-env TELEGRAM_TOKEN
  moltbot onboard --non-interactive --slack-bot-token xoxb-... \\
      --slack-app-token xapp-... --dm-policy allowlist --allow-from U0123
\b
--non-interactive alone accepts every proposal (and keeps existing values and
channels). The API key named by --api-key-env is copied into <state>/credentials
(mode 0600), never into the config or a service file. A *-env channel flag
stores "${VAR}" in the config instead of the secret.
"""

HELP = """Set up this instance: port, workspace, auth, model, service, channels — then a summary.

For a named profile the proposed base port keeps a whole port block (111
ports) away from every instance on this host, the workspace is ~/clawd-P
and the token is fresh. Refuses (exit 3, nothing written) a port or path
that clashes with another instance.

Channel tokens are checked (format, then with the platform) before anything
is written; a refused token writes nothing (exit 2, or 7 when the platform
refuses it). The summary never shows a secret.
"""


def _channel_options() -> list[click.Option]:
    from moltbot.channels import registry
    from moltbot.onboard.channels import channel_flags

    options: list[click.Option] = []
    for flag in channel_flags():
        field = flag.field
        options.append(
            click.Option(
                [flag.flag, flag.param],
                type=click.Choice(list(field.choices)) if field.choices else None,
                metavar=field.metavar,
                help=flag.help,
            )
        )
        if flag.secret:
            label = f"{flag.manifest.label} {flag.manifest.secret(field.key).label}"  # type: ignore[union-attr]
            options.append(
                click.Option(
                    [flag.flag + "-env", flag.env_param],
                    metavar="VAR",
                    help=f'{label} from $VAR (the config stores "${{VAR}}").',
                )
            )
    options += [
        click.Option(
            ["--dm-policy"],
            type=click.Choice(["pairing", "allowlist", "open", "disabled"]),
            help="Who may DM the bot (default pairing): for the channels these flags set "
            "up, else every configured one.",
        ),
        click.Option(
            ["--allow-from"],
            multiple=True,
            metavar="ID",
            help="Allowed DM sender (repeatable; the channel's user id or @name).",
        ),
        click.Option(
            ["--remove-channel", "remove_channels"],
            multiple=True,
            type=click.Choice(registry.names()),
            help="Remove a configured channel.",
        ),
        click.Option(
            ["--no-channel-check"],
            is_flag=True,
            help="Do not check channel credentials with the platform first.",
        ),
        click.Option(
            ["--rescue-target", "rescue_targets"],
            multiple=True,
            metavar="PROFILE",
            help="An instance this one may repair (rescue.targets; repeatable; default for a "
            "profile named rescue: the default instance, when it exists).",
        ),
        click.Option(
            ["--no-rescue-targets"], is_flag=True, help="Grant no rescue targets (clears them)."
        ),
    ]
    return options


def _run(
    non_interactive: bool,
    port: int | None,
    workspace: Path | None,
    auth: str | None,
    new_token: bool,
    password_env: str | None,
    model: str | None,
    api_key_env: str | None,
    install_daemon: bool | None,
    enable_linger: bool,
    dm_policy: str | None,
    allow_from: tuple[str, ...],
    remove_channels: tuple[str, ...],
    no_channel_check: bool,
    as_json: bool,
    rescue_targets: tuple[str, ...] = (),
    no_rescue_targets: bool = False,
    **channel_values: Any,
) -> None:
    from moltbot import onboard
    from moltbot.instance.resolve import resolve_instance
    from moltbot.onboard.channels import channel_check, precheck

    cli = context.get()
    identity = cli.identity(port=port)
    proposal = onboard.propose(identity, cli.env)
    flags = onboard.Flags(
        port=port,
        workspace=workspace,
        auth=auth,
        new_token=new_token,
        password_env=password_env,
        model=model,
        api_key_env=api_key_env,
        install_daemon=install_daemon,
        channel_values=channel_values,
        dm_policy=dm_policy,
        allow_from=allow_from,
        remove_channels=remove_channels,
        rescue_targets=rescue_targets,
        no_rescue_targets=no_rescue_targets,
    )
    plan = onboard.plan_from_flags(identity, cli.env, proposal, flags)
    provisional = resolve_instance(identity, proposal.config, cli.env)
    interactive = not non_interactive
    if interactive and not (sys.stdin.isatty() and sys.stdout.isatty()):
        context.warn("not a terminal: continuing as with --non-interactive")
        interactive = False
    if not interactive:
        onboard.check_plan(identity, cli.env, proposal, plan)
    else:
        check = channel_check(provisional, cli.env, probe=not no_channel_check)
        try:
            plan = onboard.interview(
                onboard.QuestionaryPrompter(), identity, cli.env, proposal, plan, check
            )
        except onboard.WizardAborted:
            raise click.exceptions.Abort() from None
        if install_daemon is not None:
            plan.install_daemon = install_daemon
    for channel in plan.channels:  # before anything is written
        if not channel.checked:
            precheck(provisional, cli.env, channel, probe=not no_channel_check)

    applied = onboard.apply(identity, cli.env, plan)
    service = None
    if plan.install_daemon:
        service = onboard.install_service(applied.instance, cli.env, enable_linger)
    summary = onboard.summary(applied, service, cli.env)
    if as_json:
        context.emit_json(summary)
    else:
        _print_summary(summary, cli.home, service)


def _channel_line(row: dict[str, Any]) -> str:
    from moltbot.onboard.channels import secret_label

    if row["action"] == "removed":
        return f"{row['channel']}: removed"
    if row.get("error"):
        return f"{row['channel']}: invalid config: {row['error']}"
    bot = f" (@{row['bot']})" if row.get("bot") else ""
    secrets = ", ".join(f"{secret_label(row['channel'], k)} {v}" for k, v in row["secrets"].items())
    if not secrets:
        secrets = f"token from {row.get('tokenSource')}"
    return (
        f"{row['channel']} {row['accountId']}{bot}: {row['action']}, {row['mode']}, "
        f"dm {row['dmPolicy']}, {secrets}"
    )


def _print_summary(summary: dict[str, Any], home: Path, service: Any) -> None:
    rel = lambda p: context.home_relative(p, home)  # noqa: E731
    cli = summary["cli"]
    click.echo(f"\nOnboarded profile {summary['profile']}")
    for change in summary["changed"]:
        click.echo(f"  changed     {change}")
    click.echo(f"  State dir   {rel(summary['stateDir'])}")
    click.echo(f"  Config      {rel(summary['configPath'])}")
    click.echo(f"  Workspace   {rel(summary['workspace'])}")
    cdp = summary["cdpRange"]
    click.echo(
        f"  Ports       gateway {summary['port']}, browser control "
        f"{summary['controlPort']}, canvas {summary['canvasPort']}, "
        f"CDP {cdp[0]}-{cdp[1]}"
    )
    click.echo(f"  Auth        {summary['auth']}")
    if summary["credentials"]:
        click.echo(f"  API key     stored in {rel(summary['credentials'])} (0600)")
    info = summary["service"]
    if info.get("manager"):
        state = "installed" if info["installed"] else "not installed"
        click.echo(f"  Service     {info['name']} ({state}: {rel(info['file'])})")
    else:
        click.echo(f"  Service     unavailable: {info.get('error')}")
    if service is not None:
        click.echo(f"              {service.message}")
        for change in service.changes:
            click.echo(f"              changed {change}")
        for warning in service.warnings:
            context.warn(warning)
        for hint in service.hints:
            click.echo(f"              {hint}")
    click.echo(f"  Dashboard   {summary['dashboardUrl']}")
    label = "Channels"
    for row in summary["channels"]:
        click.echo(f"  {label:<11} {_channel_line(row)}")
        label = ""
    if any(row.get("dmPolicy") == "pairing" for row in summary["channels"]):
        click.echo(
            f"              strangers get a pairing code; approve with: "
            f"`{cli} pairing approve CHANNEL CODE`"
        )
    if summary.get("rescueTargets"):
        targets = ", ".join(summary["rescueTargets"])
        first = summary["rescueTargets"][0]
        click.echo(f"  Rescue      may repair {targets} (`{cli} rescue {first} status`)")
    for warning in summary.get("warnings", []):
        context.warn(warning)
    if not info.get("installed"):
        click.echo(f"Next: `{cli} gateway` (foreground) or `{cli} gateway install` (service)")
    else:
        click.echo(f"Next: `{cli} gateway status`")


_OPTIONS = [
    click.Option(
        ["--non-interactive"], is_flag=True, help="Ask nothing; use flags, then proposals."
    ),
    click.Option(["--port"], type=click.IntRange(1, 65535), help="Gateway base port."),
    click.Option(["--workspace"], type=click.Path(path_type=Path), help="Workspace directory."),
    click.Option(["--auth"], type=click.Choice(["token", "password"]), help="Gateway auth mode."),
    click.Option(["--new-token"], is_flag=True, help="Replace the existing gateway token."),
    click.Option(
        ["--password-env"],
        metavar="VAR",
        help="With --auth password: read the password from this environment variable.",
    ),
    click.Option(["--model"], metavar="PROVIDER/MODEL", help="Default model, e.g. openai/gpt-4o."),
    click.Option(
        ["--api-key-env"],
        metavar="VAR",
        help="Copy the model provider's API key from this environment variable into "
        "<state>/credentials (0600).",
    ),
    click.Option(
        ["--install-daemon/--no-install-daemon"],
        default=None,
        help="Install the user service (wizard default: yes; --non-interactive: no).",
    ),
    click.Option(
        ["--enable-linger"],
        is_flag=True,
        help="Linux: enable lingering so the service runs without a login.",
    ),
]

onboard = click.Command(
    "onboard",
    params=[
        *_OPTIONS,
        *_channel_options(),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the summary as JSON."),
    ],
    callback=_run,
    help=HELP,
    epilog=EPILOG,
)
