"""Chunking and formatting: pure functions, with property tests."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fakes.telegram import parse_html

from moltbot.channels.chunking import chunk_text, open_fence, utf16_len
from moltbot.channels.markdown import strip_html, to_slack_mrkdwn, to_telegram_html

words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
blocks = st.one_of(
    st.lists(words, min_size=1, max_size=40).map(" ".join),
    st.lists(words, min_size=1, max_size=30).map(lambda ws: "```py\n" + "\n".join(ws) + "\n```"),
)
documents = st.lists(blocks, min_size=1, max_size=12).map("\n\n".join)


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(min_value=40, max_value=400))
def test_chunks_fit_and_keep_every_character(text: str, limit: int) -> None:
    chunks = chunk_text(text, limit)
    assert all(len(chunk) <= limit for chunk in chunks)
    original = re.sub(r"\s+|`", "", text)
    rebuilt = re.sub(r"\s+|`", "", "".join(re.sub(r"^```py$", "", c, flags=re.M) for c in chunks))
    # fences may be closed/reopened, so compare with fence lines removed on both sides
    assert rebuilt.replace("py", "") == original.replace("py", "")
    for chunk in chunks:
        assert open_fence(chunk) is None  # no chunk leaves a code block open


@settings(max_examples=100, deadline=None)
@given(documents, st.integers(min_value=40, max_value=400))
def test_utf16_measure(text: str, limit: int) -> None:
    assert all(utf16_len(c) <= limit for c in chunk_text(text, limit, measure=utf16_len))


def test_prefers_paragraphs_and_reopens_fences() -> None:
    text = "first paragraph\n\nsecond paragraph that is long enough"
    assert chunk_text(text, 40) == ["first paragraph", "second paragraph that is long enough"]
    code = "```python\n" + "\n".join(f"x = {i}" for i in range(30)) + "\n```"
    parts = chunk_text(code, 80)
    assert len(parts) > 2
    assert all(p.startswith("```python\n") and p.endswith("```") for p in parts)
    assert chunk_text("a\n\nb", 50, mode="newline") == ["a", "b"]
    assert chunk_text("   \n", 50) == []


@settings(max_examples=200, deadline=None)
@given(documents)
def test_telegram_html_always_parses(text: str) -> None:
    html = to_telegram_html(text + " **b** _i_ `c` [l](https://x.y/?a=1&b=2) <tag> & ~~s~~")
    visible = parse_html(html)  # raises like Telegram would on bad markup
    assert visible == strip_html(html)


def test_telegram_html_conversions() -> None:
    assert (
        to_telegram_html("**bold** and _it_ and `a<b`")
        == "<b>bold</b> and <i>it</i> and <code>a&lt;b</code>"
    )
    assert (
        to_telegram_html("[site](https://e.com/?q=1&r=2)")
        == '<a href="https://e.com/?q=1&amp;r=2">site</a>'
    )
    assert "<a" not in to_telegram_html("[x](javascript:alert(1))")
    assert (
        to_telegram_html("```sh\nls -l\n```") == '<pre><code class="language-sh">ls -l</code></pre>'
    )
    assert to_telegram_html("- a\n- b") == "• a\n• b"
    assert to_telegram_html("# Title") == "<b>Title</b>"


def test_slack_mrkdwn_conversions() -> None:
    assert to_slack_mrkdwn("**bold** _it_ ~~no~~") == "*bold* _it_ ~no~"
    assert to_slack_mrkdwn("[docs](https://e.com) & <x>") == "<https://e.com|docs> &amp; &lt;x&gt;"
    assert to_slack_mrkdwn("> quote\n> more") == "> quote\n> more"
    assert to_slack_mrkdwn("```\na < b\n```") == "```\na &lt; b\n```"
