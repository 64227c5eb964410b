"""The canvas host inside a real gateway: it binds where the gateway binds."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import psutil

from gateway_harness import start_gateway, ws_client

# The canvas host on, everything else that opens ports or connects out off.
CANVAS_ONLY = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CHANNELS": "1"}
STRONG = "Kx9-qT2vLm8Rw4Zp7Nb3Hc6Jd1Fg5Ys0Ua"


def listening_addresses(pid: int, port: int) -> set[str]:
    return {
        conn.laddr.ip
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    }


async def test_canvas_follows_the_bind_flag_not_the_config(home: Path) -> None:
    # The config says loopback (the default); `--bind lan` must move the canvas too.
    gw = start_gateway(home, "main", args=["--bind", "lan", "--token", STRONG], env=CANVAS_ONLY)
    try:
        canvas_port = gw.runtime()["canvasPort"]
        async with ws_client(gw.url, STRONG) as client:
            await gw.wait_output("canvas host serving")
            status = await client.call("status")
        canvas = status["subsystems"]["canvas"]
        assert canvas["state"] == "running", canvas
        assert canvas["bind"] == "0.0.0.0" and canvas["requiresAuth"] is True, canvas
        assert listening_addresses(gw.pid, canvas_port) == {"0.0.0.0"}
        assert listening_addresses(gw.pid, gw.port) >= {"0.0.0.0"}
        page = f"http://127.0.0.1:{canvas_port}/__moltbot__/canvas/"
        async with aiohttp.ClientSession() as session:
            async with session.get(page) as response:
                assert response.status == 401  # exposed: a credential is needed even here
            bearer = {"Authorization": f"Bearer {STRONG}"}
            async with session.get(page, headers=bearer) as response:
                assert response.status == 200
    finally:
        gw.stop()


async def test_canvas_stays_on_loopback_by_default(home: Path) -> None:
    gw = start_gateway(home, "main", env=CANVAS_ONLY)
    try:
        canvas_port = gw.runtime()["canvasPort"]
        await gw.wait_output("canvas host serving")
        assert listening_addresses(gw.pid, canvas_port) == {"127.0.0.1"}
        async with aiohttp.ClientSession() as session:
            page = f"http://127.0.0.1:{canvas_port}/__moltbot__/canvas/"
            async with session.get(page) as response:
                assert response.status == 200
    finally:
        gw.stop()
