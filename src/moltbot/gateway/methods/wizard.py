"""``wizard.start|next|cancel|status``: ``moltbot onboard``'s questions, one step per
request (see :mod:`moltbot.onboard.remote`). One wizard runs at a time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import MoltbotError, NotFoundError
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.onboard.remote import WizardSession


class StartParams(Params):
    mode: Literal["local", "remote"] | None = None
    workspace: str | None = None


class Answer(Params):
    stepId: str = Field(min_length=1)
    value: Any = None


class NextParams(Params):
    sessionId: str = Field(min_length=1)
    answer: Answer | None = None


class SessionParams(Params):
    sessionId: str = Field(min_length=1)


def _session(call: MethodCall, session_id: str) -> WizardSession:
    session = call.runtime.wizards.get(session_id)
    if session is None:
        raise NotFoundError("wizard not found")
    return session


async def _step(call: MethodCall, session: WizardSession) -> dict[str, Any]:
    result = await asyncio.to_thread(session.next_step)
    if result["done"]:
        call.runtime.wizards.pop(session.id, None)
    return result


@method("wizard.start", params=StartParams, scope="admin")
async def wizard_start(call: MethodCall, params: StartParams) -> dict[str, Any]:
    if params.mode == "remote":
        raise MoltbotError("remote onboarding is not supported by this gateway (mode: local)")
    if any(s.state.status == "running" for s in call.runtime.wizards.values()):
        raise MoltbotError("wizard already running")
    from moltbot.onboard.remote import WizardSession  # onboarding: not at the gateway's start

    runtime = call.runtime
    session = WizardSession(runtime.instance.identity, dict(runtime.env), params.workspace)
    runtime.wizards[session.id] = session
    session.start()
    return {"sessionId": session.id, **(await _step(call, session))}


@method("wizard.next", params=NextParams, scope="admin")
async def wizard_next(call: MethodCall, params: NextParams) -> dict[str, Any]:
    session = _session(call, params.sessionId)
    if params.answer is not None:
        session.answer(params.answer.stepId, params.answer.value)
    return await _step(call, session)


@method("wizard.cancel", params=SessionParams, scope="admin")
def wizard_cancel(call: MethodCall, params: SessionParams) -> dict[str, Any]:
    session = _session(call, params.sessionId)
    session.cancel()
    call.runtime.wizards.pop(session.id, None)
    return session.status()


@method("wizard.status", params=SessionParams, scope="admin")
def wizard_status(call: MethodCall, params: SessionParams) -> dict[str, Any]:
    session = _session(call, params.sessionId)
    status = session.status()
    if status["status"] != "running":
        call.runtime.wizards.pop(session.id, None)
    return status
