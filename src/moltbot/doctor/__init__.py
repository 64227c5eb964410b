"""doctor: the isolation checklist for this instance and every instance on the host,
with safe fixes; and the host overview behind ``status --all``."""

from moltbot.doctor.checks import Finding, FixAction, Member
from moltbot.doctor.diagnose import Report, diagnose
from moltbot.doctor.overview import host_overview, render_host_table

__all__ = [
    "Finding",
    "FixAction",
    "Member",
    "Report",
    "diagnose",
    "host_overview",
    "render_host_table",
]
