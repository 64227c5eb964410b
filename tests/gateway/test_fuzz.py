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
