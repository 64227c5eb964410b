import pytest

from moltbot.errors import UsageError
from moltbot.sessions.keys import agent_of, kind_of, main_key, normalize_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("main", "agent:main:main"),
        ("  Agent:Main:Main ", "agent:main:main"),
        ("agent:work:telegram:group:-100:topic:4", "agent:work:telegram:group:-100:topic:4"),
        ("openai-user:Bob", "agent:main:openai-user:bob"),
    ],
)
def test_normalize(raw, expected):
    assert normalize_key(raw, "main") == expected


@pytest.mark.parametrize("raw", ["", "   ", "agent:", "agent:main:", "agent:Bad Id:x", "a\x00b"])
def test_normalize_rejects(raw):
    with pytest.raises(UsageError):
        normalize_key(raw, "main")


def test_helpers():
    assert main_key("ops") == "agent:ops:main"
    assert agent_of("agent:ops:main") == "ops"
    assert agent_of("cron:x") is None
    assert kind_of("agent:main:main") == "direct"
    assert kind_of("agent:main:slack:channel:c1") == "group"
