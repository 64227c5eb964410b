"""``web_fetch``: fetch a URL and return its readable text.

Private, loopback, link-local and other non-public targets are refused by the
shared guard (:mod:`.netguard`: ``tools.web.allowPrivateNetwork``,
``tools.web.allowHosts``, or the older web_fetch-only ``tools.web.fetch.allowPrivate``
/ ``allowHosts``). The check runs where the connection is made (a resolver that
drops such addresses, so DNS rebinding cannot sneak past it) and again for every
redirect hop. Bodies are capped at ``maxBytes``; the text at ``maxChars``.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.netguard import NetPolicy, blocked_address, check_literal
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.config.schema import Config

MAX_REDIRECTS = 5
USER_AGENT = "moltbot-web-fetch/1 (+https://github.com/moltbot)"


class _GuardedResolver:
    """An aiohttp resolver that refuses hosts resolving to non-public addresses."""

    def __init__(self) -> None:
        from aiohttp.resolver import DefaultResolver

        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Any]:
        results = await self._inner.resolve(host, port, family)
        bad = [r["host"] for r in results if blocked_address(r["host"])]
        if bad:
            raise OSError(
                f"{host} resolves to a private or local address ({bad[0]}); "
                "refused (tools.web.allowPrivateNetwork, tools.web.allowHosts)"
            )
        return results

    async def close(self) -> None:
        await self._inner.close()


class WebFetchParams(ToolParams):
    url: str = Field(description="http(s) URL to fetch.")
    maxChars: int | None = Field(default=None, ge=100, description="Cap on returned text.")
    extractMode: str = Field(default="text", description='"text" (readable text) or "raw".')


class WebFetchTool(Tool):
    name = "web_fetch"
    description = "Fetch a web page (http/https) and return its readable text."
    Params = WebFetchParams

    def enabled(self, config: Config) -> bool:
        return config.tools.web.fetch.enabled

    async def run(self, ctx: ToolContext, params: WebFetchParams) -> dict[str, Any]:
        return await fetch(
            params.url,
            ctx.config,
            max_chars=params.maxChars,
            raw=params.extractMode == "raw",
        )


async def fetch(
    url: str, config: Config, *, max_chars: int | None = None, raw: bool = False
) -> dict[str, Any]:
    import aiohttp

    policy = config.tools.web.fetch
    timeout = aiohttp.ClientTimeout(total=policy.timeout_seconds)
    current = url
    guard = NetPolicy.for_fetch(config)
    for _hop in range(MAX_REDIRECTS + 1):
        _host, trusted = check_literal(current, guard)
        connector = aiohttp.TCPConnector(
            resolver=None if trusted else _GuardedResolver(),  # type: ignore[arg-type]
            force_close=True,
        )
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
            ) as session:
                async with session.get(current, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and response.headers.get(
                        "Location"
                    ):
                        current = urljoin(current, response.headers["Location"])
                        continue
                    body, truncated = await _read_capped(response, policy.max_bytes)
                    return _render(
                        url, current, response, body, truncated, max_chars or policy.max_chars, raw
                    )
        except ToolError:
            raise
        except aiohttp.ClientConnectorError as exc:
            raise ToolError(f"{current}: cannot connect ({exc.os_error or exc})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ToolError(f"{current}: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise ToolError(f"{current}: no answer within {policy.timeout_seconds:g}s") from None
    raise ToolError(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _read_capped(response: Any, limit: int) -> tuple[bytes, bool]:
    data = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


def _render(
    url: str, final: str, response: Any, body: bytes, truncated: bool, max_chars: int, raw: bool
) -> dict[str, Any]:
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    textual = (
        ctype.startswith("text/")
        or ctype in ("", "application/json", "application/xml", "application/xhtml+xml")
        or ctype.endswith(("+json", "+xml"))
    )
    if not textual:
        raise ToolError(f"{final}: {ctype} is not text ({len(body)} bytes)")
    charset = response.charset or "utf-8"
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    title = None
    looks_html = text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
    if not raw and ("html" in ctype or looks_html):
        from moltbot.agents.tools.html_text import html_to_text  # with the first page

        title, text = html_to_text(text)
    if len(text) > max_chars:
        text, truncated = text[:max_chars], True
    out: dict[str, Any] = {"url": url, "status": response.status, "contentType": ctype}
    if final != url:
        out["finalUrl"] = final
    if title:
        out["title"] = title
    out["text"] = text
    out["truncated"] = truncated
    return out
