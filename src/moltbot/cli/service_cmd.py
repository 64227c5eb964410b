"""`moltbot [--profile P] gateway install|uninstall|start|stop|restart`.

Plain click commands; the `gateway` group (cli/gateway_cmd.py) attaches them.
Each resolves this instance, calls one function of moltbot.service.actions and
prints the result. Only this instance's own service is ever touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.service.actions import ActionResult
    from moltbot.service.base import ServiceManager

_json = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")

INSTALL_EPILOG = """\b
Examples:
  moltbot gateway install
  moltbot --profile rescue gateway install
  moltbot --profile rescue gateway install --force --enable-linger
\b
Linux: ~/.config/systemd/user/moltbot-gateway[-P].service (systemd user unit)
macOS: ~/Library/LaunchAgents/bot.molt.<gateway|P>.plist (LaunchAgent)
Windows: scheduled task "Moltbot Gateway[ (P)]"
\b
Exit codes: 0 ok, 3 installed file differs (use --force) or the instance
clashes with another one, 8 the service manager failed, 78 invalid config.
"""


def _manager() -> ServiceManager:
    from moltbot.service import get_manager

    cli = context.get()
    return get_manager(cli.env, cli.home)


def _print(result: ActionResult, as_json: bool) -> None:
    if as_json:
        context.emit_json(result.as_dict())
        return
    click.echo(result.message)
    for change in result.changes:
        click.echo(f"  changed  {change}")
    for warning in result.warnings:
        context.warn(warning)
    for hint in result.hints:
        click.echo(f"  {hint}")


@click.command("install", epilog=INSTALL_EPILOG)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Persist this base port in the config first (checked against other instances).",
)
@click.option(
    "--force", is_flag=True, help="Rewrite the service file even if it is current or differs."
)
@click.option(
    "--enable-linger",
    is_flag=True,
    help="Linux: run `loginctl enable-linger` so the service runs without a login session.",
)
@_json
def install(port: int | None, force: bool, enable_linger: bool, as_json: bool) -> None:
    """Install (and start) this instance's gateway as a user service.

    The service runs `<python> -m moltbot gateway --port N` with the instance's
    profile, state dir, config path and port in its environment; no secret is
    written into the service file. Idempotent: an identical service is left
    alone; a changed interpreter, port or profile is reported and needs --force.
    """
    from moltbot.errors import ConfigError
    from moltbot.instance.registry import discover, others
    from moltbot.instance.setup import check_paths, check_port, setup_instance
    from moltbot.service import actions

    cli = context.get()
    if port is not None:
        setup_instance(cli.identity(port=port), cli.env, port=port)
    instance, snapshot = cli.load()
    if not snapshot.exists:
        flag = "" if instance.profile == "default" else f"--profile {instance.profile} "
        raise ConfigError(
            f"no config at {instance.config_path}: this instance is not set up",
            hint=f"run `moltbot {flag}onboard` (or `moltbot {flag}setup`) first",
        )
    neighbours = others(discover(cli.home, cli.env), instance)
    check_port(instance.port, neighbours, instance)
    check_paths(instance, neighbours)
    _print(actions.install(instance, _manager(), force=force, enable_linger=enable_linger), as_json)


@click.command(
    "uninstall",
    epilog="\b\nExamples:\n  moltbot gateway uninstall\n"
    "  moltbot --profile rescue gateway uninstall --json",
)
@_json
def uninstall(as_json: bool) -> None:
    """Stop and remove this instance's gateway service (other profiles are untouched)."""
    from moltbot.service import actions

    instance = _instance()
    _print(actions.uninstall(instance, _manager()), as_json)


@click.command(
    "start",
    epilog="\b\nExamples:\n  moltbot gateway start\n  moltbot --profile rescue gateway start",
)
@_json
def start(as_json: bool) -> None:
    """Start the installed gateway service with the service manager's own command.

    Exit 8 when the service is not installed or there is no service manager
    (a container, WSL without systemd): then run `moltbot gateway` instead.
    """
    from moltbot.service import actions

    _print(actions.start(_instance(), _manager()), as_json)


@click.command(
    "stop", epilog="\b\nExamples:\n  moltbot gateway stop\n  moltbot --profile rescue gateway stop"
)
@_json
def stop(as_json: bool) -> None:
    """Stop the gateway service; warns when a gateway of this instance still runs outside it."""
    from moltbot.service import actions

    _print(actions.stop(_instance(), _manager()), as_json)


@click.command(
    "restart",
    epilog="\b\nExamples:\n  moltbot gateway restart\n"
    "  moltbot --profile rescue gateway restart --json",
)
@_json
def restart(as_json: bool) -> None:
    """Restart the gateway service (systemctl restart / launchctl kickstart -k / schtasks)."""
    from moltbot.service import actions

    _print(actions.restart(_instance(), _manager()), as_json)


def _instance():  # noqa: ANN202 - Instance, imported lazily
    """This instance; a broken config still names the service (paths come from the identity)."""
    from moltbot.config.schema import Config
    from moltbot.errors import ConfigError
    from moltbot.instance.resolve import resolve_instance

    cli = context.get()
    try:
        instance, _ = cli.load()
    except ConfigError as exc:
        context.warn(f"{exc.message.splitlines()[0]} (using defaults to find the service)")
        identity = cli.identity()
        instance = resolve_instance(identity, Config(), cli.env, cli.invocation)
    return instance


COMMANDS = (install, uninstall, start, stop, restart)
