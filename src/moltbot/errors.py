"""The one exception tree of moltbot.

Every error a user can cause or meet derives from :class:`MoltbotError`. The
subclass says what the caller does about it and carries the two codes that tell
the outside world: ``exit_code``, the process exit status the CLI uses when the
error reaches it, and ``protocol_code``, the ``code`` of the gateway's error frame
when a WebSocket request fails with it (see :meth:`MoltbotError.error_shape`).

=========================  ====  ===============  ====================================
class                      exit  protocol code    what the caller does
=========================  ====  ===============  ====================================
:class:`MoltbotError`      1     UNAVAILABLE      nothing it can fix: report it
:class:`UsageError`        2     INVALID_REQUEST  fix the flags, arguments or params
:class:`ConfigError`       78    INVALID_REQUEST  fix the config file (``EX_CONFIG``;
                                                  services never restart on it)
:class:`ConflictError`     3     INVALID_REQUEST  choose other ports/paths, or reload
                                                  and retry (compare-and-swap)
:class:`AlreadyRunningError` 4   UNAVAILABLE      a gateway already owns this state dir
:class:`PortInUseError`    5     UNAVAILABLE      free the port or choose another
:class:`GatewayUnreachableError` 6 UNAVAILABLE    start the gateway (or wait for it)
:class:`AuthError`         7     INVALID_REQUEST  present other credentials (upstream
                                                  answers refused auth this way)
:class:`PairingRequired`   7     NOT_PAIRED       approve the device, then reconnect
:class:`ServiceError`      8     UNAVAILABLE      the OS service manager failed
:class:`NotFoundError`     9     INVALID_REQUEST  name something that exists
:class:`RetryLaterError`   10    UNAVAILABLE      send it again (``retryable``); nothing
                                                  was recorded
:class:`MethodError`       1     as given         an error frame: ``code`` is the
                                                  gateway's, not a class's
=========================  ====  ===============  ====================================

Areas subclass these where they call a library (``ChannelError``,
``BrowserError``, ``ProviderError``, ``ToolError``, ``ApiError``, ...) and inherit
or override both codes; nothing else in moltbot raises an exception of its own
outside this tree. The gateway turns any of them into an error frame in one place
(``moltbot.gateway.server``); the protocol client turns error frames back into
:class:`MethodError`, :class:`AuthError` or :class:`PairingRequired`.

An error may carry ``details`` (sent as the frame's ``details``) and
``retry_after`` seconds (sent as ``retryAfterMs``, which makes it ``retryable``).
``hint`` is for people (printed by the CLI as ``hint: ...``) and never sent.
"""

from __future__ import annotations

import math
from typing import Any

# The protocol's error codes (upstream's ``error-codes.ts``).
INVALID_REQUEST = "INVALID_REQUEST"
UNAVAILABLE = "UNAVAILABLE"
NOT_PAIRED = "NOT_PAIRED"
NOT_LINKED = "NOT_LINKED"
AGENT_TIMEOUT = "AGENT_TIMEOUT"


class MoltbotError(Exception):
    exit_code = 1
    protocol_code = UNAVAILABLE
    retryable: bool | None = None
    """Sent as ``retryable`` when not ``None`` (an error with ``retry_after`` is retryable)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable

    def error_shape(self) -> dict[str, Any]:
        """The protocol's ``{code, message, details?, retryable?, retryAfterMs?}``."""
        shape: dict[str, Any] = {"code": self.protocol_code, "message": self.message}
        if self.details is not None:
            shape["details"] = self.details
        retryable = self.retryable
        if retryable is None and self.retry_after is not None:
            retryable = True
        if retryable is not None:
            shape["retryable"] = retryable
        if self.retry_after_ms is not None:
            shape["retryAfterMs"] = self.retry_after_ms
        return shape

    @property
    def retry_after_ms(self) -> int | None:
        """``retry_after`` in whole milliseconds, rounded up (never too early)."""
        if self.retry_after is None:
            return None
        return max(0, math.ceil(self.retry_after * 1000))


class UsageError(MoltbotError):
    exit_code = 2
    protocol_code = INVALID_REQUEST


class ConfigError(MoltbotError):
    exit_code = 78
    protocol_code = INVALID_REQUEST


class ConflictError(MoltbotError):
    exit_code = 3
    protocol_code = INVALID_REQUEST


class AlreadyRunningError(MoltbotError):
    exit_code = 4


class PortInUseError(MoltbotError):
    exit_code = 5


class GatewayUnreachableError(MoltbotError):
    exit_code = 6


class AuthError(MoltbotError):
    exit_code = 7
    protocol_code = INVALID_REQUEST


class PairingRequired(AuthError):
    """This device is not paired (or sent no identity): approve it, then reconnect."""

    protocol_code = NOT_PAIRED


class ServiceError(MoltbotError):
    exit_code = 8


class NotFoundError(MoltbotError):
    exit_code = 9
    protocol_code = INVALID_REQUEST


class RetryLaterError(MoltbotError):
    """The gateway cannot take this now (it is restarting, or the client is behind);
    nothing was recorded: send it again, after ``retry_after`` seconds when given."""

    exit_code = 10
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = 2.0, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint, retry_after=retry_after)


class MethodError(MoltbotError):
    """An error frame as the gateway sends it: ``code``, ``message``, ``details``,
    ``retryable``, ``retry_after_ms``.

    The protocol client raises it when a request is answered with an error (``method``
    names the request; the CLI shows ``<method> failed: <code>: <message>``). The
    gateway raises it only to answer with a shape it already has: an idempotent replay
    of a recorded error, a run's outcome, a route's status.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Any = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        method: str | None = None,
    ) -> None:
        retry_after = retry_after_ms / 1000 if retry_after_ms is not None else None
        super().__init__(message, details=details, retry_after=retry_after, retryable=retryable)
        self._retry_after_ms = retry_after_ms
        self.protocol_code = code
        self.method = method
        if method is not None:
            self.message = f"{method} failed: {code}: {message}"
        self.reason = message
        """The gateway's own message (``message`` adds the method and code for people)."""

    @property
    def code(self) -> str:
        return self.protocol_code

    @property
    def retry_after_ms(self) -> int | None:
        return self._retry_after_ms

    @classmethod
    def from_shape(cls, shape: Any, *, method: str | None = None) -> MethodError:
        """From an error frame's ``error`` (or a recorded one); tolerant of missing keys."""
        shape = shape if isinstance(shape, dict) else {}
        retry_after_ms = shape.get("retryAfterMs")
        retryable = shape.get("retryable")
        return cls(
            str(shape.get("code") or UNAVAILABLE),
            str(shape.get("message") or "failed"),
            details=shape.get("details"),
            retryable=retryable if isinstance(retryable, bool) else None,
            retry_after_ms=retry_after_ms
            if isinstance(retry_after_ms, int) and not isinstance(retry_after_ms, bool)
            else None,
            method=method,
        )

    def error_shape(self) -> dict[str, Any]:
        shape = super().error_shape()
        shape["message"] = self.reason
        return shape
