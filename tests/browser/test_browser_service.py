"""The browser control service with the real Chromium, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from browser_helpers import CHROMIUM, chromium_pids, make_instance, needs_chromium

from gateway_harness import free_port_block, near_misses
from moltbot.browser import chrome
from moltbot.browser.errors import BrowserError
from moltbot.errors import PortInUseError
from moltbot.instance.cdp import read_allocations
from moltbot.lifecycle import State

START_TIMEOUT = 90  # a cold Chromium on a busy 2-core machine


async def call(
    service: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> tuple[int, Any]:
    sent = {"Authorization": f"Bearer {token or service.context.token}", **(headers or {})}
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method,
            service.control_url + path,
            json=body,
            headers=sent,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            return response.status, await response.json(content_type=None)


async def test_requests_need_token_loopback_host_and_origin(home: Path, browser_service) -> None:
    made = make_instance(home, "main")
    service = await browser_service(made)
    assert service.state == State.RUNNING
    url = service.control_url + "/"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with session.get(url, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        for wrong in near_misses(made.token):  # a prefix or length comparison would pass these
            async with session.get(url, headers={"Authorization": f"Bearer {wrong}"}) as resp:
                assert resp.status == 401, wrong
        good = {"Authorization": f"Bearer {made.token}"}
        async with session.get(url, headers={**good, "Host": "evil.example"}) as response:
            assert response.status == 421
        async with session.get(url, headers={**good, "Host": "evil.example:1"}) as response:
            assert response.status == 421
        async with session.get(url, headers={**good, "Origin": "http://evil.example"}) as resp:
            assert resp.status == 403
        local = {**good, "Host": f"localhost:{made.instance.control_port}"}
        async with session.get(url, headers=local) as response:
            assert response.status == 200
        async with session.get(url, headers=good) as response:
            assert response.status == 200
            status = await response.json()
    assert status["controlPort"] == made.instance.control_port
    assert status["profile"] == "moltbot" and status["running"] is False
    assert status["cdpPort"] in made.instance.cdp_ports
    assert status["executable"]["path"] == str(CHROMIUM)
    assert status["headless"] is True
    if os.geteuid() == 0:
        assert status["noSandbox"] is True and "root" in status["noSandboxReason"]
    # the default profile's allocated port is recorded in the state dir, never the config
    assert "browser" not in json.loads(made.instance.config_path.read_text())
    assert read_allocations(made.instance) == {"moltbot": status["cdpPort"]}


async def test_control_port_taken(home: Path, browser_service) -> None:
    made = make_instance(home, "main")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", made.instance.control_port))
        holder.listen()
        with pytest.raises(PortInUseError) as caught:
            await browser_service(made)
    assert str(made.instance.control_port) in caught.value.message


async def test_disabled_by_config_or_env(home: Path, browser_service) -> None:
    off = make_instance(home, "off", config={"browser": {"enabled": False}})
    service = await browser_service(off)
    assert service.state == State.DISABLED and "browser.enabled" in service.reason
    skipped = make_instance(home, "skip", env={"MOLTBOT_SKIP_BROWSER_CONTROL_SERVER": "1"})
    service = await browser_service(skipped)
    assert service.state == State.DISABLED
    reply = await service.request("GET", "/")
    assert reply.status == 503


@needs_chromium
async def test_two_instances_side_by_side_and_a_clashing_third(home: Path, browser_service) -> None:
    main = make_instance(
        home, "main", env={"CLAWDBOT_STATE_DIR": "/nowhere", "CLAWDBOT_GATEWAY_TOKEN": "secret"}
    )
    rescue = make_instance(home, "rescue")
    first = await browser_service(main)
    second = await browser_service(rescue)
    assert first.control_url != second.control_url

    (s1, a), (s2, b) = await asyncio.gather(
        call(first, "POST", "/start"), call(second, "POST", "/start")
    )
    assert (s1, s2) == (200, 200), (a, b)
    assert a["running"] and b["running"]
    assert a["cdpPort"] in main.instance.cdp_ports
    assert b["cdpPort"] in rescue.instance.cdp_ports
    assert a["cdpPort"] != b["cdpPort"] and a["pid"] != b["pid"]
    assert a["startupMs"] > 0
    for info in (a, b):
        assert psutil.pid_exists(info["pid"])
        assert f"--remote-debugging-port={info['cdpPort']}" in psutil.Process(info["pid"]).cmdline()
    args = psutil.Process(a["pid"]).cmdline()
    for flag in chrome.NO_INTERNET_FLAGS:
        assert flag in args
    if os.geteuid() == 0:
        assert "--no-sandbox" in args
    environ = Path(f"/proc/{a['pid']}/environ").read_bytes().split(b"\0")
    assert not any(
        item.startswith((b"CLAWDBOT_STATE_DIR=", b"CLAWDBOT_GATEWAY_TOKEN=")) for item in environ
    )

    # A third instance pinning main's CDP port is refused, naming main.
    third = make_instance(
        home, "third", config={"browser": {"profiles": {"moltbot": {"cdpPort": a["cdpPort"]}}}}
    )
    service = await browser_service(third)
    status, body = await call(service, "POST", "/start")
    assert status == 409
    assert f"CDP port {a['cdpPort']}" in body["error"]
    assert "profile main" in body["error"]
    assert "cdpPort" in body["hint"]
    _, view = await call(service, "GET", "/")
    assert "profile main" in view["profiles"][0]["conflict"]

    # Each stop kills exactly its own browser.
    status, stopped = await call(first, "POST", "/stop")
    assert status == 200 and stopped["stopped"] is True
    await until(lambda: not psutil.pid_exists(a["pid"]) or _zombie(a["pid"]))
    assert psutil.pid_exists(b["pid"]) and not _zombie(b["pid"])
    await second.stop()
    assert chromium_pids(home) == []


@needs_chromium
async def test_profiles_create_start_delete(home: Path, browser_service) -> None:
    made = make_instance(home, "main")
    service = await browser_service(made)
    status, created = await call(service, "POST", "/profiles/create", {"name": "work"})
    assert status == 200, created
    assert created["cdpPort"] in made.instance.cdp_ports
    default_port = service.settings.profile(None).cdp_port
    assert created["cdpPort"] != default_port
    status, again = await call(service, "POST", "/profiles/create", {"name": "work"})
    assert status == 409
    status, bad = await call(service, "POST", "/profiles/create", {"name": "Bad Name"})
    assert status == 400
    status, attached = await call(
        service, "POST", "/profiles/create", {"name": "remote", "cdpUrl": "http://10.9.9.9:9222"}
    )
    assert status == 200 and attached["isRemote"] and attached["cdpPort"] is None

    status, started = await call(service, "POST", "/start?profile=work")
    assert status == 200 and started["running"] and started["cdpPort"] == created["cdpPort"]
    assert started["userDataDir"].endswith("browser/work/user-data")
    status, listing = await call(service, "GET", "/profiles")
    rows = {row["name"]: row for row in listing["profiles"]}
    assert rows["work"]["running"] and rows["work"]["tabCount"] >= 1
    assert not rows["moltbot"]["running"] and rows["moltbot"]["isDefault"]

    status, refused = await call(service, "DELETE", "/profiles/moltbot")
    assert status == 400
    status, deleted = await call(service, "DELETE", "/profiles/work")
    assert status == 200 and deleted["deleted"] and deleted["movedTo"]
    assert (
        not psutil.pid_exists(started["pid"]) or psutil.Process(started["pid"]).status() == "zombie"
    )
    saved = json.loads(made.instance.config_path.read_text())
    assert "work" not in saved["browser"]["profiles"]
    status, _ = await call(service, "POST", "/start?profile=work")
    assert status == 404
    status, unreachable = await call(service, "POST", "/start?profile=remote")
    assert status == 503 and "not reachable" in unreachable["error"]


@needs_chromium
async def test_cdp_port_taken_by_another_process(home: Path, browser_service) -> None:
    """An explicit cdpPort that something else holds is refused; the gateway's own
    allocation moves to the next free port of the range instead."""
    base = free_port_block()
    explicit = base + 2 + 50
    made = make_instance(
        home, "main", base, {"browser": {"profiles": {"pinned": {"cdpPort": explicit}}}}
    )
    service = await browser_service(made)
    allocated = service.settings.profile(None).cdp_port
    assert service.settings.profile(None).allocated
    with socket.socket() as holder, socket.socket() as other:
        holder.bind(("127.0.0.1", explicit))
        holder.listen()
        other.bind(("127.0.0.1", allocated))
        other.listen()
        status, body = await call(service, "POST", "/start?profile=pinned")
        assert status == 409
        assert f"CDP port {explicit}" in body["error"] and "already in use" in body["error"]
        assert f"pid {os.getpid()}" in body["error"]
        status, body = await call(service, "POST", "/start")
        assert status == 200, body
    assert body["cdpPort"] not in (allocated, explicit)
    assert read_allocations(made.instance)["moltbot"] == body["cdpPort"]
    await call(service, "POST", "/stop")


@needs_chromium
async def test_locked_profile_and_devtools_that_never_opens(home: Path, browser_service) -> None:
    made = make_instance(home, "main")
    service = await browser_service(made)
    status, running = await call(service, "POST", "/start")
    assert status == 200
    exe = chrome.find_executable(None, made.env)
    user_data = made.instance.browser_user_data("moltbot")
    # A second Chromium on the same user-data dir (another process holds its lock).
    with pytest.raises(BrowserError) as caught:
        await chrome.launch(
            "moltbot",
            exe,
            port=running["cdpPort"] + 1,
            user_data=user_data,
            headless=True,
            no_sandbox=True,
            env=made.env,
            ready=service.supervisor.ready,
        )
    assert caught.value.status == 409
    assert f"locked by another Chromium process (pid {running['pid']})" in caught.value.message

    # A Chromium whose DevTools never answers is killed and reported.
    async def never(port: int) -> bool:
        return False

    other = made.instance.browser_user_data("never")
    with pytest.raises(BrowserError) as caught:
        await chrome.launch(
            "never",
            exe,
            port=running["cdpPort"] + 2,
            user_data=other,
            headless=True,
            no_sandbox=True,
            env=made.env,
            ready=never,
            timeout=3,
        )
    assert caught.value.status == 503
    assert "never opened DevTools" in caught.value.message
    await until(lambda: chrome.processes_using(other) == [])  # nothing left behind


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` (a SIGKILLed process takes a moment to disappear)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_executable_errors(tmp_path: Path) -> None:
    with pytest.raises(BrowserError, match="no Chromium-based browser found"):
        chrome.find_executable(None, {"PATH": str(tmp_path)})
    with pytest.raises(BrowserError, match="executablePath not found"):
        chrome.find_executable(str(tmp_path / "missing"), {"PATH": ""})
    shim = tmp_path / "chromium-browser"  # what Ubuntu installs: a script running the snap
    shim.write_text('#!/bin/sh\nexec /snap/bin/chromium "$@"\n')
    shim.chmod(0o755)
    with pytest.raises(BrowserError) as caught:
        chrome.find_executable(None, {"PATH": str(tmp_path)})
    assert "snap Chromium" in caught.value.message and "executablePath" in caught.value.hint
    if CHROMIUM.exists():
        found = chrome.find_executable(None, {"PATH": "/usr/bin"})
        assert found.path == str(CHROMIUM) and found.kind == "chromium"


async def test_routes_validate_input(home: Path, browser_service) -> None:
    made = make_instance(home, "main")
    service = await browser_service(made)
    reply = await service.request("POST", "/act", body={"kind": "click"})
    assert reply.status == 400 and "needs ref" in reply.body["error"]
    reply = await service.request("POST", "/act", body={"kind": "click", "ref": "button"})
    assert reply.status == 400 and "invalid ref" in reply.body["error"]
    reply = await service.request("POST", "/act", body={"kind": "dance"})
    assert reply.status == 400
    reply = await service.request("POST", "/tabs/open", body={"url": "file:///etc/passwd"})
    assert reply.status == 400 and "only http(s)" in reply.body["error"]
    reply = await service.request("GET", "/nope")
    assert reply.status == 404
    reply = await service.request("DELETE", "/tabs")
    assert reply.status == 405
    reply = await service.request("GET", "/tabs")
    assert reply.status == 200 and reply.body["running"] is False


@needs_chromium
async def test_cdp_url_attaches_to_a_running_chrome_without_owning_it(
    home: Path, browser_service
) -> None:
    made = make_instance(home, "main", config={"browser": {"executablePath": str(CHROMIUM)}})
    service = await browser_service(made)
    status, view = await call(service, "GET", "/")
    assert view["executable"]["source"] == "browser.executablePath"
    # A Chrome someone started by hand, outside the service.
    port = service.settings.cdp_range.stop - 1
    exe = chrome.find_executable(str(CHROMIUM), made.env)
    external = await chrome.launch(
        "outside",
        exe,
        port=port,
        user_data=home / "outside" / "user-data",
        headless=True,
        no_sandbox=True,
        env=made.env,
        ready=service.supervisor.ready,
    )
    try:
        status, created = await call(
            service,
            "POST",
            "/profiles/create",
            {"name": "shared", "cdpUrl": f"http://127.0.0.1:{port}"},
        )
        assert status == 200 and created["cdpPort"] is None and not created["isRemote"]
        status, started = await call(service, "POST", "/start?profile=shared")
        assert status == 200 and started["running"] and started["pid"] is None
        assert started["launchedByService"] is False
        status, tab = await call(
            service, "POST", "/tabs/open?profile=shared", {"url": "about:blank"}
        )
        assert status == 200
        query = f"/snapshot?profile=shared&targetId={tab['targetId']}"
        status, snap = await call(service, "GET", query)
        assert status == 200 and snap["targetId"] == tab["targetId"]
        status, stopped = await call(service, "POST", "/stop?profile=shared")
        assert status == 200 and stopped["stopped"] is False
        await service.stop()
        assert external.alive()  # attach-only: never killed by moltbot
    finally:
        await chrome.stop(external)
