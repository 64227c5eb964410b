import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.agents.gateway_agents import start  # noqa: E402
from tests.fakes.llm_openai import FakeOpenAI  # noqa: E402
from tests.fakes.llm_openai import openai_config as fake_provider  # noqa: E402
from tests.ui.ui_helpers import ARGS, CHROMIUM  # noqa: E402


@pytest.fixture
async def llm():
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def gateway(home, llm):
    gw = start(home, fake_provider(llm.base_url, "m1", "m2"))
    holder = {"gw": gw}
    yield holder
    holder["gw"].stop()
