"""Skills: ``SKILL.md`` folders that teach the agent a tool.

A skill is a folder with a ``SKILL.md`` whose frontmatter names it::

    ---
    name: weather
    description: Current weather and forecasts via the wttr CLI
    metadata: {"openclaw": {"requires": {"bins": ["curl"], "env": ["WTTR_KEY"]}}}
    ---
    (instructions; {baseDir} is the folder's path)

Folders are found, from lowest to highest precedence (a later one with the same name
wins): ``skills.load.extraDirs``, the instance's managed dir ``<state>/skills/``
(``skills.install`` puts skills there), the agent's ``<workspace>/skills/``.

Eligibility (``skills.status``): a skill is eligible unless disabled
(``skills.entries.<key>.enabled: false``), left out by ``skills.allow`` / ``skills.deny``,
or missing something its metadata requires — a binary on the gateway's PATH
(``requires.bins``; ``requires.anyBins``: one of them), an environment variable
(``requires.env``; also satisfied by ``skills.entries.<key>.env`` or ``apiKey`` for its
``primaryEnv``), a truthy config key (``requires.config``), the OS (``os``).
``always: true`` skips the requirements. Each ineligible skill says why.

The eligible skills (except ``disable-model-invocation: true`` ones) are listed in the
system prompt; the model reads one with the ``skill`` tool when it applies.
Metadata is read from ``metadata.moltbot``, ``metadata.clawdbot`` or
``metadata.openclaw`` (upstream's key), whichever is present.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.config.schema import Config, SkillEntry

log = logging.getLogger(__name__)

SKILL_FILE = "SKILL.md"
MAX_SKILL_BYTES = 256 * 1024
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
META_KEYS = ("moltbot", "clawdbot", "openclaw")
OS_NAMES = {"linux": "linux", "darwin": "darwin", "win32": "win32", "cygwin": "win32"}


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    source: str
    """``workspace``, ``managed`` or ``extra``."""
    file_path: Path
    frontmatter: Mapping[str, Any]
    metadata: Mapping[str, Any]
    body: str

    @property
    def base_dir(self) -> Path:
        return self.file_path.parent

    @property
    def key(self) -> str:
        """The ``skills.entries`` key (``metadata.skillKey``, else the name)."""
        return str(self.metadata.get("skillKey") or self.name)

    @property
    def requires(self) -> Mapping[str, Any]:
        value = self.metadata.get("requires")
        return value if isinstance(value, dict) else {}

    def list_of(self, value: Any) -> list[str]:
        return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, list) else []

    @property
    def model_invocable(self) -> bool:
        return not _truthy(self.frontmatter.get("disable-model-invocation"))

    @property
    def user_invocable(self) -> bool:
        """A chat command ``/<name>`` runs it (unless ``user-invocable: false``)."""
        value = self.frontmatter.get("user-invocable")
        return value is None or _truthy(value)

    def instructions(self) -> str:
        """The body with ``{baseDir}`` replaced by the folder's path."""
        return self.body.replace("{baseDir}", str(self.base_dir))


@dataclass
class SkillStatus:
    skill: Skill
    entry: SkillEntry | None
    disabled: bool
    blocked: bool
    always: bool
    missing: dict[str, list[str]]
    config_checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        if self.disabled or self.blocked:
            return False
        return self.always or not any(self.missing.values())

    def reasons(self) -> list[str]:
        """Why it is not eligible (empty when it is)."""
        out = []
        if self.disabled:
            out.append(f"disabled (skills.entries.{self.skill.key}.enabled: false)")
        if self.blocked:
            out.append("left out by skills.allow / skills.deny")
        if not self.always:
            labels = {
                "bins": "missing binary",
                "anyBins": "needs one of",
                "env": "missing env",
                "config": "config not set",
                "os": "only on",
            }
            for kind, items in self.missing.items():
                if items:
                    out.append(f"{labels[kind]}: {', '.join(items)}")
        return out

    def report(self) -> dict[str, Any]:
        """One entry of ``skills.status`` (the shape upstream's Control UI reads)."""
        skill = self.skill
        meta = skill.metadata
        requires = skill.requires
        return {
            "name": skill.name,
            "description": skill.description,
            "source": skill.source,
            "filePath": str(skill.file_path),
            "baseDir": str(skill.base_dir),
            "skillKey": skill.key,
            "primaryEnv": meta.get("primaryEnv"),
            "emoji": meta.get("emoji") or skill.frontmatter.get("emoji"),
            "homepage": meta.get("homepage") or skill.frontmatter.get("homepage"),
            "always": self.always,
            "disabled": self.disabled,
            "blockedByAllowlist": self.blocked,
            "eligible": self.eligible,
            "requirements": {
                "bins": skill.list_of(requires.get("bins")),
                "anyBins": skill.list_of(requires.get("anyBins")),
                "env": skill.list_of(requires.get("env")),
                "config": skill.list_of(requires.get("config")),
                "os": skill.list_of(meta.get("os")),
            },
            "missing": self.missing,
            "configChecks": self.config_checks,
            "install": install_options(skill),
            "reasons": self.reasons(),
        }


# ---- reading SKILL.md ------------------------------------------------------------


def parse_skill(path: Path, source: str) -> Skill | None:
    """The skill in ``path`` (a SKILL.md), or None when it is unreadable or has no
    frontmatter name/description (logged)."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_SKILL_BYTES:
            log.warning(
                "skill %s skipped: not a regular file under %d bytes", path, MAX_SKILL_BYTES
            )
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        log.warning("skill %s skipped: %s", path, exc)
        return None
    front, body = split_frontmatter(text)
    name = str(front.get("name") or path.parent.name).strip()
    description = str(front.get("description") or "").strip()
    if not NAME.match(name.lower()) or not description:
        log.warning("skill %s skipped: frontmatter needs a name and a description", path)
        return None
    meta_raw = front.get("metadata")
    metadata: dict[str, Any] = {}
    if isinstance(meta_raw, dict):
        for key in META_KEYS:
            if isinstance(meta_raw.get(key), dict):
                metadata = meta_raw[key]
                break
    return Skill(name.lower(), description, source, path, front, metadata, body)


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """``---``-delimited frontmatter as ``key: value`` lines (a value may continue on
    indented lines; ``metadata`` is JSON or JSON5), and the rest of the text."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return {}, text
    fields: dict[str, str] = {}
    current: str | None = None
    for line in lines[1:end]:
        match = re.match(r"^([A-Za-z][\w-]*)\s*:\s*(.*)$", line)
        if match and not line.startswith((" ", "\t")):
            current = match.group(1)
            fields[current] = match.group(2).strip()
        elif current is not None and line.strip():
            fields[current] += "\n" + line.strip()
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "metadata":
            out[key] = _parse_object(value)
        else:
            out[key] = value.strip().strip("\"'")
    return out, "\n".join(lines[end + 1 :]).lstrip("\n")


def _parse_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import json5

        return json.loads(json.dumps(json5.loads(text)))
    except Exception:
        return None


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "yes", "1", "on")


# ---- discovery and eligibility ---------------------------------------------------


def skill_dirs(config: Config, workspace: Path, managed: Path) -> list[tuple[str, Path]]:
    """``(source, dir)`` from lowest to highest precedence."""
    dirs = [("extra", Path(p).expanduser()) for p in config.skills.load.extra_dirs]
    dirs += [("managed", managed), ("workspace", workspace / "skills")]
    return dirs


def discover(config: Config, workspace: Path, managed: Path) -> list[Skill]:
    """Every skill, by name; a higher-precedence folder's skill replaces a lower one."""
    found: dict[str, Skill] = {}
    for source, directory in skill_dirs(config, workspace, managed):
        try:
            children = sorted(directory.iterdir())
        except OSError:
            continue
        for child in children:
            if child.is_symlink() or not child.is_dir():
                continue
            skill = parse_skill(child / SKILL_FILE, source)
            if skill is not None:
                found[skill.name] = skill
    return sorted(found.values(), key=lambda s: s.name)


def evaluate(
    skill: Skill, config: Config, env: Mapping[str, str], path: str | None = None
) -> SkillStatus:
    entry = config.skills.entries.get(skill.key)
    disabled = entry is not None and not entry.enabled
    rules = config.skills
    names = {skill.name, skill.key}
    denied = any(fnmatch.fnmatch(n, p.lower()) for n in names for p in rules.deny)
    allowed = rules.allow is None or any(
        fnmatch.fnmatch(n, p.lower()) for n in names for p in rules.allow
    )
    requires = skill.requires
    search = path if path is not None else env.get("PATH", os.defpath)
    bins = [b for b in skill.list_of(requires.get("bins")) if not shutil.which(b, path=search)]
    any_bins = skill.list_of(requires.get("anyBins"))
    missing_any = (
        any_bins if any_bins and not any(shutil.which(b, path=search) for b in any_bins) else []
    )
    provided = dict(entry.env) if entry else {}
    primary = skill.metadata.get("primaryEnv")
    if entry and entry.api_key and primary:
        provided[str(primary)] = entry.api_key
    missing_env = [
        name
        for name in skill.list_of(requires.get("env"))
        if not (env.get(name) or provided.get(name))
    ]
    checks = []
    data = config.model_dump(by_alias=True)
    for key in skill.list_of(requires.get("config")):
        value = _lookup(data, key)
        checks.append({"path": key, "value": value, "satisfied": bool(value)})
    systems = skill.list_of(skill.metadata.get("os"))
    here = OS_NAMES.get(sys.platform, sys.platform)
    return SkillStatus(
        skill,
        entry,
        disabled,
        denied or not allowed,
        _truthy(skill.metadata.get("always")),
        {
            "bins": bins,
            "anyBins": missing_any,
            "env": missing_env,
            "config": [c["path"] for c in checks if not c["satisfied"]],
            "os": systems if systems and here not in systems else [],
        },
        checks,
    )


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def statuses(
    config: Config, env: Mapping[str, str], workspace: Path, managed: Path
) -> list[SkillStatus]:
    return [evaluate(s, config, env) for s in discover(config, workspace, managed)]


def skill_env(items: Sequence[SkillStatus]) -> dict[str, str]:
    """Variables eligible skills configure (``entries.<key>.env`` and ``apiKey`` for their
    ``primaryEnv``): given to the commands the agent runs."""
    out: dict[str, str] = {}
    for item in items:
        if not item.eligible or item.entry is None:
            continue
        out.update(item.entry.env)
        primary = item.skill.metadata.get("primaryEnv")
        if item.entry.api_key and primary:
            out[str(primary)] = item.entry.api_key
    return out


def prompt_block(items: Sequence[SkillStatus]) -> str | None:
    """The ``## Skills`` part of the system prompt: the eligible skills, or None."""
    usable = [i.skill for i in items if i.eligible and i.skill.model_invocable]
    if not usable:
        return None
    from xml.sax.saxutils import escape  # with the first prompt: not on an idle gateway

    lines = [
        "## Skills (mandatory)",
        "Before replying, scan the skills below. If one clearly applies, load it with the "
        "`skill` tool (its name) and follow its instructions; never load more than one up "
        "front.",
        "<available_skills>",
    ]
    for skill in usable:
        lines.append(
            f"<skill><name>{escape(skill.name)}</name>"
            f"<description>{escape(skill.description)}</description>"
            f"<location>{escape(str(skill.file_path))}</location></skill>"
        )
    lines.append("</available_skills>")
    return "\n".join(lines)


def required_bins(skills: Sequence[Skill]) -> list[str]:
    """Every binary any skill mentions (``skills.bins``)."""
    bins: set[str] = set()
    for skill in skills:
        bins.update(skill.list_of(skill.requires.get("bins")))
        bins.update(skill.list_of(skill.requires.get("anyBins")))
        for spec in skill.metadata.get("install") or []:
            if isinstance(spec, dict):
                bins.update(skill.list_of(spec.get("bins")))
    return sorted(bins)


def install_options(skill: Skill) -> list[dict[str, Any]]:
    """The skill's declared installers (``metadata.install``) for this OS: id, kind,
    label, bins. Only ``download`` ones can be run by ``skills.install``."""
    out = []
    here = OS_NAMES.get(sys.platform, sys.platform)
    for index, spec in enumerate(skill.metadata.get("install") or []):
        if not isinstance(spec, dict):
            continue
        systems = skill.list_of(spec.get("os"))
        if systems and here not in systems:
            continue
        kind = str(spec.get("kind") or "download")
        label = str(spec.get("label") or "").strip()
        if not label:
            target = spec.get("url") or spec.get("formula") or spec.get("package") or skill.name
            label = (
                f"Download {str(target).rsplit('/', 1)[-1]}"
                if kind == "download"
                else (f"Install {target} ({kind})")
            )
        out.append(
            {
                "id": str(spec.get("id") or f"{kind}-{index}"),
                "kind": kind,
                "label": label,
                "bins": skill.list_of(spec.get("bins")),
            }
        )
    return out


# ---- skills as chat commands ------------------------------------------------------

COMMAND_NAME_MAX = 32
_SKILL_INVOCATION = re.compile(r"^/([^\s@:]+)(?:@\S+)?:?(?:\s+([\s\S]+))?$")


def command_name(name: str) -> str:
    """A skill's name as a chat command (``a-z0-9_``, at most 32 characters)."""
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:COMMAND_NAME_MAX] or "skill"


def skill_commands(items: Sequence[SkillStatus], reserved: set[str]) -> dict[str, SkillStatus]:
    """``command name -> skill`` for the eligible, user-invocable skills; a name a chat
    command (or an earlier skill) already has gets ``_2``, ``_3``... appended."""
    out: dict[str, SkillStatus] = {}
    for item in sorted(items, key=lambda i: i.skill.name):
        if not item.eligible or not item.skill.user_invocable:
            continue
        base = name = command_name(item.skill.name)
        number = 2
        while name in reserved or name in out:
            suffix = f"_{number}"
            name = base[: COMMAND_NAME_MAX - len(suffix)] + suffix
            number += 1
        out[name] = item
    return out


def skill_prompt(commands: Mapping[str, SkillStatus], text: str) -> str | None:
    """The agent's prompt for ``/<skill command> [input]`` or ``/skill <name> [input]``,
    or None when ``text`` names no skill command."""
    match = _SKILL_INVOCATION.match(text.strip())
    if match is None:
        return None
    name, args = match.group(1).lower(), (match.group(2) or "").strip()
    if name == "skill":
        wanted, _, args = args.partition(" ")
        key = command_name(wanted)
        item = commands.get(key) or next(
            (i for i in commands.values() if command_name(i.skill.name) == key), None
        )
        args = args.strip()
    else:
        item = commands.get(name)
    if item is None:
        return None
    parts = [f'Use the "{item.skill.name}" skill for this request.']
    if args:
        parts.append(f"User input:\n{args}")
    return "\n\n".join(parts)
