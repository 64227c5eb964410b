"""The one error tree: every class carries its exit code and its protocol code, and no
exception class of moltbot lives outside the tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import moltbot
from moltbot import errors
from moltbot.errors import (
    AGENT_TIMEOUT,
    INVALID_REQUEST,
    NOT_PAIRED,
    UNAVAILABLE,
    AlreadyRunningError,
    AuthError,
    ConfigError,
    ConflictError,
    GatewayUnreachableError,
    MethodError,
    MoltbotError,
    NotFoundError,
    PairingRequired,
    PortInUseError,
    RetryLaterError,
    ServiceError,
    UsageError,
)

# Private control flow that never leaves its module (not an error anyone meets).
PRIVATE_OK = {
    "moltbot.config.edit._CannotPatch",
    "moltbot.gateway.http.api._Refused",
    "moltbot.sessions.store._NotRegular",
    "moltbot.automation.files.NotRegularFile",  # an OSError: callers treat it as I/O
    # OSErrors of the blocking WebSocket transport, wrapped by the sync client as a
    # socket's errors are
    "moltbot.gateway.blocking_ws.ConnectionClosed",
    "moltbot.gateway.blocking_ws.HandshakeError",
    "moltbot.gateway.blocking_ws.ProtocolError",
    # a ValueError, as callers of model_validate expect; they turn it into their own error
    "moltbot.validation.errors.ValidationError",
    "moltbot.validation.errors.Invalid",  # internal, never escapes the package
}


@pytest.mark.parametrize(
    ("cls", "exit_code", "code"),
    [
        (MoltbotError, 1, UNAVAILABLE),
        (UsageError, 2, INVALID_REQUEST),
        (ConflictError, 3, INVALID_REQUEST),
        (AlreadyRunningError, 4, UNAVAILABLE),
        (PortInUseError, 5, UNAVAILABLE),
        (GatewayUnreachableError, 6, UNAVAILABLE),
        (AuthError, 7, INVALID_REQUEST),
        (PairingRequired, 7, NOT_PAIRED),
        (ServiceError, 8, UNAVAILABLE),
        (NotFoundError, 9, INVALID_REQUEST),
        (RetryLaterError, 10, UNAVAILABLE),
        (ConfigError, 78, INVALID_REQUEST),
    ],
)
def test_each_class_carries_both_codes(cls: type[MoltbotError], exit_code: int, code: str) -> None:
    error = cls("boom")
    assert error.exit_code == exit_code
    assert error.error_shape() == {"code": code, "message": "boom"} | (
        {"retryable": True, "retryAfterMs": 2000} if cls is RetryLaterError else {}
    )


def test_shape_carries_details_and_retry_but_never_the_hint() -> None:
    shape = AuthError(
        "unauthorized: too many attempts", hint="wait", details={"n": 1}, retry_after=1.0001
    ).error_shape()
    assert shape == {
        "code": INVALID_REQUEST,
        "message": "unauthorized: too many attempts",
        "details": {"n": 1},
        "retryable": True,
        "retryAfterMs": 1001,  # rounded up: never invite a retry too early
    }
    assert RetryLaterError("behind", retry_after=None).error_shape() == {
        "code": UNAVAILABLE,
        "message": "behind",
        "retryable": True,
    }
    assert MoltbotError("cannot encode", retryable=False).error_shape()["retryable"] is False


def test_method_error_round_trips_a_frame() -> None:
    frame = {
        "code": AGENT_TIMEOUT,
        "message": "timed out after 1s",
        "details": {"runId": "r1"},
        "retryable": False,
        "retryAfterMs": 1003,
    }
    error = MethodError.from_shape(frame, method="agent")
    assert error.error_shape() == frame
    assert error.code == AGENT_TIMEOUT and error.reason == "timed out after 1s"
    assert error.message == "agent failed: AGENT_TIMEOUT: timed out after 1s"
    assert error.exit_code == 1
    # a recorded shape with keys missing or of the wrong type is still an error
    assert MethodError.from_shape(None).error_shape() == {"code": UNAVAILABLE, "message": "failed"}
    odd = MethodError.from_shape({"code": "X", "retryAfterMs": True, "retryable": "yes"})
    assert odd.error_shape() == {"code": "X", "message": "failed"}


def test_area_errors_choose_their_codes() -> None:
    from moltbot.agents.model_call import AllModelsFailed, NotConfigured
    from moltbot.agents.run import AgentRunError, UnknownAgent
    from moltbot.browser.errors import BrowserError
    from moltbot.channels.errors import (
        ChannelAuthFailed,
        ChannelNotReady,
        TargetError,
        UnknownChannel,
    )
    from moltbot.config.store import InvalidConfig, StaleWriteError
    from moltbot.devices.identity import DeviceError
    from moltbot.safepath import PathRefused

    def code(error: MoltbotError) -> str:
        return str(error.error_shape()["code"])

    assert code(UnknownAgent("unknown agent 'x'")) == INVALID_REQUEST
    assert code(AgentRunError("the agent runtime is not running")) == UNAVAILABLE
    assert code(AllModelsFailed("every model failed", ["server"])) == UNAVAILABLE
    assert isinstance(NotConfigured("set a model"), ConfigError)
    assert code(DeviceError("device signature invalid")) == INVALID_REQUEST
    assert DeviceError("x").exit_code == 7
    assert code(PathRefused("a/b: is a symlink; refused")) == INVALID_REQUEST
    assert code(BrowserError("no such tab", status=404)) == INVALID_REQUEST
    assert code(BrowserError("chrome unreachable", status=503)) == UNAVAILABLE
    not_ready = ChannelNotReady("telegram rate limit", retry_after=3.0).error_shape()
    assert not_ready == {
        "code": UNAVAILABLE,
        "message": "telegram rate limit",
        "retryable": True,
        "retryAfterMs": 3000,
    }
    assert ChannelNotReady("down").error_shape()["retryable"] is True
    assert (ChannelAuthFailed("bad token").exit_code, code(ChannelAuthFailed("x"))) == (
        7,
        INVALID_REQUEST,
    )
    assert (TargetError("chat not found").exit_code, code(TargetError("x"))) == (9, INVALID_REQUEST)
    assert UnknownChannel("no channel").exit_code == 2
    # the config methods answer in upstream's words
    invalid = InvalidConfig("invalid config at x:\n  - gateway.port: expected an integer")
    assert invalid.error_shape() == {
        "code": INVALID_REQUEST,
        "message": "invalid config",
        "details": {"issues": invalid.message},
    }
    assert invalid.exit_code == 78
    stale = StaleWriteError("x changed since it was read; reload and retry")
    assert stale.error_shape() == {
        "code": INVALID_REQUEST,
        "message": "config changed since last load; x changed since it was read; reload and retry",
    }
    assert stale.exit_code == 3 and stale.message.startswith("x changed")


def _moltbot_modules() -> list[str]:
    names = [moltbot.__name__]
    for info in pkgutil.walk_packages(moltbot.__path__, prefix="moltbot."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_no_exception_class_lives_outside_the_tree() -> None:
    outside = []
    for name in _moltbot_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                qualified = f"{name}.{attr}"
                if not issubclass(value, MoltbotError) and qualified not in PRIVATE_OK:
                    outside.append(qualified)
    assert outside == []


def test_the_tree_is_documented_in_its_module() -> None:
    for cls in (
        UsageError,
        ConfigError,
        ConflictError,
        AlreadyRunningError,
        PortInUseError,
        GatewayUnreachableError,
        AuthError,
        PairingRequired,
        ServiceError,
        NotFoundError,
        RetryLaterError,
        MethodError,
    ):
        assert f":class:`{cls.__name__}`" in (errors.__doc__ or "")
