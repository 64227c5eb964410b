"""Automation: cron jobs, heartbeats, wake-ups and inbound hooks.

- :mod:`.schedule`, :mod:`.jobs`: when jobs run, their wire/store shape (pure);
- :mod:`.store`, :mod:`.runlog`: ``<state>/cron/jobs.json`` and ``runs/<jobId>.jsonl``;
- :mod:`.scheduler`: the timer (injectable :mod:`.clock`), concurrency, back-off,
  missed runs;
- :mod:`.service`: the gateway's ``cron`` subsystem (what a run does);
- :mod:`.heartbeat`, :mod:`.heartbeat_rules`: the ``heartbeat`` subsystem;
- :mod:`.wake`, :mod:`.delivery`, :mod:`.isolated`: system events, reply targets,
  isolated agent turns (also for ``POST <hooks>/agent``);
- :mod:`.tool`: the agents' ``cron`` tool.

The gateway reaches them through ``runtime.subsystem("cron")`` and
``runtime.subsystem("heartbeat")``; nothing here imports the gateway.
"""

from moltbot.automation.clock import Clock, ManualClock, SystemClock

__all__ = ["Clock", "ManualClock", "SystemClock"]
