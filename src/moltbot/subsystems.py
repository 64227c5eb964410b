"""The subsystems a gateway runs, by typed key (see :class:`moltbot.lifecycle.SubsystemKey`).

``runtime.subsystem(AGENTS)`` in the gateway and ``context.lookup(BROWSER)`` in another
subsystem return the running instance with its own type (or ``None``), so no caller
probes an ``Any`` with ``hasattr``. Names are those of the gateway's lazy table
(``moltbot.gateway.runtime.SUBSYSTEMS``); importing this module imports none of the
subsystems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moltbot.lifecycle import SubsystemKey

if TYPE_CHECKING:
    from moltbot.agents.runtime import AgentRuntime
    from moltbot.automation.heartbeat import HeartbeatRunner
    from moltbot.automation.service import CronService
    from moltbot.browser.service import BrowserService
    from moltbot.canvas.host import CanvasHost
    from moltbot.channels.manager import ChannelManager
    from moltbot.devices.approver import ExecApprovals
    from moltbot.devices.registry import NodeRegistry
    from moltbot.rescue.service import RescueService

AGENTS: SubsystemKey[AgentRuntime] = SubsystemKey("agents")
CHANNELS: SubsystemKey[ChannelManager] = SubsystemKey("channels")
RESCUE: SubsystemKey[RescueService] = SubsystemKey("rescue")
BROWSER: SubsystemKey[BrowserService] = SubsystemKey("browser")
CANVAS: SubsystemKey[CanvasHost] = SubsystemKey("canvas")
NODES: SubsystemKey[NodeRegistry] = SubsystemKey("nodes")
APPROVALS: SubsystemKey[ExecApprovals] = SubsystemKey("exec.approvals")
HEARTBEAT: SubsystemKey[HeartbeatRunner] = SubsystemKey("heartbeat")
CRON: SubsystemKey[CronService] = SubsystemKey("cron")

KEYS = (RESCUE, AGENTS, CHANNELS, BROWSER, CANVAS, NODES, APPROVALS, HEARTBEAT, CRON)
"""In the gateway's start order."""

__all__ = [
    "AGENTS",
    "APPROVALS",
    "BROWSER",
    "CANVAS",
    "CHANNELS",
    "CRON",
    "HEARTBEAT",
    "KEYS",
    "NODES",
    "RESCUE",
]
