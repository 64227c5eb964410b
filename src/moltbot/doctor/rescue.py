"""Doctor checks of an instance's ``rescue.*`` settings: grants that reach nothing, and
owners who could never use ``/rescue`` (see :mod:`moltbot.rescue`)."""

from __future__ import annotations

from collections.abc import Sequence

from moltbot.config.schema import Config
from moltbot.doctor.checks import Finding
from moltbot.instance.registry import KnownInstance
from moltbot.instance.resolve import Instance
from moltbot.service.spec import cli_prefix


def check_rescue(
    instance: Instance, config: Config | None, known: Sequence[KnownInstance]
) -> list[Finding]:
    """Findings about ``config.rescue`` of ``instance``; none when it grants nothing."""
    if config is None:
        return []
    rescue = config.rescue
    cli = cli_prefix(instance)
    subject = (f"profile {instance.profile}",)
    mine = instance.state_dir.resolve()
    others = {k.instance.profile for k in known if k.key.resolve() != mine}
    findings: list[Finding] = []
    for name in rescue.targets:
        if name == instance.profile:
            findings.append(
                Finding(
                    "warning",
                    "rescue-target-self",
                    f"rescue.targets names this instance itself ({name}): rescue acts on "
                    "other instances only, and refuses it",
                    subject,
                    fix=f"remove {name} from rescue.targets (`{cli} config get rescue.targets`)",
                )
            )
        elif name != "*" and name not in others:
            findings.append(
                Finding(
                    "warning",
                    "rescue-target-missing",
                    f"rescue.targets names {name}, but no instance with that profile is on "
                    f"this host (known: {', '.join(sorted(others)) or 'none'})",
                    subject,
                    fix=f"set it up (`moltbot --profile {name} setup`) or fix rescue.targets",
                )
            )
    if not rescue.targets:
        if rescue.owners:
            findings.append(
                Finding(
                    "info",
                    "rescue-no-targets",
                    "rescue.owners is set but rescue.targets grants nothing: /rescue can "
                    "only say so",
                    subject,
                    fix=f"{cli} config set rescue.targets '[\"default\"]'",
                )
            )
        return findings
    channels = {name for name, section in config.channels.items() if section is not None}
    for channel in sorted(rescue.owners):
        if channel not in channels:
            findings.append(
                Finding(
                    "warning",
                    "rescue-owners-no-channel",
                    f"rescue.owners.{channel} lists owners, but channels.{channel} is not "
                    "configured: nobody can send /rescue there",
                    subject,
                    fix=f"{cli} channels add {channel} (or remove rescue.owners.{channel})",
                )
            )
    if rescue.owners and not config.commands.text:
        findings.append(
            Finding(
                "warning",
                "rescue-commands-off",
                "commands.text is false: /rescue (like every chat command) is not answered "
                "in channels, so rescue.owners cannot use it",
                subject,
                fix=f"{cli} config set commands.text true",
            )
        )
    if not rescue.owners:
        findings.append(
            Finding(
                "info",
                "rescue-no-owners",
                f"rescue may act on {', '.join(rescue.targets)} but rescue.owners is empty: "
                "/rescue answers only WebChat operators with operator.admin (and the CLI)",
                subject,
                fix=f"{cli} config set rescue.owners.telegram '[\"<your id>\"]'",
            )
        )
    return findings


__all__ = ["check_rescue"]
