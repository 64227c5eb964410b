"""The names of the rescue operations (:mod:`moltbot.rescue.operations` implements
them): what the agent tool's params accept, without importing the operations."""

from __future__ import annotations

READS = (
    "status",
    "logs",
    "doctor",
    "config validate",
    "config get",
    "config diff",
    "config history",
)
WRITES = ("config restore", "config set", "restart", "stop", "start")
OPS = READS + WRITES
