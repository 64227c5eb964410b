"""The one exception tree of moltbot.

Every error a user can cause or meet derives from :class:`MoltbotError`. The
subclass says what the caller does about it, and ``exit_code`` is the process
exit status the CLI uses when the error reaches it:

- :class:`UsageError` (2): bad flags or arguments; fix the command line.
- :class:`ConfigError` (78, ``EX_CONFIG``): the config file is unreadable or
  invalid; fix the file. Services never restart on this code.
- :class:`ConflictError` (3): the instance clashes with another instance or with
  a concurrent writer (ports, paths, compare-and-swap); choose other values or retry.
- :class:`AlreadyRunningError` (4): a gateway already owns this state dir.
- :class:`PortInUseError` (5): a port of this instance is held by another process.
- :class:`GatewayUnreachableError` (6): no gateway answered at the target URL.
- :class:`AuthError` (7): the gateway refused the credentials.
- :class:`ServiceError` (8): the OS service manager failed or is missing.
- :class:`NotFoundError` (9): the named thing (key, session, profile) does not exist.
- :class:`RetryLaterError` (10): the gateway cannot take this now (it is restarting);
  nothing was recorded, send it again in ``retry_after`` seconds.
"""

from __future__ import annotations


class MoltbotError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(MoltbotError):
    exit_code = 2


class ConfigError(MoltbotError):
    exit_code = 78


class ConflictError(MoltbotError):
    exit_code = 3


class AlreadyRunningError(MoltbotError):
    exit_code = 4


class PortInUseError(MoltbotError):
    exit_code = 5


class GatewayUnreachableError(MoltbotError):
    exit_code = 6


class AuthError(MoltbotError):
    exit_code = 7


class ServiceError(MoltbotError):
    exit_code = 8


class NotFoundError(MoltbotError):
    exit_code = 9


class RetryLaterError(MoltbotError):
    exit_code = 10

    def __init__(self, message: str, *, retry_after: float = 2.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
