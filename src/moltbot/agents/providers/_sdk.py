"""What the providers built on a vendor SDK share (``openai``, ``anthropic``: both
generated from the same template, with the same client options and error classes).

Each configured provider holds one SDK client, without the SDK's own retries
(each request sets its own). :func:`stream_error` turns whatever the SDK or the
stream raised into a :class:`ProviderError`, telling the provider's failures
(an HTTP status, a broken or unreadable stream, its network) from our own
(a closed client, a bug: ``internal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from moltbot.agents.providers.base import ProviderError, is_context_overflow, kind_for_status


class SdkProvider:
    def __init__(
        self,
        provider_id: str,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider_id = provider_id
        self.closed = False
        # Local servers (Ollama, vLLM) take any key; the SDKs insist on one.
        self._client = self._make_client(
            api_key=api_key or "not-needed",
            base_url=base_url,
            default_headers=dict(headers or {}),
            max_retries=0,
        )

    def _make_client(self, **options: Any) -> Any:
        """The SDK's async client, built with ``options`` (imports the SDK)."""
        raise NotImplementedError

    def check_open(self) -> None:
        """Raise an ``internal`` :class:`ProviderError` once :meth:`close` was called."""
        if self.closed:
            raise ProviderError("internal", f"provider {self.provider_id}: the client was closed")

    async def close(self) -> None:
        self.closed = True
        await self._client.close()

    async def list_models(self, timeout: float) -> list[str]:
        """The model ids the provider's ``/models`` endpoint names (``models.list``)."""
        self.check_open()
        listing = self._client.models.list(timeout=timeout)
        return [str(item.id) async for item in listing if getattr(item, "id", None)][:500]


def stream_error(
    exc: Exception, sdk: ModuleType, *, timeout: float, received: bool, closed: bool = False
) -> ProviderError:
    """The :class:`ProviderError` for ``exc``, raised by ``sdk`` or while reading its
    stream; ``received`` says whether any event had arrived (a cut stream is malformed),
    ``closed`` whether our client had been closed meanwhile (then it is ours)."""
    if closed:
        return ProviderError("internal", f"the client was closed during the request: {_cause(exc)}")
    if isinstance(exc, sdk.APIStatusError):
        message = _message(exc)
        overflow = is_context_overflow(exc.status_code, f"{message} {_code(exc)}")
        return ProviderError(
            "context_overflow" if overflow else kind_for_status(exc.status_code),
            message,
            status=exc.status_code,
            retry_after=_retry_after(exc.response.headers),
        )
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError("timeout", f"no answer within {timeout:g}s")
    if isinstance(exc, sdk.APIConnectionError):
        # The SDK wraps *every* exception of the send in this class, ours included.
        if _network_cause(exc) is None:
            return ProviderError("internal", f"request failed on our side: {_cause(exc)}")
        return ProviderError("malformed" if received else "connection", _cause(exc))
    if isinstance(exc, sdk.APIError):  # an error event inside the stream
        return ProviderError("server", _message(exc))
    if isinstance(exc, ValueError):  # the SDK could not decode an event (bad JSON)
        return ProviderError("malformed", f"unreadable stream: {exc}")
    if _is_timeout(exc):  # transport errors raised while iterating the body
        return ProviderError("timeout", f"no data for {timeout:g}s")
    if _network_cause(exc) is not None:
        return ProviderError("malformed", f"stream broke: {_cause(exc)}")
    return ProviderError("internal", f"{type(exc).__name__}: {_cause(exc)}")


def _network_cause(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that comes from the network, if any."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (httpx.TransportError, OSError, EOFError)):
            return seen
        if type(seen).__module__.partition(".")[0] in _NETWORK_MODULES:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_NETWORK_MODULES = frozenset({"httpcore", "h11", "h2", "ssl", "anyio"})


def _code(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
    return str(getattr(exc, "message", None) or exc)[:500]


def _cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen) or type(seen).__name__
    return text if seen is exc else f"{exc}: {text}"


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after")
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
