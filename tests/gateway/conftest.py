from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import CORE_ONLY, GatewayProcess, start_gateway


@pytest.fixture
def gateways(home: Path) -> Iterator[Any]:
    """A factory: ``gateways("main")`` starts a gateway; all are stopped at teardown."""
    started: list[GatewayProcess] = []

    def start(profile: str | None = "main", **kwargs: Any) -> GatewayProcess:
        # Core gateway tests run without the sidecars; their own areas test those.
        env = {**CORE_ONLY, **(kwargs.pop("env", None) or {})}
        gw = start_gateway(home, profile, env=env, **kwargs)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(gateways: Any) -> GatewayProcess:
    return gateways("main")
