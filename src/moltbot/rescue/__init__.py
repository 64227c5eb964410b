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

from moltbot.rescue.audit import Actor, AuditLog
from moltbot.rescue.errors import NotOwner, StartFailed, TargetRefused
from moltbot.rescue.operations import Change, Outcome, Request, Rescuer

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
