"""CDP port allocation against this instance and every other instance on the host."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from browser_helpers import make_instance

from gateway_harness import free_port_block
from moltbot.browser import ports
from moltbot.browser.config import ProfileSpec, resolve
from moltbot.browser.errors import BrowserError
from moltbot.fsutil import acquire_lock
from moltbot.instance.registry import discover


def _setup(home: Path) -> tuple[object, object, list]:
    # Two instances whose bases are only the seed's minimum 20 apart: main's CDP
    # range (21011..21110) contains rescue's base, +2 and +4 (21020, 21022, 21024).
    main = make_instance(home, "main", 21000)
    make_instance(
        home,
        "rescue",
        21020,
        {"browser": {"profiles": {"moltbot": {"cdpPort": 21011}, "work": {"cdpPort": 21012}}}},
    )
    return main, resolve(main.instance, main.config, {}), discover(home)


def test_allocation_skips_other_instances_ports(home: Path) -> None:
    main, settings, known = _setup(home)
    spec = settings.profile(None)
    claims = ports.host_claims(main.instance, known)
    assert claims[21020].startswith("the gateway port of profile rescue")
    assert 'browser profile "work"' in claims[21012]
    first = ports.allocate(spec, settings, main.instance, known, is_free=lambda p: True)
    assert first == 21013
    # every port of the range except rescue's gets handed out before the range is full
    taken: set[int] = set()
    for _ in range(95):
        port = ports.allocate(
            spec, settings, main.instance, known, is_free=lambda p: p not in taken
        )
        assert port not in (21011, 21012, 21020, 21022, 21024)
        taken.add(port)
    with pytest.raises(BrowserError) as caught:
        ports.allocate(spec, settings, main.instance, known, is_free=lambda p: p not in taken)
    assert caught.value.status == 507
    assert "no free CDP port in 21011..21110" in caught.value.message


def test_allocation_skips_listening_ports(home: Path) -> None:
    base = free_port_block(13)  # base .. base+12 free right now
    main = make_instance(home, "main", base)
    settings = resolve(main.instance, main.config, {})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", base + 11))
        listener.listen()
        assert not ports.port_is_free(base + 11)
        assert ports.allocate(settings.profile(None), settings, main.instance, []) == base + 12
    assert ports.port_is_free(base + 11)


def test_allocation_skips_own_profiles_and_a_live_neighbours_ports(home: Path) -> None:
    main = make_instance(
        home,
        "main",
        21000,
        {
            "browser": {
                "profiles": {
                    "work": {"cdpPort": 21011},
                    "attached": {"cdpUrl": "http://127.0.0.1:21012"},
                }
            }
        },
    )
    other = make_instance(home, "other", 21300)
    # the neighbour runs with a canvas port (set by its environment) inside our range
    other.instance.runtime_file.write_text(
        json.dumps({"pid": 1, "port": 21300, "controlPort": 21302, "canvasPort": 21013})
    )
    settings = resolve(main.instance, main.config, {})
    allocate = lambda: ports.allocate(  # noqa: E731
        settings.profile(None), settings, main.instance, discover(home), is_free=lambda p: True
    )
    assert allocate() == 21013  # a runtime file nobody's lock vouches for is a crash's leftover
    fd = acquire_lock(other.instance.lock_file, 1.0)
    try:
        assert allocate() == 21014
    finally:
        os.close(fd)


def test_explicit_port_clash_names_the_other_instance(home: Path) -> None:
    main, settings, known = _setup(home)
    spec = ProfileSpec("moltbot", 21012, None, "#FF4500", True)
    with pytest.raises(BrowserError) as caught:
        ports.check(spec, 21012, settings, main.instance, known)
    assert caught.value.status == 409
    assert 'is the CDP port of browser profile "work" of profile rescue' in caught.value.message
    assert "cdpPort" in (caught.value.hint or "")
    ports.check(spec, 21050, settings, main.instance, known)  # free: no error
    with pytest.raises(BrowserError, match="this instance's canvas port"):
        ports.check(spec, 21004, settings, main.instance, known)
