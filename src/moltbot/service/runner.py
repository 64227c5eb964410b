"""Running the service manager's own commands (systemctl, launchctl, schtasks, loginctl).

The executable is looked up on the ``PATH`` of the environment the runner was
given (the CLI's environment), so what runs is exactly what the user's shell
would run. Failures become :class:`~moltbot.errors.ServiceError` carrying the
command line and the tool's own message; nothing is swallowed.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from moltbot.errors import ServiceError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stderr and stdout joined, stripped: what the tool said."""
        return "\n".join(part.strip() for part in (self.stderr, self.stdout) if part.strip())

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)


class ToolMissing(ServiceError):
    """The service manager's command-line tool is not installed (or not on PATH)."""


class Runner:
    """Runs one tool invocation at a time, with a timeout, capturing its output."""

    def __init__(self, env: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.env = dict(env)
        self.timeout = timeout

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=self.env.get("PATH", ""))

    def run(self, argv: Sequence[str], *, check: bool = True) -> Completed:
        """Run ``argv``. With ``check``, a non-zero exit raises :class:`ServiceError`.

        A missing tool raises :class:`ToolMissing` (also a ServiceError) whatever
        ``check`` says, because there is no result to inspect.
        """
        tool = argv[0]
        path = self.which(tool)
        if path is None:
            raise ToolMissing(
                f"{tool} not found on PATH", hint=f"{tool} is needed to manage the gateway service"
            )
        log.debug("running %s", shlex.join(argv))
        try:
            proc = subprocess.run(
                [path, *argv[1:]],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"`{shlex.join(argv)}` did not finish within {self.timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise ServiceError(f"cannot run `{shlex.join(argv)}`: {exc.strerror}") from None
        done = Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
        if check and not done.ok:
            raise failure(done)
        return done


def failure(done: Completed, what: str | None = None) -> ServiceError:
    said = done.output or "(no output)"
    prefix = f"{what}: " if what else ""
    return ServiceError(f"{prefix}`{done.command_line}` failed (exit {done.returncode}): {said}")
