import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.agents.gateway_agents import start  # noqa: E402
from tests.fakes.llm_openai import openai_config as fake_provider  # noqa: E402


@pytest.fixture
def gateway(home, llm):
    gw = start(home, fake_provider(llm.base_url, "m1", "m2"))
    holder = {"gw": gw}
    yield holder
    holder["gw"].stop()
