"""Free port blocks for tests that start (or plan) gateways: real ports chosen at runtime."""

from __future__ import annotations

import socket

from gateway_harness import port_is_free

BLOCK = 111


def free_block(avoid: tuple[int, ...] = (), size: int = BLOCK) -> int:
    """A base port whose first ports are free now, two whole blocks away from ``avoid``."""
    for _ in range(500):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 2 * size >= 65000 or any(abs(base - a) < 2 * size for a in avoid):
            continue
        if all(port_is_free(p) for p in range(base, base + 6)):
            return base
    raise RuntimeError("no free port block")
