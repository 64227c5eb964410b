"""Service names per profile, for every OS service manager."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceNames:
    systemd_unit: str  # without ".service"
    launchd_label: str
    windows_task: str

    @property
    def systemd_file(self) -> str:
        return f"{self.systemd_unit}.service"


def service_names(profile: str) -> ServiceNames:
    if profile.lower() == "default":
        return ServiceNames("moltbot-gateway", "bot.molt.gateway", "Moltbot Gateway")
    return ServiceNames(
        f"moltbot-gateway-{profile}", f"bot.molt.{profile}", f"Moltbot Gateway ({profile})"
    )
