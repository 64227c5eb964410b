"""A gateway with the OpenAI-compatible API on, whose model is the stand-in OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI, openai_config

from gateway_harness import GatewayProcess


def api_config(llm: FakeOpenAI, **endpoint: object) -> dict[str, object]:
    """Agents ``main`` (default) and ``ops``; the chat completions endpoint on."""
    config = openai_config(llm.base_url)
    config["gateway"] = {
        "http": {"endpoints": {"chatCompletions": {"enabled": True, **endpoint}}},
        # wrong tokens on purpose, all from 127.0.0.1: the throttle has its own tests
        "auth": {"rateLimit": {"attempts": 1000}},
    }
    config["agents"]["list"] = [{"id": "main"}, {"id": "ops"}]  # type: ignore[index]
    return config


@pytest.fixture
def api_gateway(home: Path, llm: FakeOpenAI) -> Iterator[GatewayProcess]:
    gw = start(home, api_config(llm))
    yield gw
    gw.stop()
