"""Errors of the browser control service, each carrying the HTTP status it answers with.

:class:`BrowserError` derives from :class:`moltbot.errors.MoltbotError`, so a CLI
that meets one prints the message and hint like any other error. The status
follows upstream's route table: 400 bad input, 404 unknown profile/tab/ref,
409 conflict (port clash, profile locked, browser not running), 501 Playwright
missing, 503 Chrome unreachable, 507 no free CDP port, 500 anything else.
"""

from __future__ import annotations

from moltbot.errors import INVALID_REQUEST, UNAVAILABLE, MoltbotError


class BrowserError(MoltbotError):
    """Answered with HTTP ``status``; over the gateway protocol a 4xx is
    ``INVALID_REQUEST`` and a 5xx ``UNAVAILABLE``."""

    def __init__(self, message: str, *, status: int = 500, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.protocol_code = INVALID_REQUEST if status < 500 else UNAVAILABLE

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"error": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


def bad_request(message: str, hint: str | None = None) -> BrowserError:
    return BrowserError(message, status=400, hint=hint)


def not_found(message: str, hint: str | None = None) -> BrowserError:
    return BrowserError(message, status=404, hint=hint)


def conflict(message: str, hint: str | None = None) -> BrowserError:
    return BrowserError(message, status=409, hint=hint)


def unavailable(message: str, hint: str | None = None) -> BrowserError:
    return BrowserError(message, status=503, hint=hint)
