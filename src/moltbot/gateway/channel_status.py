"""The ``channels.status`` payload (protocol §4 Messaging) and the channel part of
``health``, shaped from :class:`~moltbot.channels.types.ChannelReport` values.

Used by the gateway's methods (from the running ``channels`` subsystem) and by
``moltbot channels status`` when no gateway runs (from the config alone), so
both print the same shape. Labels come from the channel manifests; a config
section no known channel reads is listed with its own name and ``state: failed``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from moltbot.channels import registry
from moltbot.channels.config import DEFAULT_ACCOUNT_ID
from moltbot.channels.types import AccountState, ChannelReport

_OVERALL = (
    AccountState.RUNNING,
    AccountState.RETRYING,
    AccountState.STARTING,
    AccountState.FAILED,
    AccountState.DISABLED,
)


def _labels(name: str) -> tuple[str, str]:
    spec = registry.manifests().get(name)
    return (spec.label, spec.detail) if spec else (name, name)


def _summary(report: ChannelReport) -> dict[str, Any]:
    items = report.accounts
    states = {s.state for s in items}
    overall = next(
        (state.value for state in _OVERALL if state in states),
        AccountState.FAILED.value if report.error else AccountState.STOPPED.value,
    )
    errors = [s.last_error for s in items if s.last_error]
    summary: dict[str, Any] = {
        "state": overall,
        "configured": any(s.configured for s in items),
        "running": any(s.state is AccountState.RUNNING for s in items),
        "connected": any(s.connected for s in items),
        "accounts": len(items),
        "lastError": report.error or (errors[0] if errors else None),
    }
    spec = registry.manifests().get(report.channel)
    if spec is not None:
        summary["capabilities"] = spec.capabilities.as_dict()
    return summary


def status_payload(reports: Sequence[ChannelReport]) -> dict[str, Any]:
    """The ``channels.status`` result for ``reports`` (in ``channelOrder``)."""
    order = [report.channel for report in reports]
    labels = {name: _labels(name) for name in order}
    defaults: dict[str, str] = {}
    for report in reports:
        ids = [s.account_id for s in report.accounts]
        defaults[report.channel] = (
            DEFAULT_ACCOUNT_ID if DEFAULT_ACCOUNT_ID in ids or not ids else ids[0]
        )
    return {
        "ts": int(time.time() * 1000),
        "channelOrder": order,
        "channelLabels": {name: labels[name][0] for name in order},
        "channelDetailLabels": {name: labels[name][1] for name in order},
        # every channel this gateway has, configured or not: upstream's Control UI shows a
        # card (and a config editor) for each one listed here
        "channelMeta": [
            {"id": name, "label": label, "detailLabel": detail}
            for name, (label, detail) in {
                **{name: labels[name] for name in order},
                **{m.id: (m.label, m.detail) for m in registry.manifests().values()},
            }.items()
        ],
        "channels": {report.channel: _summary(report) for report in reports},
        "channelAccounts": {
            report.channel: [s.snapshot() for s in report.accounts] for report in reports
        },
        "channelDefaultAccountId": defaults,
    }


def health_summary(reports: Sequence[ChannelReport]) -> dict[str, Any]:
    """The channel part of the gateway's ``health`` payload."""
    return {
        "channels": {report.channel: _summary(report) for report in reports},
        "channelOrder": [report.channel for report in reports],
        "channelLabels": {report.channel: _labels(report.channel)[0] for report in reports},
    }
