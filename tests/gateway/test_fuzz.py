"""Property-based fuzzing of inbound frames: the gateway never crashes, answers every
well-formed request exactly once, and keeps the connection open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_harness import CORE_ONLY, GatewayProcess, start_gateway, ws_client

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
METHODS = [
    "health",
    "status",
    "system-presence",
    "system-event",
    "logs.tail",
    "config.get",
    "config.schema",
    "config.patch",
    "connect",
    "nope",
    "",
    "agents.list",
]
requests = st.fixed_dictionaries(
    {
        "type": st.just("req"),
        "id": st.text(min_size=1, max_size=8),
        "method": st.sampled_from(METHODS) | st.text(max_size=12),
    },
    optional={"params": json_values},
)
# Text that is not JSON (including JavaScript's Infinity/NaN) is ignored, as upstream does.
raw_texts = st.text(max_size=50) | st.sampled_from(
    ['{"type":"req","id":"1","method":"health","params":Infinity}', "NaN"]
)
frames = st.one_of(requests, json_values, raw_texts.map(lambda t: ("raw", t)))


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("fuzz-home")
    gw = start_gateway(home, "fuzz", env={**CORE_ONLY, "HOME": str(home)})
    yield gw
    gw.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_frames_never_break_the_gateway(fuzz_gateway: GatewayProcess, batch: list[Any]) -> None:
    asyncio.run(_exercise(fuzz_gateway, batch))


async def _exercise(gw: GatewayProcess, batch: list[Any]) -> None:
    async with ws_client(gw.url, gw.token) as client:
        expected: list[str] = []
        for frame in batch:
            if isinstance(frame, tuple):
                await client.ws.send_str(frame[1])
                continue
            await client.ws.send_str(json.dumps(frame))
            if isinstance(frame, dict) and frame.get("type") == "req":
                expected.append(frame["id"])
        # the connection is still usable and the gateway alive
        assert (await client.call("health", timeout=10))["ok"] is True
        for _ in range(50):
            if all(len(client.second_response(i)) >= expected.count(i) for i in expected):
                break
            await asyncio.sleep(0.02)
        for request_id in set(expected):  # every request got exactly its own answers
            answers = client.second_response(request_id)
            assert len(answers) == expected.count(request_id), (request_id, answers)
        assert not client.closed.is_set()
    assert gw.proc.poll() is None


# -- every method's params -------------------------------------------------------------

PARAM_KEYS = [
    "sessionKey",
    "message",
    "idempotencyKey",
    "limit",
    "raw",
    "baseHash",
    "key",
    "runId",
    "text",
    "method",
    "path",
    "agentId",
    "timeoutMs",
    "label",
    "query",
    "body",
    "keys",
    "deliver",
    "thinking",
    "attachments",
    "channel",
    "to",
    "model",
    "kinds",
    "cursor",
]
plausible_params = st.dictionaries(st.sampled_from(PARAM_KEYS), json_values, max_size=5)


@pytest.fixture(scope="module")
def method_names(fuzz_gateway: GatewayProcess) -> list[str]:
    async def names() -> list[str]:
        async with ws_client(fuzz_gateway.url, fuzz_gateway.token) as client:
            return sorted(set(client.hello["features"]["methods"]) | {"chat.inject"})

    return asyncio.run(names())


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_method_answers_any_params(
    fuzz_gateway: GatewayProcess, method_names: list[str], data: st.DataObject
) -> None:
    calls = data.draw(
        st.lists(
            st.tuples(st.sampled_from(method_names), plausible_params | json_values),
            min_size=1,
            max_size=6,
        )
    )
    asyncio.run(_call_all(fuzz_gateway, calls))


async def _call_all(gw: GatewayProcess, calls: list[tuple[str, Any]]) -> None:
    async with ws_client(gw.url, gw.token) as client:
        ids = []
        for n, (method, params) in enumerate(calls):
            request_id = f"m{n}"
            ids.append((request_id, method))
            frame = {"type": "req", "id": request_id, "method": method, "params": params}
            await client.ws.send_str(json.dumps(frame))
        assert (await client.call("health", timeout=30))["ok"] is True
        for _ in range(300):
            if all(client.second_response(i) for i, _ in ids):
                break
            await asyncio.sleep(0.02)
        for request_id, method in ids:
            answers = client.second_response(request_id)
            assert answers, (method, calls)  # never unanswered
            if method != "agent":  # `agent` answers twice: accepted, then the result
                assert len(answers) == 1, (method, answers)
            for answer in answers:
                if not answer["ok"]:
                    assert answer["error"]["code"] in (
                        "INVALID_REQUEST",
                        "UNAVAILABLE",
                        "NOT_LINKED",
                        "AGENT_TIMEOUT",
                    ), answer
                    assert "failed:" not in answer["error"]["message"], answer  # no crash
        assert not client.closed.is_set()
    assert gw.proc.poll() is None


# -- every HTTP surface: gateway port, browser control (+2), canvas host (+4) ---------

PATHS = [
    "/",
    "/health",
    "/healthz",
    "/index.html",
    "/app.js",
    "/../../etc/passwd",
    "/%2e%2e/x",
    "/v1/chat/completions",
    "/slack/events",
    "/telegram/webhook",
    "/__moltbot__/canvas/",
    "/__moltbot__/canvas/index.html",
    "/__openclaw__/canvas/../x",
    "/__moltbot__/ws",
    "/__moltbot__/cap/abc/canvas/",
    "/tabs",
    "/profiles",
    "/snapshot",
    "/console",
    "/act",
    "/navigate",
    "/screenshot",
    "/start",
    "/stop",
    "/tabs/open",
]
header_values = st.one_of(
    st.sampled_from(
        ["http://127.0.0.1:99999999", "null", "http://[::1", "http://evil.example", "", "x"]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
http_requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        "path": st.sampled_from(PATHS)
        | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(
            lambda t: "/" + t
        ),
        "offset": st.sampled_from([0, 2, 4]),
        "headers": st.dictionaries(
            st.sampled_from(
                [
                    "Origin",
                    "Authorization",
                    "Content-Type",
                    "X-Forwarded-For",
                    "Host",
                    "Upgrade",
                    "Content-Length",
                ]
            ),
            header_values,
            max_size=4,
        ),
        "body": st.none()
        | st.binary(max_size=200)
        | json_values.map(lambda v: json.dumps(v).encode()),
    }
)


@pytest.fixture(scope="module")
def http_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("fuzz-http-home")
    gw = start_gateway(home, "fuzzhttp", env={"CLAWDBOT_SKIP_CHANNELS": "1", "HOME": str(home)})
    import socket
    import time

    deadline = time.monotonic() + 30
    for offset in (2, 4):
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", gw.port + offset), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    yield gw
    gw.stop()


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(http_requests, min_size=1, max_size=6))
def test_http_surfaces_never_fail(
    http_gateway: GatewayProcess, batch: list[dict[str, Any]]
) -> None:
    asyncio.run(_http_batch(http_gateway, batch))


async def _http_batch(gw: GatewayProcess, batch: list[dict[str, Any]]) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(local_addr=("127.0.0.7", 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        for req in batch:
            headers = dict(req["headers"])
            headers.pop("Content-Length", None)  # let the client frame the body honestly
            if headers.get("Authorization") == "token":
                headers["Authorization"] = "Bearer wrong"
            url = f"http://127.0.0.1:{gw.port + req['offset']}{req['path']}"
            try:
                async with session.request(
                    req["method"],
                    url,
                    headers=headers,
                    data=req["body"],
                    timeout=aiohttp.ClientTimeout(total=30),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    assert response.status < 500 or response.status in (501, 502, 503, 504), (
                        req,
                        response.status,
                        await response.text(),
                    )
            except (aiohttp.ClientConnectionError, aiohttp.InvalidURL, ValueError):
                pass  # a request the client itself could not send, or a refused connection
    async with aiohttp.ClientSession() as session:
        for offset in (0,):
            async with session.get(f"http://127.0.0.1:{gw.port + offset}/health") as health:
                assert health.status == 200
    assert gw.proc.poll() is None
