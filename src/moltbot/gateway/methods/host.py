"""Host methods: ``host.status`` — every instance on this host (as ``status --all``)
and the doctor's host-wide findings with their fix commands (as ``doctor --all``)."""

from __future__ import annotations

import asyncio
from typing import Any

from moltbot.gateway.methods.registry import MethodCall, NoParams, method


@method("host.status", scope="admin")
async def host_status(call: MethodCall, params: NoParams) -> dict[str, Any]:
    """``{profile, instances: [host_overview rows], doctor: doctor report}``; the work
    (registry scan, service managers, health probes) runs in a worker thread."""
    from moltbot.doctor.diagnose import diagnose
    from moltbot.doctor.overview import host_overview

    identity, env = call.runtime.instance.identity, call.runtime.env
    rows, report = await asyncio.gather(
        asyncio.to_thread(host_overview, identity.home, env),
        asyncio.to_thread(diagnose, identity, env, host=True),
    )
    return {"profile": identity.profile, "instances": rows, "doctor": report.as_dict()}
