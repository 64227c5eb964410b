"""What the agent does on a page: snapshot, act by ref, screenshot, navigate.

A snapshot is Playwright's accessibility ("aria") snapshot in AI mode: the
page's accessibility tree as indented text where each element carries a ref
(``button "Save" [ref=e12]``). Actions address elements by those refs; a ref
resolves against the latest snapshot of its frame, so after the page changes
take a new snapshot.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from moltbot.browser.errors import BrowserError, bad_request
from moltbot.validation import BaseModel, ConfigDict, Field, model_validator, to_camel

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

DEFAULT_MAX_CHARS = 80_000
TRUNCATED = "\n\n[...TRUNCATED - page too large]"
REF_LINE = re.compile(
    r'^\s*- (?P<role>[\w-]+)(?: "(?P<name>(?:[^"\\]|\\.)*)")?[^\n]*?\[ref=(?P<ref>(?:f\d+)?e\d+)\]',
    re.M,
)
REF = re.compile(r"^(?:f\d+)?e\d+$")


class Body(BaseModel):
    """Base of request bodies: camelCase keys, unknown keys refused, ``profile`` allowed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)
    profile: str | None = None


class FillField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str
    value: str


class Act(Body):
    kind: Literal["click", "type", "press", "fill", "select", "hover", "wait", "scrollIntoView"]
    target_id: str | None = None
    ref: str | None = None
    text: str | None = None
    submit: bool = False
    slowly: bool = False
    key: str | None = None
    delay_ms: int | None = Field(default=None, ge=0, le=5_000)
    value: str | None = None
    values: list[str] | None = None
    fields: list[FillField] | None = None
    double_click: bool = False
    button: Literal["left", "right", "middle"] | None = None
    modifiers: list[Literal["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]] | None = None
    time_ms: int | None = Field(default=None, ge=0, le=120_000)
    selector: str | None = None
    text_gone: str | None = None
    url: str | None = None
    load_state: Literal["load", "domcontentloaded", "networkidle"] | None = None
    timeout_ms: int | None = Field(default=None, ge=500, le=120_000)

    @model_validator(mode="after")
    def _needs(self) -> Act:
        needs_ref = {"click", "type", "select", "hover", "scrollIntoView"}
        if self.kind in needs_ref and not self.ref:
            raise ValueError(f"act kind={self.kind} needs ref (from a snapshot)")
        if self.kind == "type" and self.text is None:
            raise ValueError("act kind=type needs text")
        if self.kind == "press" and not self.key:
            raise ValueError("act kind=press needs key (e.g. Enter)")
        if self.kind == "fill" and not (self.fields or (self.ref and self.value is not None)):
            raise ValueError("act kind=fill needs fields [{ref, value}] or ref + value")
        if self.kind == "select" and not (self.values or self.value):
            raise ValueError("act kind=select needs values")
        if self.selector and self.kind != "wait":
            raise ValueError(
                "selector is only for kind=wait; address elements by ref from a "
                "snapshot (e.g. ref=e12)"
            )
        for ref in [self.ref, *(f.ref for f in self.fields or [])]:
            if ref is not None and not REF.match(ref):
                raise ValueError(f"invalid ref {ref!r}: refs look like e12 (from a snapshot)")
        return self


def parse_refs(text: str) -> dict[str, dict[str, str]]:
    """``{"e3": {"role": "button", "name": "Press"}, ...}`` from an AI snapshot."""
    refs: dict[str, dict[str, str]] = {}
    for match in REF_LINE.finditer(text):
        entry = {"role": match["role"]}
        if match["name"] is not None:
            entry["name"] = match["name"].replace('\\"', '"')
        refs[match["ref"]] = entry
    return refs


async def snapshot(
    page: Page,
    *,
    max_chars: int | None = DEFAULT_MAX_CHARS,
    depth: int | None = None,
    timeout_ms: int = 10_000,
) -> dict[str, Any]:
    try:
        text = await page.aria_snapshot(mode="ai", depth=depth, timeout=timeout_ms)
    except Exception as exc:
        raise _wrap(exc, "snapshot") from None
    refs = parse_refs(text)
    out: dict[str, Any] = {"format": "ai", "url": page.url, "title": await _title(page)}
    truncated = bool(max_chars) and len(text) > (max_chars or 0)
    if truncated:
        text = text[:max_chars] + TRUNCATED
    out.update(
        snapshot=text,
        refs=refs,
        truncated=truncated,
        stats={"lines": text.count("\n") + 1, "chars": len(text), "refs": len(refs)},
    )
    return out


async def _title(page: Page) -> str:
    try:
        return await page.title()
    except Exception:
        return ""


def _locator(page: Page, ref: str) -> Locator:
    return page.get_by_ref(ref)


async def act(page: Page, body: Act) -> dict[str, Any]:
    timeout = body.timeout_ms or (20_000 if body.kind == "wait" else 8_000)
    try:
        result = await _act(page, body, timeout)
    except BrowserError:
        raise
    except Exception as exc:
        raise _wrap(exc, f"{body.kind}" + (f" {body.ref}" if body.ref else "")) from None
    out: dict[str, Any] = {"ok": True, "kind": body.kind, "url": page.url}
    if result is not None:
        out["result"] = result
    return out


async def _act(page: Page, body: Act, timeout: int) -> Any:
    kind = body.kind
    if kind == "click":
        target = _locator(page, body.ref or "")
        options: dict[str, Any] = {"timeout": timeout}
        if body.button:
            options["button"] = body.button
        if body.modifiers:
            options["modifiers"] = body.modifiers
        if body.double_click:
            await target.dblclick(**options)
        else:
            await target.click(**options)
    elif kind == "type":
        target = _locator(page, body.ref or "")
        if body.slowly:
            await target.click(timeout=timeout)
            await target.press_sequentially(body.text or "", delay=75, timeout=timeout)
        else:
            await target.fill(body.text or "", timeout=timeout)
        if body.submit:
            await target.press("Enter", timeout=timeout)
    elif kind == "press":
        await page.keyboard.press(body.key or "", delay=body.delay_ms or 0)
    elif kind == "hover":
        await _locator(page, body.ref or "").hover(timeout=timeout)
    elif kind == "scrollIntoView":
        await _locator(page, body.ref or "").scroll_into_view_if_needed(timeout=timeout)
    elif kind == "fill":
        fields = body.fields or [FillField(ref=body.ref or "", value=body.value or "")]
        for field in fields:
            await _locator(page, field.ref).fill(field.value, timeout=timeout)
    elif kind == "select":
        values = body.values or [body.value or ""]
        return await _locator(page, body.ref or "").select_option(values, timeout=timeout)
    elif kind == "wait":
        await _wait(page, body, timeout)
    return None


async def _wait(page: Page, body: Act, timeout: int) -> None:
    did = False
    if body.time_ms:
        await page.wait_for_timeout(body.time_ms)
        did = True
    if body.text:
        await page.get_by_text(body.text).first.wait_for(state="visible", timeout=timeout)
        did = True
    if body.text_gone:
        await page.get_by_text(body.text_gone).first.wait_for(state="hidden", timeout=timeout)
        did = True
    if body.selector:
        await page.locator(body.selector).first.wait_for(state="visible", timeout=timeout)
        did = True
    if body.ref:
        await _locator(page, body.ref).wait_for(state="visible", timeout=timeout)
        did = True
    if body.url:
        await page.wait_for_url(body.url, timeout=timeout)
        did = True
    if body.load_state:
        await page.wait_for_load_state(body.load_state, timeout=timeout)
        did = True
    if not did:
        raise bad_request(
            "act kind=wait needs one of timeMs, text, textGone, selector, ref, url, loadState"
        )


async def screenshot(
    page: Page,
    *,
    full_page: bool = False,
    ref: str | None = None,
    image_type: Literal["png", "jpeg"] = "png",
) -> bytes:
    if full_page and ref:
        raise bad_request("fullPage cannot be combined with ref")
    try:
        if ref:
            return await _locator(page, ref).screenshot(type=image_type, timeout=10_000)
        return await page.screenshot(full_page=full_page, type=image_type, timeout=20_000)
    except Exception as exc:
        raise _wrap(exc, "screenshot") from None


def check_url(url: str) -> str:
    """Only web pages (and about:blank): no file://, chrome://, javascript: URLs."""
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://")) or lowered == "about:blank":
        return url.strip()
    if "://" not in lowered and not lowered.startswith(("about:", "javascript:", "data:")):
        return "https://" + url.strip()
    raise bad_request(f"refusing to open {url!r}: only http(s) URLs and about:blank are allowed")


async def navigate(page: Page, url: str, timeout_ms: int = 20_000) -> dict[str, Any]:
    try:
        response = await page.goto(check_url(url), timeout=timeout_ms, wait_until="load")
    except Exception as exc:
        raise _wrap(exc, f"navigate to {url}") from None
    return {
        "ok": True,
        "url": page.url,
        "title": await _title(page),
        "status": response.status if response is not None else None,
    }


def _wrap(exc: Exception, what: str) -> BrowserError:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    hint = None
    lowered = text.lower()
    if "aria-ref" in lowered or "ref=" in lowered or "strict mode violation" in lowered:
        hint = "refs change when the page changes: take a new snapshot and use its refs"
    elif "not visible" in lowered or "intercepts pointer events" in lowered:
        hint = "the element is covered or hidden: take a new snapshot, scroll or close overlays"
    status = 504 if type(exc).__name__ == "TimeoutError" else 500
    if status == 504 and hint is None:
        hint = "the element may not exist any more: take a new snapshot"
    return BrowserError(f"{what} failed: {first}", status=status, hint=hint)
