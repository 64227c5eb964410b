"""``skills.status``, ``skills.bins``, ``skills.install``, ``skills.update`` (the Control
UI's Skills tab). Nothing runs at install: see :mod:`moltbot.agents.skills_install`."""

from __future__ import annotations

import asyncio
from typing import Any

from moltbot.agents.roster import agent_specs, default_agent_id
from moltbot.errors import MoltbotError, NotFoundError, UsageError
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.validation import Field


class SkillsStatusParams(Params):
    agentId: str | None = None


def _workspace(call: MethodCall, agent_id: str | None) -> tuple[str, Any]:
    config = call.runtime.config
    specs = {s.id: s for s in agent_specs(config, call.runtime.instance)}
    wanted = (agent_id or default_agent_id(config)).lower()
    if wanted not in specs:
        raise NotFoundError(f"unknown agent {agent_id!r}; agents: {', '.join(specs)}")
    return wanted, specs[wanted].workspace


def _file_config(call: MethodCall) -> Any:
    """The config as the file says now (``skills.update`` just wrote it; the gateway's
    own copy follows when its watcher applies the change), else the running one."""
    from moltbot.config.store import read_config

    try:
        return read_config(call.runtime.instance.config_path, call.runtime.env).config
    except MoltbotError:
        return call.runtime.config


@method("skills.status", params=SkillsStatusParams, scope="read")
async def skills_status(call: MethodCall, params: SkillsStatusParams) -> dict[str, Any]:
    """Every skill of the (default) agent with its eligibility and why (as the config
    file says now: a skill turned off a moment ago reads as off)."""
    from moltbot.agents import skills  # the agents' module: loaded with them, after start

    _, workspace = _workspace(call, params.agentId)
    managed = call.runtime.instance.skills_dir
    config = await asyncio.to_thread(_file_config, call)
    found = await asyncio.to_thread(skills.statuses, config, call.runtime.env, workspace, managed)
    return {
        "workspaceDir": str(workspace),
        "managedSkillsDir": str(managed),
        "skills": [item.report() for item in found],
    }


class SkillsBinsParams(Params):
    pass


@method("skills.bins", params=SkillsBinsParams, scope="read")
async def skills_bins(call: MethodCall, params: SkillsBinsParams) -> dict[str, Any]:
    """The binaries the skills of every agent need (``{bins}``)."""
    from moltbot.agents import skills

    config, instance = call.runtime.config, call.runtime.instance
    found: list[skills.Skill] = []
    for spec in agent_specs(config, instance):
        found += await asyncio.to_thread(
            skills.discover, config, spec.workspace, instance.skills_dir
        )
    return {"bins": skills.required_bins(found)}


class SkillsInstallParams(Params):
    name: str = Field(min_length=1)
    installId: str = Field(min_length=1)
    timeoutMs: int | None = Field(default=None, ge=1000)
    source: str | None = Field(
        default=None,
        description="A folder on the gateway's host or an http(s) archive URL: install a "
        "skill folder as `name` (installId `copy` or `download`).",
    )


@method("skills.install", params=SkillsInstallParams, scope="admin")
async def skills_install(call: MethodCall, params: SkillsInstallParams) -> dict[str, Any]:
    """With ``source``: copy or download a skill folder into the managed dir. Without:
    run the skill's declared installer ``installId`` — only ``download`` ones (an archive
    unpacked into ``<state>/tools/<skillKey>``); package managers are never run."""
    from moltbot.agents import skills
    from moltbot.agents.skills_install import install_folder, run_download

    timeout = (params.timeoutMs or 120_000) / 1000
    instance = call.runtime.instance
    if params.source is not None:
        if params.installId not in ("copy", "download"):
            raise UsageError('with source, installId is "copy" (a folder) or "download" (a URL)')
        done = await install_folder(instance.skills_dir, params.name, params.source, timeout)
        verb = "Updated" if done.replaced else "Installed"
        return {
            "ok": True,
            "name": done.name,
            "path": str(done.path),
            "files": done.files,
            "replaced": done.replaced,
            "message": f"{verb} skill {done.name} ({done.files} files)",
        }
    _, workspace = _workspace(call, None)
    found = await asyncio.to_thread(
        skills.discover, call.runtime.config, workspace, instance.skills_dir
    )
    skill = next((s for s in found if params.name in (s.name, s.key)), None)
    if skill is None:
        raise NotFoundError(f"no skill {params.name!r}")
    specs = [s for s in skill.metadata.get("install") or [] if isinstance(s, dict)]
    options = {o["id"]: (o, specs[i]) for i, o in enumerate(skills.install_options(skill))}
    if params.installId not in options:
        raise NotFoundError(
            f"skill {skill.name} has no installer {params.installId!r}"
            f" (has: {', '.join(options) or 'none'})"
        )
    option, spec = options[params.installId]
    if option["kind"] != "download":
        raise UsageError(
            f"installer {params.installId} runs {option['kind']}: moltbot runs no package "
            f"manager; install it yourself ({option['label']}), then check skills.status"
        )
    target, files = await run_download(instance.tools_dir, skill.key, spec, timeout)
    return {
        "ok": True,
        "name": skill.name,
        "installId": params.installId,
        "path": str(target),
        "files": files,
        "message": f"Downloaded {files} files to {target}",
    }


class SkillsUpdateParams(Params):
    skillKey: str = Field(min_length=1)
    enabled: bool | None = None
    apiKey: str | None = None
    env: dict[str, str] | None = None


@method("skills.update", params=SkillsUpdateParams, scope="admin")
async def skills_update(call: MethodCall, params: SkillsUpdateParams) -> dict[str, Any]:
    """Set ``skills.entries.<skillKey>`` in the config file (an empty ``apiKey`` or env
    value removes it). Written like ``config.patch``: locked, atomic, validated."""
    from moltbot.config.store import update_config

    key = params.skillKey.strip()
    result: dict[str, Any] = {}

    def mutate(data: dict[str, Any]) -> None:
        entries = data.setdefault("skills", {}).setdefault("entries", {})
        current = entries.setdefault(key, {})
        if params.enabled is not None:
            current["enabled"] = params.enabled
        if params.apiKey is not None:
            if params.apiKey.strip():
                current["apiKey"] = params.apiKey.strip()
            else:
                current.pop("apiKey", None)
        if params.env is not None:
            env = current.setdefault("env", {})
            for name, value in params.env.items():
                if not name.strip():
                    continue
                if value.strip():
                    env[name.strip()] = value.strip()
                else:
                    env.pop(name.strip(), None)
        result.update(current)

    path = call.runtime.instance.config_path
    await asyncio.to_thread(update_config, path, mutate, call.runtime.env)
    shown = dict(result)
    if "apiKey" in shown:
        shown["apiKey"] = "__MOLTBOT_REDACTED__"
    return {"ok": True, "skillKey": key, "config": shown}
