"""Rescue: one instance diagnoses and repairs another — even when no model works.

A rescue instance is granted targets (``rescue.targets``) and offers operations on
them (:mod:`moltbot.rescue.operations`): status, logs, doctor, config
validate/get/diff/history/restore/set, restart/stop/start. One implementation, four
front-ends: ``moltbot rescue TARGET OP`` (the CLI), the ``rescue.*`` protocol methods
(``operator.admin``), the agent tool ``rescue`` (:mod:`moltbot.rescue.tools`) and the
``/rescue`` chat commands (:mod:`moltbot.rescue.commands`), which are answered before
any model. Only owners may use them; every change is confirmed, and every step is
audited in ``<state>/rescue/audit.jsonl`` (:mod:`moltbot.rescue.audit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltbot.rescue.audit import Actor, AuditLog
from moltbot.rescue.errors import NotOwner, StartFailed, TargetRefused

if TYPE_CHECKING:
    from moltbot.rescue.operations import Change, Outcome, Request, Rescuer

_OPERATIONS = ("Change", "Outcome", "Request", "Rescuer")


def __getattr__(name: str) -> Any:
    """The operations' names, imported with the first use (the gateway's ``rescue``
    subsystem holds only the audit log and the confirmations while idle)."""
    if name in _OPERATIONS:
        from moltbot.rescue import operations

        return getattr(operations, name)
    raise AttributeError(f"module 'moltbot.rescue' has no attribute {name!r}")


__all__ = [
    "Actor",
    "AuditLog",
    "Change",
    "NotOwner",
    "Outcome",
    "Request",
    "Rescuer",
    "StartFailed",
    "TargetRefused",
]
