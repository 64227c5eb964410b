"""Free port blocks for tests that start (or plan) gateways: real ports chosen at runtime."""

from __future__ import annotations

import socket

BLOCK = 111


def free_block(avoid: tuple[int, ...] = (), size: int = BLOCK) -> int:
    """A base port whose first ports are free now, two whole blocks away from ``avoid``."""
    for _ in range(500):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 2 * size >= 65000 or any(abs(base - a) < 2 * size for a in avoid):
            continue
        if all(_free(p) for p in range(base, base + 6)):
            return base
    raise RuntimeError("no free port block")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
