"""Where an instance listens: a ``gateway.bind`` mode (or ``--bind``) → an address.

The gateway resolves this once per run and hands the address to the subsystems
that follow its exposure (the canvas host), so the two never disagree.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"


def listen_host(mode: str, custom_host: str | None) -> str:
    """The address to bind for bind ``mode``.

    ``loopback``/``auto`` → 127.0.0.1, ``lan`` → 0.0.0.0, ``custom`` →
    ``gateway.customBindHost`` (0.0.0.0 without one), ``tailnet`` → this host's
    100.64.0.0/10 address (127.0.0.1 when it has none).
    """
    if mode == "lan":
        return ALL_INTERFACES
    if mode == "custom":
        return custom_host or ALL_INTERFACES
    if mode == "tailnet":
        return tailnet_address() or LOOPBACK
    return LOOPBACK


def tailnet_address() -> str | None:
    """This host's first IPv4 address in the Tailscale range, if any."""
    import ipaddress

    import psutil

    tailnet = ipaddress.ip_network("100.64.0.0/10")
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if (
                address.family == socket.AF_INET
                and ipaddress.ip_address(address.address) in tailnet
            ):
                return str(address.address)
    return None
