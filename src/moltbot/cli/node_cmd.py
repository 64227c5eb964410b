"""`moltbot node run`: this machine as a headless node of a gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from typing import Any

import click

from moltbot.cli import context


@click.group(
    epilog=context.examples(
        "moltbot node run --host 192.168.1.10 --port 18789 --display-name build-box",
        notes="The first connection waits for an operator: on the gateway host run\n"
        "`moltbot devices list` and `moltbot devices approve REQUEST`.",
    )
)
def node() -> None:
    """Run this machine as a node: the gateway's agents run commands here."""


@node.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Gateway host.")
@click.option("--port", type=int, default=18789, show_default=True, help="Gateway port.")
@click.option("--tls", is_flag=True, help="Connect with wss://.")
@click.option("--display-name", help="Name shown on the gateway (default: host name).")
@click.option("--token", help="Gateway token (default: env, then this instance's config).")
@click.option("--password", help="Gateway password.")
def run_cmd(
    host: str,
    port: int,
    tls: bool,
    display_name: str | None,
    token: str | None,
    password: str | None,
) -> None:
    """Connect to the gateway at HOST:PORT as a node and run its commands until stopped.

    Commands run under this instance's exec policy (tools.exec.*), in its workspace, with
    its exec approvals file; its device identity is <state>/identity/device.json."""
    from moltbot.devices.identity import DeviceIdentity
    from moltbot.devices.node_host import CAPS, COMMANDS, NodeHost
    from moltbot.fsutil import write_json_atomic
    from moltbot.gateway.client import GatewayClient
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, snapshot = cli.load()
    url = f"{'wss' if tls else 'ws'}://{host}:{port}"
    target = resolve_target(
        instance, snapshot.config, cli.env, url=url, token=token, password=password
    )
    identity = DeviceIdentity.load_or_create(instance.identity_dir / "device.json")
    name = display_name or socket.gethostname()
    write_json_atomic(
        instance.node_host_file,
        {
            "version": 1,
            "nodeId": identity.device_id,
            "displayName": name,
            "gateway": {"host": host, "port": port, "tls": tls},
        },
    )
    path_env = os.environ.get("PATH", "")

    def connect() -> Any:
        return GatewayClient(
            url,
            token=target.token,
            password=target.password,
            timeout=10.0,
            client_id="node-host",
            mode="node",
            role="node",
            scopes=[],
            identity=identity,
            display_name=name,
            instance_id=identity.device_id,
            caps=list(CAPS),
            commands=list(COMMANDS),
            path_env=path_env,
        )

    click.echo(f"node host {name} (node id {identity.device_id}) -> {url}", err=True)
    host_runner = NodeHost(
        instance, snapshot.config, cli.env, protected=_protected(instance, cli.env)
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await host_runner.serve(connect, stop, say=lambda line: click.echo(line, err=True))

    asyncio.run(main())


def _protected(instance: Any, env: dict[str, str]) -> tuple[Any, ...]:
    from moltbot.agents.tools.confine import protected_paths

    return protected_paths(instance, env)
