"""Markdown (as models write it) → each platform's formatting. Pure functions.

- :func:`to_telegram_html`: the HTML subset Telegram accepts with
  ``parse_mode=HTML`` (b, i, s, code, pre, a, blockquote); everything else is
  escaped text, so the result always parses.
- :func:`to_slack_mrkdwn`: Slack's mrkdwn (``*bold*``, ``_italic_``,
  ``~strike~``, ``<url|text>``), with ``& < >`` escaped as Slack requires.

Both walk the token stream of ``markdown-it-py``; lists become bullet lines and
headings bold lines, since neither platform has them.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")


class _Dialect:
    bold = ("", "")
    italic = ("", "")
    strike = ("", "")
    code = ("", "")
    quote = ("", "")

    def escape(self, text: str) -> str:
        return text

    def pre(self, code: str, language: str) -> str:
        return code

    def link(self, text: str, href: str) -> str:
        return text


class _TelegramHtml(_Dialect):
    bold = ("<b>", "</b>")
    italic = ("<i>", "</i>")
    strike = ("<s>", "</s>")
    code = ("<code>", "</code>")
    quote = ("<blockquote>", "</blockquote>")

    def escape(self, text: str) -> str:
        return html.escape(text, quote=False)

    def pre(self, code: str, language: str) -> str:
        body = html.escape(code.rstrip("\n"), quote=False)
        if language:
            lang = re.sub(r"[^A-Za-z0-9_+-]", "", language)
            return f'<pre><code class="language-{lang}">{body}</code></pre>'
        return f"<pre>{body}</pre>"

    def link(self, text: str, href: str) -> str:
        if not re.match(r"^(https?|tg|mailto):", href, re.I):
            return f"{text} ({self.escape(href)})" if href else text
        return f'<a href="{html.escape(href, quote=True)}">{text}</a>'


class _SlackMrkdwn(_Dialect):
    bold = ("*", "*")
    italic = ("_", "_")
    strike = ("~", "~")
    code = ("`", "`")

    def escape(self, text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def pre(self, code: str, language: str) -> str:
        return "```\n" + self.escape(code.rstrip("\n")) + "\n```"

    def link(self, text: str, href: str) -> str:
        if not href:
            return text
        safe = href.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
        return f"<{safe}|{text}>" if text and text != self.escape(href) else f"<{safe}>"


def _render(text: str, dialect: _Dialect) -> str:
    tokens = _parser().parse(text)
    out: list[str] = []
    lists: list[list[Any]] = []  # [kind, next number]
    quote_depth = 0

    def trim() -> None:
        while out and out[-1].endswith("\n"):
            out[-1] = out[-1].rstrip("\n")
            if not out[-1]:
                out.pop()

    def newline(count: int) -> None:
        trim()
        out.append("\n" * count)

    for token in tokens:
        kind = token.type
        if kind == "paragraph_open":
            continue
        if kind == "paragraph_close":
            newline(1 if lists else 2)
        elif kind == "heading_open":
            out.append(dialect.bold[0])
        elif kind == "heading_close":
            out.append(dialect.bold[1])
            newline(2)
        elif kind in ("bullet_list_open", "ordered_list_open"):
            if lists:
                newline(1)
            start = int(token.attrGet("start") or 1) if kind == "ordered_list_open" else 0
            lists.append(["ordered" if start else "bullet", start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            newline(1 if lists else 2)
        elif kind == "list_item_open":
            indent = "  " * (len(lists) - 1)
            current = lists[-1]
            if current[0] == "ordered":
                marker = f"{current[1]}. "
                current[1] += 1
            else:
                marker = "• "
            out.append(indent + dialect.escape(marker))
        elif kind == "list_item_close":
            newline(1)
        elif kind == "blockquote_open":
            quote_depth += 1
            out.append(dialect.quote[0] if dialect.quote[0] else "\x00QUOTE\x00")
        elif kind == "blockquote_close":
            quote_depth -= 1
            trim()
            out.append(dialect.quote[1] if dialect.quote[1] else "\x00/QUOTE\x00")
            newline(2)
        elif kind in ("fence", "code_block"):
            language = (token.info or "").strip().split(" ")[0] if kind == "fence" else ""
            out.append(dialect.pre(token.content, language))
            newline(2)
        elif kind == "hr":
            out.append("———")
            newline(2)
        elif kind == "inline":
            out.append(_inline(token.children or [], dialect))
        elif kind in ("html_block",):
            out.append(dialect.escape(token.content))
            newline(2)
    result = "".join(out).strip("\n")
    if "\x00QUOTE\x00" in result:
        result = _slack_quotes(result)
    return re.sub(r"\n{3,}", "\n\n", result).strip()


def _slack_quotes(text: str) -> str:
    def quote(match: re.Match[str]) -> str:
        return "\n".join("> " + line for line in match.group(1).strip("\n").split("\n"))

    previous = None
    while previous != text:
        previous = text
        text = re.sub(
            r"\x00QUOTE\x00((?:(?!\x00QUOTE\x00).)*?)\x00/QUOTE\x00", quote, text, flags=re.S
        )
    return text


def _inline(children: list[Any], dialect: _Dialect) -> str:
    out: list[str] = []
    links: list[tuple[int, str]] = []
    for child in children:
        kind = child.type
        if kind == "text":
            out.append(dialect.escape(child.content))
        elif kind == "strong_open":
            out.append(dialect.bold[0])
        elif kind == "strong_close":
            out.append(dialect.bold[1])
        elif kind == "em_open":
            out.append(dialect.italic[0])
        elif kind == "em_close":
            out.append(dialect.italic[1])
        elif kind == "s_open":
            out.append(dialect.strike[0])
        elif kind == "s_close":
            out.append(dialect.strike[1])
        elif kind == "code_inline":
            out.append(dialect.code[0] + dialect.escape(child.content) + dialect.code[1])
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "link_open":
            links.append((len(out), str(child.attrGet("href") or "")))
        elif kind == "link_close" and links:
            start, href = links.pop()
            text = "".join(out[start:])
            del out[start:]
            out.append(dialect.link(text, href))
        elif kind == "image":
            alt = dialect.escape(child.content or "image")
            out.append(dialect.link(alt, str(child.attrGet("src") or "")))
        elif kind in ("html_inline",):
            out.append(dialect.escape(child.content))
        else:
            out.append(dialect.escape(child.content or ""))
    return "".join(out)


def to_telegram_html(text: str) -> str:
    return _render(text, _TelegramHtml())


def to_slack_mrkdwn(text: str) -> str:
    return _render(text, _SlackMrkdwn())


def strip_html(text: str) -> str:
    """The visible text of Telegram HTML (what Telegram counts against its limit)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))
