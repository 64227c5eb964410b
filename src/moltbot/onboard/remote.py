"""The onboarding wizard driven step by step by a remote client (``wizard.*``).

:class:`WizardSession` runs the same :func:`~moltbot.onboard.wizard.interview` as
``moltbot onboard`` — the same questions, defaults and checks — in a worker
thread whose :class:`Prompter` turns each question into a *step* (upstream's
``WizardStep``: ``note``, ``text``, ``select``, ``confirm``) and waits for its
answer. Then the plan is checked and applied like ``onboard`` does, except that
installing the OS service is left to ``moltbot gateway install`` (a gateway does
not install itself).

A step is answered with ``{stepId, value}``; a ``note`` with any answer (or none).
A missing value takes the step's ``initialValue``; a text that fails its check
is asked again with the reason. ``cancel`` ends the session (nothing written if
it had not reached the apply). A session nobody answers for
:data:`IDLE_TIMEOUT_S` is cancelled.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import MoltbotError, UsageError
from moltbot.onboard.wizard import Validator, WizardAborted

if TYPE_CHECKING:
    from moltbot.instance.resolve import Identity

Status = Literal["running", "done", "cancelled", "error"]
IDLE_TIMEOUT_S = 30 * 60.0
_CANCEL = object()

__all__ = ["WizardSession"]


@dataclass
class _State:
    status: Status = "running"
    error: str | None = None
    result: dict[str, Any] | None = None


class _StepPrompter:
    """A :class:`~moltbot.onboard.wizard.Prompter` that hands each question out as a step."""

    def __init__(self, session: WizardSession) -> None:
        self.session = session

    def _ask(self, step: dict[str, Any]) -> Any:
        step = {"id": str(uuid.uuid4()), **{k: v for k, v in step.items() if v is not None}}
        return self.session._exchange(step)

    def say(self, text: str) -> None:
        self._ask({"type": "note", "message": text})

    def text(self, message: str, default: str = "", validate: Validator | None = None) -> str:
        return self._text(message, default, validate, sensitive=False)

    def password(self, message: str, validate: Validator | None = None) -> str:
        return self._text(message, "", validate, sensitive=True)

    def _text(
        self, message: str, default: str, validate: Validator | None, *, sensitive: bool
    ) -> str:
        shown = message
        while True:
            value = self._ask(
                {
                    "type": "text",
                    "message": shown,
                    "initialValue": default if not sensitive else None,
                    "sensitive": sensitive or None,
                }
            )
            text = default if value is None else str(value)
            verdict = validate(text) if validate else True
            if verdict is True:
                return text
            shown = f"{message}\n({verdict if isinstance(verdict, str) else 'not valid'})"

    def select(self, message: str, choices: list[str], default: str) -> str:
        options = [{"value": c, "label": c} for c in choices]
        while True:
            value = self._ask(
                {"type": "select", "message": message, "options": options, "initialValue": default}
            )
            value = default if value is None else value
            if value in choices:
                return str(value)
            message = f"{message}\n(choose one of: {', '.join(choices)})"

    def confirm(self, message: str, default: bool) -> bool:
        value = self._ask({"type": "confirm", "message": message, "initialValue": default})
        return default if value is None else bool(value)


@dataclass
class WizardSession:
    """One remote onboarding run (see the module docstring)."""

    identity: Identity
    env: Mapping[str, str]
    workspace: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: _State = field(default_factory=_State)
    _steps: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    _answers: queue.Queue[Any] = field(default_factory=queue.Queue)
    _current: dict[str, Any] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"wizard-{self.id[:8]}", daemon=True)
        self._thread.start()

    # the worker thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            self.state.result = self._onboard()
            self.state.status = "done"
        except WizardAborted:
            self.state.status = "cancelled"
        except MoltbotError as exc:
            self.state.status, self.state.error = "error", exc.message
        except Exception as exc:  # noqa: BLE001 - reported to the client, not raised in a thread
            self.state.status, self.state.error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            self._steps.put(None)

    def _onboard(self) -> dict[str, Any]:
        from pathlib import Path

        from moltbot.onboard.apply import apply
        from moltbot.onboard.plan import Flags, check_plan, plan_from_flags, propose
        from moltbot.onboard.wizard import interview

        proposal = propose(self.identity, self.env)
        workspace = Path(self.workspace).expanduser() if self.workspace else None
        flags = plan_from_flags(self.identity, self.env, proposal, Flags(workspace=workspace))
        plan = interview(_StepPrompter(self), self.identity, self.env, proposal, flags)
        if plan.install_daemon:
            self._exchange(
                {
                    "id": str(uuid.uuid4()),
                    "type": "note",
                    "message": "The service is not installed from here: run "
                    "`moltbot gateway install` on the gateway host.",
                }
            )
            plan.install_daemon = False
        check_plan(self.identity, self.env, proposal, plan)
        applied = apply(self.identity, self.env, plan)
        return {"configPath": str(applied.instance.config_path)}

    def _exchange(self, step: dict[str, Any]) -> Any:
        self._steps.put(step)
        try:
            answer = self._answers.get(timeout=IDLE_TIMEOUT_S)
        except queue.Empty:
            raise WizardAborted("no answer for 30 minutes") from None
        if answer is _CANCEL:
            raise WizardAborted("cancelled")
        return answer

    # the client's side (called from the event loop) --------------------------

    def next_step(self) -> dict[str, Any]:
        """Block until the next step or the end; the ``wizard.next`` result. Call it in a
        worker thread (``asyncio.to_thread``)."""
        if self._current is not None:
            return self._result(self._current)
        step = self._steps.get()
        if step is None:
            self._steps.put(None)  # every later call sees the end too
            return self._result(None)
        self._current = step
        return self._result(step)

    def answer(self, step_id: str, value: Any) -> None:
        current = self._current
        if self.state.status != "running":
            raise UsageError("wizard not running")
        if current is None or current["id"] != step_id:
            raise UsageError(f"wizard step {step_id} is not the current step")
        self._current = None
        self._answers.put(value)

    def cancel(self) -> None:
        if self.state.status == "running":
            self.state.status = "cancelled"
            self._current = None
            self._answers.put(_CANCEL)

    def _result(self, step: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"done": step is None, "status": self.state.status}
        if step is not None:
            out["step"] = step
        if self.state.error:
            out["error"] = self.state.error
        return out

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.state.status}
        if self.state.error:
            out["error"] = self.state.error
        return out
