"""One gateway call for a command: resolve this instance's gateway, call, return the payload.

Commands over a running gateway (``devices``, ``nodes``, ``approvals``) use
:func:`call`; errors are the tree's (6 unreachable, 7 auth, 1 method error)."""

from __future__ import annotations

from typing import Any


def call(
    method: str,
    params: Any = None,
    *,
    url: str | None,
    token: str | None,
    password: str | None,
    timeout: float,
) -> Any:
    from moltbot.cli.gateway_cmd import resolve
    from moltbot.gateway.sync_client import SyncGatewayClient

    _, target = resolve(url, token, password)
    with SyncGatewayClient.for_target(target, timeout) as client:
        return client.call(method, params, timeout=timeout)
