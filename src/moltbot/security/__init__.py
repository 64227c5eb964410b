"""Network-facing defences shared by the gateway port and its side servers (+2, +4).

- :mod:`.secrets`: constant-time secret comparison and the strong-token rule for
  non-loopback binds.
- :mod:`.throttle`: failed-authentication throttling per client address.
- :mod:`.connguard`: per-connection admission (caps on unauthenticated
  connections per address and in total) and HTTP header/body read timeouts.
- :mod:`.process`: process-wide limits raised at start (``RLIMIT_NOFILE``) and
  returning freed memory to the OS.
- :mod:`.origin`: which ``Origin``/``Host``/proxy headers make a request local.

This package sits at the bottom with :mod:`moltbot.errors`: gateway, browser and
canvas import it; it imports none of them.
"""

__all__: list[str] = []
