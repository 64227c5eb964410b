"""`moltbot gateway [run]|status|probe|call` (+ install/uninstall/start/stop/restart)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from moltbot.cli import context
from moltbot.cli.lazy import LazyGroup

SERVICE_COMMANDS = {
    "install": (
        "moltbot.cli.service_cmd:install",
        "Install this profile's OS service (systemd/launchd/schtasks).",
    ),
    "uninstall": ("moltbot.cli.service_cmd:uninstall", "Remove this profile's OS service."),
    "start": ("moltbot.cli.service_cmd:start", "Start this profile's service."),
    "stop": ("moltbot.cli.service_cmd:stop", "Stop this profile's service."),
    "restart": ("moltbot.cli.service_cmd:restart", "Restart this profile's service."),
}


@click.group(
    cls=LazyGroup,
    lazy=SERVICE_COMMANDS,
    default="run",
    epilog=context.examples(
        "moltbot --profile main gateway --port 18789",
        "moltbot --profile rescue gateway status",
        "moltbot gateway call health --json",
    ),
)
def gateway() -> None:
    """Run the gateway (default), inspect it, or manage its OS service."""


@gateway.command(
    "run",
    epilog=context.examples(
        "moltbot gateway",
        "moltbot --profile rescue gateway run --port 19789",
        'moltbot gateway --bind lan --token "$TOKEN"',
        notes="Exit codes: 0 stopped by signal, 2 usage, 3 conflicts with another\n"
        "instance, 4 already running, 5 port held by another process,\n"
        "78 invalid config, 1 other fatal errors.",
    ),
)
@click.option("--port", type=click.IntRange(1, 65535), help="Base port (default: config).")
@click.option(
    "--bind",
    type=click.Choice(["loopback", "lan", "tailnet", "auto", "custom"]),
    help="Listen address policy (default: gateway.bind).",
)
@click.option("--token", help="Shared token clients must present.")
@click.option("--password", help="Shared password clients must present.")
@click.option("--force", is_flag=True, help="Stop whatever listens on the base port first.")
@click.option(
    "--verbose", is_flag=True, help="Mirror debug lines (handshakes, frames) to the console."
)
@click.option("--allow-unconfigured", is_flag=True, hidden=True, help="Accepted for compatibility.")
def run_cmd(
    port: int | None,
    bind: str | None,
    token: str | None,
    password: str | None,
    force: bool,
    verbose: bool,
    allow_unconfigured: bool,
) -> None:
    """Run the gateway in the foreground (never forks).

    An instance that was never set up is set up first. Prints the WebSocket and
    dashboard URLs when ready. SIGTERM stops it (exit 0); SIGUSR1 restarts it
    in-process; config file edits are applied live.
    """
    import gc

    # Start-up creates a few hundred thousand objects that live as long as the process
    # (modules, models); the cyclic GC would walk them over and over meanwhile. The
    # gateway collects once and turns it back on when its sidecars have started.
    gc.disable()
    from moltbot.gateway.run import RunOptions, run

    cli = context.get()
    identity = cli.identity(port=port)
    if not identity.config_path.exists():
        from moltbot.errors import ConflictError
        from moltbot.gateway import preflight
        from moltbot.instance.setup import setup_instance

        click.echo(f"No config at {identity.config_path}: running setup first.", err=True)
        try:
            # A start that cannot bind must not leave a set-up instance behind (it would
            # claim its ports on the host): check the planned ports before writing.
            planned = setup_instance(identity, cli.env, port=port, dry_run=True).instance
            if not force:
                preflight.check_listening(
                    "127.0.0.1", preflight.instance_ports(planned, browser=True, canvas=True)
                )
            report = setup_instance(identity, cli.env, port=port)
            click.echo(
                f"Set up profile {report.instance.profile}: config "
                f"{report.instance.config_path}, workspace {report.instance.workspace}",
                err=True,
            )
        except ConflictError:
            if not identity.config_path.exists():
                raise  # a real clash, not a concurrent setup of the same instance
    options = RunOptions(
        port=port,
        bind=bind,
        token=token,
        password=password,
        force=force,
        verbose=verbose,
        color=cli.color,
        show_token=sys.stdout.isatty(),
    )
    raise SystemExit(run(identity, cli.env, options, echo=click.echo))


def resolve(
    url: str | None, token: str | None, password: str | None, *, refuse_foreign: bool = True
) -> tuple[Any, Any]:
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, snapshot = cli.load()
    return instance, resolve_target(
        instance,
        snapshot.config,
        cli.env,
        url=url,
        token=token,
        password=password,
        refuse_foreign=refuse_foreign,
    )


@gateway.command(
    "call",
    epilog=context.examples(
        "moltbot gateway call health",
        "moltbot gateway call config.get --json",
        """moltbot gateway call system-event --params '{"text": "hello"}'""",
    ),
)
@click.argument("method")
@click.option("--params", "params_json", help="Params as JSON.")
@context.target_options
def call_cmd(
    method: str,
    params_json: str | None,
    url: str | None,
    token: str | None,
    password: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Call one gateway METHOD and print its payload (exit 6 unreachable, 7 auth)."""
    from moltbot.errors import UsageError
    from moltbot.gateway.sync_client import SyncGatewayClient

    try:
        params = json.loads(params_json) if params_json else None
    except ValueError as exc:
        raise UsageError(f"--params is not valid JSON: {exc}") from None
    _, target = resolve(url, token, password)
    with SyncGatewayClient.for_target(target, timeout) as client:
        payload = client.call(method, params)
    context.emit_json(payload)


@gateway.command("probe", epilog="\b\nExample:\n  moltbot --profile rescue gateway probe --json")
@context.target_options
def probe_cmd(
    url: str | None, token: str | None, password: str | None, timeout: float, as_json: bool
) -> None:
    """Connect, then call health, status, system-presence and config.get."""
    from moltbot.errors import MoltbotError
    from moltbot.gateway.sync_client import SyncGatewayClient

    _, target = resolve(url, token, password)
    result: dict[str, Any] = {"ok": False, "url": target.url, "source": target.source}
    try:
        with SyncGatewayClient.for_target(target, timeout) as client:
            result["connectLatencyMs"] = round(client.connect_latency_ms, 1)
            for method in ("health", "status", "system-presence", "config.get"):
                try:
                    result[method] = client.call(method)
                except MoltbotError as exc:
                    result[method] = {"error": exc.message}
            result["ok"] = True
    except MoltbotError as exc:
        result["error"] = exc.message
        if as_json:
            context.emit_json(result)
        raise
    if as_json:
        context.emit_json(result)
        return
    status = result["status"].get("instance", {}) if isinstance(result["status"], dict) else {}
    click.echo(f"ok: {target.url} ({target.source}), connect {result['connectLatencyMs']} ms")
    click.echo(
        f"profile {status.get('profile')} pid {status.get('pid')} version {status.get('version')}"
    )


@gateway.command(
    "status",
    epilog=context.examples(
        "moltbot gateway status", "moltbot --profile rescue gateway status --json"
    ),
)
@context.target_options
def status_cmd(
    url: str | None, token: str | None, password: str | None, timeout: float, as_json: bool
) -> None:
    """Service, process, port owner and RPC reachability of THIS profile's gateway."""
    from moltbot.gateway.probe import gateway_facts

    cli = context.get()
    instance, target = resolve(url, token, password, refuse_foreign=False)
    facts = gateway_facts(instance, target, timeout, cli.env)
    if as_json:
        context.emit_json(facts)
    else:
        click.echo(render_gateway_facts(facts))
    if not facts["rpc"]["ok"]:
        raise SystemExit(6 if facts["rpc"].get("kind") != "auth" else 7)


def render_gateway_facts(facts: dict[str, Any]) -> str:
    service = facts["service"]
    lines = [f"Gateway of profile {facts['profile']}"]
    name = service.get("name") or "service"
    if not service.get("installed"):
        why = service.get("unavailable")
        lines.append(f"  Service   {name}: not installed" + (f" ({why})" if why else ""))
    elif not service.get("available"):
        lines.append(f"  Service   {name}: installed; state unknown ({service.get('unavailable')})")
    else:
        loaded = service.get("loadedText") or ("loaded" if service.get("loaded") else "not loaded")
        state = "running" if service.get("running") else "not running"
        lines.append(f"  Service   {name}: installed, {loaded}, {state}")
    proc = facts["process"]
    if proc["pid"]:
        alive = "" if proc["alive"] else " (not alive: stale runtime file)"
        lines.append(f"  Process   pid {proc['pid']}{alive}")
    else:
        lines.append("  Process   not running (no runtime file)")
    port = facts["port"]
    owners = (
        ", ".join(f"pid {o['pid']} ({o['command'][:60]})" for o in port["listeners"]) or "nobody"
    )
    lines.append(f"  Port      {port['port']} held by {owners}")
    if facts.get("drift"):
        lines.append(f"  Drift     {facts['drift']}")
    rpc = facts["rpc"]
    state = "ok" if rpc["ok"] else f"failed: {rpc.get('error')}"
    lines.append(f"  RPC       {facts['url']} ({facts['source']}) {state}; auth {rpc['auth']}")
    return "\n".join(lines)
