"""CDP ports for browser profiles: allocation and clash checks across the host.

A managed profile's port comes from the instance's CDP range
(``controlPort + 9 .. controlPort + 108``), skipping every port that

- another instance on the host uses (its base, +2, +4, its allocated or
  explicit CDP ports, and the ports its runtime file records),
- this instance uses itself (its own base/+2/+4, other browser profiles),
- something already listens on.

The caller records the chosen port in the state dir (:mod:`moltbot.instance.cdp`),
where the host registry shows it to every other instance's allocation; the
config keeps only ports the user chose.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from moltbot.browser.config import BrowserSettings, ProfileSpec, is_loopback_url, url_port
from moltbot.browser.errors import BrowserError, conflict
from moltbot.instance.registry import KnownInstance, others
from moltbot.instance.resolve import Instance


def describe_instance(instance: Instance) -> str:
    return f"profile {instance.profile} ({instance.state_dir})"


def host_claims(me: Instance, known: Iterable[KnownInstance]) -> dict[int, str]:
    """Port -> who uses it, for every *other* instance on the host."""
    out: dict[int, str] = {}
    for entry in others(known, me):
        inst = entry.instance
        who = describe_instance(inst)
        out.setdefault(inst.port, f"the gateway port of {who}")
        out.setdefault(entry.live_port, f"the gateway port of {who}")
        out.setdefault(inst.control_port, f"the browser control port of {who}")
        out.setdefault(inst.canvas_port, f"the canvas port of {who}")
        for name, port in (*inst.explicit_cdp_ports, *inst.allocated_cdp_ports):
            out.setdefault(port, f'the CDP port of browser profile "{name}" of {who}')
        if entry.running:
            for port in entry.running.used_ports:
                out.setdefault(port, f"a port of the running gateway of {who}")
    return out


def own_claims(me: Instance, settings: BrowserSettings, *, exclude: str) -> dict[int, str]:
    """Port -> use, for this instance's own ports other than profile ``exclude``'s."""
    out = {
        me.port: "this instance's gateway port",
        me.control_port: "this instance's browser control port",
        me.canvas_port: "this instance's canvas port",
    }
    for spec in settings.profiles.values():
        if spec.name == exclude:
            continue
        port = spec.cdp_port
        if spec.cdp_url and is_loopback_url(spec.cdp_url):
            port = url_port(spec.cdp_url)
        if port:
            out.setdefault(port, f'the CDP port of this instance\'s browser profile "{spec.name}"')
    return out


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` (a test bind; TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def allocate(
    spec: ProfileSpec,
    settings: BrowserSettings,
    me: Instance,
    known: Iterable[KnownInstance],
    is_free: Callable[[int], bool] = port_is_free,
) -> int:
    """The first port of the CDP range nobody uses. Raises 507 when the range is full."""
    taken = {**host_claims(me, known), **own_claims(me, settings, exclude=spec.name)}
    for port in settings.cdp_range:
        if port not in taken and is_free(port):
            return port
    first, last = settings.cdp_range.start, settings.cdp_range.stop - 1
    raise BrowserError(
        f'no free CDP port in {first}..{last} for browser profile "{spec.name}"',
        status=507,
        hint="delete unused browser profiles, or set browser.profiles.<name>.cdpPort "
        "to a free port",
    )


def check(
    spec: ProfileSpec,
    port: int,
    settings: BrowserSettings,
    me: Instance,
    known: Iterable[KnownInstance],
) -> None:
    """Refuse ``port`` for ``spec`` when another instance or profile uses it (409)."""
    owner = own_claims(me, settings, exclude=spec.name).get(port)
    if owner is None:
        owner = host_claims(me, known).get(port)
    if owner is not None:
        first, last = settings.cdp_range.start, settings.cdp_range.stop - 1
        raise conflict(
            f'CDP port {port} of browser profile "{spec.name}" is {owner}',
            hint=f"remove browser.profiles.{spec.name}.cdpPort to allocate one automatically "
            f"from {first}..{last}, or set another port with `moltbot config set "
            f"browser.profiles.{spec.name}.cdpPort N`",
        )
