"""The pure parts of the OpenAI-compatible API: model ids, sessions, request bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moltbot.gateway.http.api import ApiError
from moltbot.gateway.http.openai.models import agent_for, listed_ids
from moltbot.gateway.http.openai.request import (
    ChatMessage,
    build_prompt,
    parse_request,
    session_for,
)
from moltbot.sessions.keys import normalize_key

AGENTS = ["main", "ops"]


@pytest.mark.parametrize(
    ("model", "agent"),
    [
        ("moltbot", "main"),
        ("OpenClaw", "main"),
        ("moltbot:ops", "ops"),
        ("MOLTBOT:OPS", "ops"),
        ("openclaw:ops", "ops"),
        ("moltbot/ops", "ops"),
        ("agent:main", "main"),
        ("moltbot:ghost", None),
        ("moltbot:", None),
        ("gpt-4o", None),
        ("ops", None),
    ],
)
def test_model_ids_name_agents(model, agent):
    assert agent_for(model, AGENTS, "main") == agent


def test_listed_ids():
    assert listed_ids(AGENTS) == ["moltbot", "moltbot:main", "moltbot:ops"]


def test_session_precedence():
    user = "bob"
    assert session_for("ops", {}, user).key == "agent:ops:openai-user:bob"
    named = session_for("ops", {"x-moltbot-session": "work"}, user)
    assert named.key == "agent:ops:openai-session:work" and named.stable
    both = {"x-moltbot-session-key": "agent:ops:x", "x-moltbot-session": "w"}
    raw = session_for("ops", both, user)
    assert raw.key == "agent:ops:x"
    fresh = session_for("ops", {}, None)
    assert fresh.key.startswith("agent:ops:openai:") and not fresh.stable
    assert session_for("ops", {}, "   ").key.startswith("agent:ops:openai:")
    assert session_for("ops", {}, None).key != fresh.key


@given(st.text(min_size=1).filter(str.strip), st.text(min_size=1).filter(str.strip))
def test_different_users_never_share_a_session(a, b):
    key_a = session_for("main", {}, a).key
    key_b = session_for("main", {}, b).key
    assert (key_a == key_b) == (a.strip() == b.strip())
    assert normalize_key(key_a, "main") == key_a  # already canonical: no case folding later


def test_prompt_folds_earlier_turns_unless_the_session_has_them():
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="one"),
        ChatMessage(role="assistant", content="two"),
        ChatMessage(role="user", content=[{"type": "text", "text": "three"}]),
    ]
    folded = build_prompt(messages)
    assert folded.system == "Be brief."
    assert folded.text.startswith("[Chat history for context]\nUser: one\nAssistant: two\n")
    assert folded.text.endswith("\nthree")
    assert build_prompt(messages, history=False).text == "three"
    with pytest.raises(ApiError, match="Missing user message"):
        build_prompt(messages[:1])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], "body"),
        ({}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages[0].content[0].text",
        ),
        ({"messages": [], "user": 7}, "user"),
        ({"messages": [], "n": 3}, "n"),
        ({"messages": [{"role": "user", "content": "x"}] * 6}, "messages"),
    ],
)
def test_bad_bodies_name_the_field(body, param):
    with pytest.raises(ApiError) as caught:
        parse_request(body, max_messages=5)
    assert caught.value.status == 400
    assert caught.value.param == (None if param == "body" else param)
