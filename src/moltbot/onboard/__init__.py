"""Onboarding: propose, plan, ask, apply — the core of ``moltbot onboard`` (no click here).

- :mod:`.plan`: what onboard proposes (:func:`propose`) and the :class:`Plan` it
  applies, from flags (:func:`plan_from_flags`) or from the wizard.
- :mod:`.wizard`: the questions (:func:`interview`) through a :class:`Prompter`.
- :mod:`.channels`: channel flags, checks and writes, generated from the
  channel manifests.
- :mod:`.apply`: writing a plan (:func:`apply`), the service, the summary.

The command (``moltbot.cli.onboard_cmd``) only turns flags into a plan, runs
the wizard when there is a terminal, applies the plan and prints the summary.
"""

from moltbot.onboard.apply import Applied, apply, dashboard_url, install_service, summary
from moltbot.onboard.plan import (
    ChannelPlan,
    Flags,
    Plan,
    Proposal,
    check_plan,
    plan_from_flags,
    propose,
)
from moltbot.onboard.wizard import Prompter, QuestionaryPrompter, WizardAborted, interview

__all__ = [
    "Applied",
    "ChannelPlan",
    "Flags",
    "Plan",
    "Prompter",
    "Proposal",
    "QuestionaryPrompter",
    "WizardAborted",
    "apply",
    "check_plan",
    "dashboard_url",
    "install_service",
    "interview",
    "plan_from_flags",
    "propose",
    "summary",
]
