"""The isolation checklist: one instance, and every pair of instances on the host.

Checks are pure functions over already-gathered facts (:class:`Member`), so the
rules are tested without processes or service managers. Each :class:`Finding`
names its severity, what clashes with what, and the exact command that fixes
it (with ``--profile P`` or the instance's variables, so a pasted command
never lands on another instance). Safe automatic fixes are attached as a
:class:`FixAction`; ``doctor --fix`` applies those (see :mod:`.fixes`).

Severities follow DESIGN §3: a port *used* by two instances, or base ports
closer than the seed's 20, is an error; one instance's port inside another's
CDP range is a warning; CDP ranges overlapping only in unused slots are info.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from moltbot.config.schema import Config
from moltbot.instance import env as envvars
from moltbot.instance import ports
from moltbot.instance.registry import KnownInstance
from moltbot.instance.resolve import Instance, default_workspace
from moltbot.instance.workspace import BOOTSTRAP_FILES
from moltbot.service.spec import ServiceCommand, cli_prefix

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class FixAction:
    """A safe, automatic change to one instance (applied by ``doctor --fix``)."""

    kind: Literal["move-port", "move-workspace", "reinstall-service", "unset-key", "move-cdp-port"]
    state_dir: Path
    port: int | None = None
    workspace: Path | None = None
    key: str | None = None
    browser_profile: str | None = None  # move-cdp-port: whose port moves


@dataclass
class Finding:
    severity: Severity
    code: str
    message: str
    subjects: tuple[str, ...]
    fix: str | None = None
    actions: tuple[FixAction, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "subjects": list(self.subjects),
            "fix": self.fix,
            "autoFix": [a.kind for a in self.actions],
        }


@dataclass(frozen=True)
class ServiceFile:
    """A gateway service file found on the host (ours, or a legacy one)."""

    path: Path
    name: str
    manager: str
    command: ServiceCommand | None
    legacy: bool
    removal: tuple[str, ...]


@dataclass
class Member:
    """One instance with what the host checks need to know about it."""

    known: KnownInstance
    config: Config | None
    running: bool = False
    service_installed: bool = False
    service_current: bool | None = None
    service_changes: list[str] = field(default_factory=list)
    configured: Instance | None = None  # as its config says, when a service file says otherwise

    @property
    def instance(self) -> Instance:
        return self.configured or self.known.instance

    @property
    def cli(self) -> str:
        return cli_prefix(self.instance)

    @property
    def label(self) -> str:
        inst = self.instance
        return f"profile {inst.profile} ({_short(inst.state_dir, inst.home)}, port {inst.port})"


def _short(path: Path, home: Path) -> str:
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


def _real(path: Path) -> Path:
    return path.resolve()


def _same(a: Path, b: Path) -> bool:
    return a == b or _real(a) == _real(b)


def _inside(path: Path, parent: Path) -> bool:
    try:
        _real(path).relative_to(_real(parent))
        return True
    except ValueError:
        return False


# one instance ----------------------------------------------------------------


def check_environment(env: Mapping[str, str], cli: str) -> list[Finding]:
    """Aliases of one variable (MOLTBOT_/CLAWDBOT_/OPENCLAW_) set to different values."""
    findings = []
    for name in (*envvars.IDENTITY_NAMES, *envvars.SECRET_NAMES, "CANVAS_HOST_PORT"):
        values = envvars.disagreements(env, name)
        if not values:
            continue
        winner = values[0][0]
        losers = [variable for variable, _ in values[1:]]
        shown = ", ".join(f"{variable}={_masked(variable, value)}" for variable, value in values)
        findings.append(
            Finding(
                "warning",
                "env-aliases-disagree",
                f"{shown} disagree; {winner} wins (MOLTBOT_ > CLAWDBOT_ > OPENCLAW_)",
                tuple(v for v, _ in values),
                fix=f"unset {' '.join(losers)}",
            )
        )
    return findings


def _masked(variable: str, value: str) -> str:
    return "***" if "TOKEN" in variable or "PASSWORD" in variable else value


def check_config(
    instance: Instance, config: Config | None, error: str | None, exists: bool
) -> list[Finding]:
    cli = cli_prefix(instance)
    subject = (f"profile {instance.profile}",)
    if error:
        return [
            Finding(
                "error",
                "config-invalid",
                error,
                subject,
                fix=f"edit {instance.config_path}, then `{cli} config validate`",
            )
        ]
    if not exists or config is None:
        return [
            Finding(
                "error",
                "config-missing",
                f"no config at {instance.config_path}: this instance is not set up",
                subject,
                fix=f"{cli} onboard",
            )
        ]
    findings = []
    if config.gateway.mode is None:
        findings.append(
            Finding(
                "warning",
                "gateway-mode-unset",
                "gateway.mode is unset; set it to local to run a gateway here",
                subject,
                fix=f"{cli} config set gateway.mode local",
            )
        )
    auth = config.gateway.auth
    if not (auth.token or auth.password):
        findings.append(
            Finding(
                "error",
                "auth-missing",
                "no gateway token or password: clients cannot authenticate",
                subject,
                fix=f"{cli} setup",
            )
        )
    return findings


def check_directories(instance: Instance) -> list[Finding]:
    cli = cli_prefix(instance)
    subject = (f"profile {instance.profile}",)
    findings = []
    for what, path in (
        ("state dir", instance.state_dir),
        ("workspace", instance.workspace),
        ("sessions dir", instance.sessions_dir()),
        ("logs dir", instance.logs_dir),
    ):
        if not path.is_dir():
            findings.append(
                Finding(
                    "error",
                    "dir-missing",
                    f"{what} {path} does not exist",
                    subject,
                    fix=f"{cli} setup",
                )
            )
        elif not os.access(path, os.W_OK | os.X_OK):
            findings.append(
                Finding(
                    "error",
                    "dir-not-writable",
                    f"{what} {path} is not writable",
                    subject,
                    fix=f"chmod u+rwx {path}",
                )
            )
    if instance.workspace.is_dir():
        missing = [name for name in BOOTSTRAP_FILES if not (instance.workspace / name).exists()]
        if missing:
            findings.append(
                Finding(
                    "warning",
                    "workspace-files-missing",
                    f"workspace {instance.workspace} lacks {', '.join(missing)}",
                    subject,
                    fix=f"{cli} setup",
                )
            )
    return findings


def check_ports_owned(
    instance: Instance,
    owners: Mapping[int, Mapping[str, Any] | None],
    gateway_pid: int | None,
    suggestion: int | None = None,
) -> list[Finding]:
    """Each of this instance's ports is free or held by this instance's own gateway."""
    findings = []
    names = {
        instance.port: "gateway port",
        instance.control_port: "browser control port",
        instance.canvas_port: "canvas port",
    }
    for port, what in names.items():
        owner = owners.get(port)
        if not owner:
            continue
        pid = owner.get("pid")
        if gateway_pid and pid == gateway_pid:
            continue
        if pid is None and gateway_pid:
            continue  # our gateway is running; the owner is merely not visible to us
        holder = (
            f"pid {pid} ({owner.get('commandLine') or owner.get('name') or '?'})"
            if pid
            else "another process (owner not visible)"
        )
        findings.append(
            Finding(
                "error",
                "port-taken",
                f"{what} {port} of profile {instance.profile} is held by {holder}",
                (f"profile {instance.profile}", f"port {port}"),
                fix=f"stop that process, or move this instance: "
                f"{cli_prefix(instance)} setup --port {suggestion or '<free port>'}",
            )
        )
    return findings


def check_drift(member: Member) -> list[Finding]:
    """A running gateway whose ports differ from its configuration (a one-off ``--port``,
    or a config changed since it started): information, so nobody trusts a stale view."""
    drift = member.known.drift
    if not drift:
        return []
    return [Finding("info", "running-drift", f"{member.label}: {drift}", (member.label,))]


def check_service(member: Member) -> list[Finding]:
    if not member.service_installed or member.service_current is not False:
        return []
    changes = "; ".join(member.service_changes)
    return [
        Finding(
            "warning",
            "service-stale",
            f"the installed service of {member.label} does not match the instance: {changes}",
            (member.label,),
            fix=f"{member.cli} gateway install --force",
            actions=(FixAction("reinstall-service", member.instance.state_dir),),
        )
    ]


# the host --------------------------------------------------------------------


def check_pair(a: Member, b: Member, taken: Sequence[Member]) -> list[Finding]:
    """Every way two instances can step on each other."""
    findings: list[Finding] = []
    ia, ib = a.instance, b.instance
    subjects = (a.label, b.label)
    if _same(ia.config_path, ib.config_path):
        findings.append(
            Finding(
                "error",
                "shared-config",
                f"{a.label} and {b.label} use the same config {ia.config_path}",
                subjects,
                fix=_unshare_hint(b),
            )
        )
    if (
        _same(ia.state_dir, ib.state_dir)
        or _inside(ia.state_dir, ib.state_dir)
        or _inside(ib.state_dir, ia.state_dir)
    ):
        findings.append(
            Finding(
                "error",
                "shared-state-dir",
                f"state dirs overlap: {ia.state_dir} and {ib.state_dir}",
                subjects,
                fix=_unshare_hint(b),
            )
        )
    findings += _workspace_findings(a, b, taken)
    findings += _port_findings(a, b, taken)
    findings += _cdp_port_findings(a, b, taken)
    findings += _cdp_url_findings(a, b)
    return findings


def _unshare_hint(member: Member) -> str:
    return (
        f"give {member.label} its own state dir and config: "
        f"`{member.cli} gateway uninstall`, then set it up with its own --profile"
    )


def _workspace_findings(a: Member, b: Member, taken: Sequence[Member]) -> list[Finding]:
    ia, ib = a.instance, b.instance
    subjects = (a.label, b.label)
    if _same(ia.workspace, ib.workspace):
        what = f"{a.label} and {b.label} share the workspace {ia.workspace}"
    elif _inside(ia.workspace, ib.workspace) or _inside(ib.workspace, ia.workspace):
        what = f"workspaces are nested: {ia.workspace} and {ib.workspace}"
    elif _inside(ia.workspace, ib.state_dir) or _inside(ib.workspace, ia.state_dir):
        what = (
            f"a workspace lies inside the other instance's state dir ({ia.workspace}, "
            f"{ib.workspace})"
        )
    else:
        return []
    mover = _workspace_mover(a, b)
    target = free_workspace(mover, taken)
    action = FixAction("move-workspace", mover.instance.state_dir, workspace=target)
    return [
        Finding(
            "error",
            "shared-workspace",
            what,
            subjects,
            fix=f"{mover.cli} setup --workspace {target}",
            actions=(action,),
        )
    ]


def _workspace_mover(a: Member, b: Member) -> Member:
    """The instance that borrowed the other's workspace; else the non-default one."""

    def borrowed(m: Member) -> bool:
        inst = m.instance
        return not _same(inst.workspace, default_workspace(inst.home, inst.profile))

    return max(
        (a, b),
        key=lambda m: (
            borrowed(m),
            m.instance.profile != "default",
            not m.running,
            m.instance.profile,
        ),
    )


def free_workspace(member: Member, taken: Sequence[Member]) -> Path:
    inst = member.instance
    used = [m.instance.workspace for m in taken if m is not member]

    def clear(path: Path) -> bool:
        return not any(
            _same(path, u) or _inside(path, u) or _inside(u, path) for u in used
        ) and not any(_inside(path, m.instance.state_dir) for m in taken)

    candidates = [
        default_workspace(inst.home, inst.profile),
        Path(f"{inst.workspace}-{inst.profile}"),
    ]
    candidates += [Path(f"{inst.workspace}-{inst.profile}-{n}") for n in range(2, 100)]
    return next((c for c in candidates if clear(c)), candidates[-1])


def _core(instance: Instance) -> set[int]:
    return {instance.port, instance.control_port, instance.canvas_port}


def _port_findings(a: Member, b: Member, taken: Sequence[Member]) -> list[Finding]:
    """Base, +2 and +4 of two instances: equal, closer than the seed's 20, inside the
    other's CDP range, or CDP ranges overlapping in unused slots. (A CDP port of one
    instance that another uses is :func:`_cdp_port_findings`' business: moving a base
    port would not move it.)"""
    ia, ib = a.instance, b.instance
    subjects = (a.label, b.label)
    shared = sorted(_core(ia) & _core(ib))
    gap = abs(ia.port - ib.port)
    in_cdp = sorted(
        {p for p in _core(ia) if p in ib.cdp_ports} | {p for p in _core(ib) if p in ia.cdp_ports}
    )
    cdp_overlap = set(ia.cdp_ports) & set(ib.cdp_ports)
    if shared or gap < ports.MIN_BASE_SPACING:
        severity: Severity = "error"
        detail = (
            f"port {shared[0]} is used by both"
            if shared
            else f"base ports {ia.port} and {ib.port} are {gap} apart "
            f"(at least {ports.MIN_BASE_SPACING} needed)"
        )
    elif in_cdp:
        severity = "warning"
        detail = (
            f"port {', '.join(map(str, in_cdp))} lies in the other's CDP range "
            f"({_range(ia.cdp_ports)} / {_range(ib.cdp_ports)})"
        )
    elif cdp_overlap:
        severity = "info"
        detail = (
            f"CDP ranges {_range(ia.cdp_ports)} and {_range(ib.cdp_ports)} overlap in "
            f"{len(cdp_overlap)} unused slots"
        )
    else:
        return []
    mover = _port_mover(a, b)
    port = free_port(mover, taken)
    actions = (FixAction("move-port", mover.instance.state_dir, port=port),)
    fix = f"{mover.cli} setup --port {port}"
    if port == mover.instance.port:  # nothing to move to: never propose a no-op
        actions, fix = (), f"give {mover.label} a base port away from the others"
    return [
        Finding(
            severity,
            "ports-clash" if severity == "error" else "ports-overlap",
            f"{a.label} and {b.label}: {detail}",
            subjects,
            fix=fix,
            actions=actions,
        )
    ]


def _cdp_port_findings(a: Member, b: Member, taken: Sequence[Member]) -> list[Finding]:
    """A browser profile's CDP port (explicit ``cdpPort`` or the gateway's allocation)
    that the other instance also uses. The fix moves that CDP port, not a base port."""
    findings = []
    mover = _port_mover(a, b)
    for mine, other in ((a, b), (b, a)):
        theirs = set(other.instance.used_ports)
        their_cdp = {p: e for _, p, e in _cdp_entries(other.instance)}
        for name, port, explicit in _cdp_entries(mine.instance):
            if port not in theirs:
                continue
            if port in their_cdp:  # a CDP port on both sides: one of them moves
                theirs_explicit = their_cdp[port]
                if explicit != theirs_explicit:
                    if explicit:
                        continue  # the other side's allocation is what moves
                elif mine is not mover:
                    continue
            findings.append(
                _move_cdp_finding(
                    mine,
                    name,
                    port,
                    explicit,
                    taken,
                    "error",
                    "cdp-port-clash",
                    f"{mine.label}: CDP port {port} of browser profile {name!r} is also used "
                    f"by {other.label}",
                    (mine.label, other.label),
                )
            )
    return findings


def check_cdp_ports(member: Member, taken: Sequence[Member]) -> list[Finding]:
    """An explicit ``cdpPort`` outside the instance's own CDP range: typically left
    by a one-off ``--port`` of an older version, and inside another block."""
    inst = member.instance
    return [
        _move_cdp_finding(
            member,
            name,
            port,
            True,
            taken,
            "warning",
            "cdp-port-outside-range",
            f"{member.label}: browser.profiles.{name}.cdpPort {port} lies outside its CDP "
            f"range {_range(inst.cdp_ports)}",
            (member.label,),
        )
        for name, port in inst.explicit_cdp_ports
        if port not in inst.cdp_ports
    ]


def _cdp_entries(instance: Instance) -> list[tuple[str, int, bool]]:
    return [(n, p, True) for n, p in instance.explicit_cdp_ports] + [
        (n, p, False) for n, p in instance.allocated_cdp_ports
    ]


def _move_cdp_finding(
    member: Member,
    name: str,
    port: int,
    explicit: bool,
    taken: Sequence[Member],
    severity: Severity,
    code: str,
    message: str,
    subjects: tuple[str, ...],
) -> Finding:
    key = f"browser.profiles.{name}.cdpPort"
    if not explicit:  # the gateway's own allocation: dropped, then re-made from its range
        return Finding(
            severity,
            code,
            message + " (the gateway's own allocation)",
            subjects,
            fix=f"{member.cli} doctor --fix (drops the allocation; the gateway allocates "
            "another port from its range)",
            actions=(FixAction("move-cdp-port", member.instance.state_dir, browser_profile=name),),
        )
    new = free_cdp_port(member, taken)
    if new is None:
        return Finding(
            severity,
            code,
            message,
            subjects,
            fix=f"{member.cli} config unset {key} (or set another free port)",
        )
    return Finding(
        severity,
        code,
        message,
        subjects,
        fix=f"{member.cli} config set {key} {new}",
        actions=(
            FixAction(
                "move-cdp-port", member.instance.state_dir, port=new, key=key, browser_profile=name
            ),
        ),
    )


def free_cdp_port(
    member: Member, taken: Sequence[Member], promised: Iterable[int] = ()
) -> int | None:
    """The first port of ``member``'s own CDP range that no instance uses."""
    used = {p for m in taken for p in m.instance.used_ports} | set(promised)
    return next((p for p in member.instance.cdp_ports if p not in used), None)


def _range(r: range) -> str:
    return f"{r.start}-{r.stop - 1}"


def _port_mover(a: Member, b: Member) -> Member:
    """Move the instance that is not running, else the non-default one, else the later one."""
    return max(
        (a, b),
        key=lambda m: (
            not m.running,
            m.instance.profile not in ("default", "dev"),
            m.instance.profile != "default",
            m.instance.port,
        ),
    )


def free_port(member: Member, taken: Sequence[Member], extra_bases: Iterable[int] = ()) -> int:
    """A base port whose whole block is clear of every other instance's block (and of
    ``extra_bases``, ports already promised to other moves)."""
    extra = list(extra_bases)
    others = [m.instance for m in taken if m is not member]
    bases = [o.port for o in others] + extra
    used = [p for o in others for p in (*o.used_ports, *o.port_block)]
    used += [p for base in extra for p in range(base, base + ports.BLOCK_SIZE)]
    profile = member.instance.profile
    for name in (profile, f"{profile}-moved"):
        base = ports.choose_free_base(
            name if name not in ("default", "dev") else f"{name}-x", bases, used
        )
        if all(not ports.blocks_overlap(base, other) for other in bases):
            return base
    return base


def _cdp_url_findings(a: Member, b: Member) -> list[Finding]:
    """The same pinned Chrome on two instances (error), or one instance pinning a port
    of another (warning). Unpinning is automatic only for a loopback URL that points
    into the *other* instance's own ports: that Chrome is clearly not this one's."""
    findings = []
    urls_a, urls_b = cdp_urls(a), cdp_urls(b)
    for key_b, url_b in urls_b.items():
        for key_a, url_a in urls_a.items():
            if _norm_url(url_a) == _norm_url(url_b):
                owner = _url_owner(url_b, a, b)
                borrower, key = (b, key_b) if owner is not b else (a, key_a)
                actions = (
                    (FixAction("unset-key", borrower.instance.state_dir, key=key),)
                    if owner is not None
                    else ()
                )
                findings.append(
                    Finding(
                        "error",
                        "shared-cdp-url",
                        f"{a.label} ({key_a}) and {b.label} ({key_b}) both pin the Chrome at "
                        f"{url_b}: two gateways would drive one browser",
                        (a.label, b.label),
                        fix=f"{borrower.cli} config unset {key}",
                        actions=actions,
                    )
                )
    for mine, other in ((a, b), (b, a)):
        for key, url in cdp_urls(mine).items():
            port = _loopback_port(url)
            if port and port in set(other.instance.used_ports) | set(other.instance.cdp_ports):
                if any(_norm_url(url) == _norm_url(u) for u in cdp_urls(other).values()):
                    continue  # already reported as shared
                findings.append(
                    Finding(
                        "warning",
                        "cdp-url-into-other",
                        f"{mine.label} pins {key}={url}, a port of {other.label}",
                        (mine.label, other.label),
                        fix=f"{mine.cli} config unset {key}",
                        actions=(FixAction("unset-key", mine.instance.state_dir, key=key),),
                    )
                )
    return findings


def _url_owner(url: str, a: Member, b: Member) -> Member | None:
    """The one instance whose own ports (base, +2, +4, CDP range) contain a loopback URL's port."""
    port = _loopback_port(url)
    if port is None:
        return None
    owners = [m for m in (a, b) if port in set(m.instance.used_ports) | set(m.instance.cdp_ports)]
    return owners[0] if len(owners) == 1 else None


def cdp_urls(member: Member) -> dict[str, str]:
    config = member.config
    if config is None:
        return {}
    out = {}
    if config.browser.cdp_url:
        out["browser.cdpUrl"] = config.browser.cdp_url
    for name, profile in sorted(config.browser.profiles.items()):
        if profile.cdp_url:
            out[f"browser.profiles.{name}.cdpUrl"] = profile.cdp_url
    return out


def _norm_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host in ("localhost", "::1", "[::1]"):
        host = "127.0.0.1"
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    return f"{host}:{port}{parts.path.rstrip('/')}"


def _loopback_port(url: str) -> int | None:
    parts = urlsplit(url.strip())
    if (parts.hostname or "").lower() in ("127.0.0.1", "localhost", "::1"):
        return parts.port
    return None


def check_pairs(members: Sequence[Member]) -> list[Finding]:
    """:func:`check_pair` for every pair that can clash at all (see
    :func:`_pairs_in_reach`), in the order of ``itertools.combinations``."""
    findings = []
    for i, j in _pairs_in_reach(members):
        findings += check_pair(members[i], members[j], members)
    return findings


def _pairs_in_reach(members: Sequence[Member]) -> list[tuple[int, int]]:
    """The index pairs ``(i, j)``, ``i < j``, that :func:`check_pair` can find anything
    in: their port spans come within the seed's spacing of each other, one's config,
    state dir or workspace is (inside) one of the other's, or they pin the same Chrome.
    Every other pair is clear by construction, so the host check costs about one
    sort and one pass instead of a look at every pair (200 instances: 19,900 pairs)."""
    pairs: set[tuple[int, int]] = set()

    def add(i: int, j: int) -> None:
        if i != j:
            pairs.add((min(i, j), max(i, j)))

    spans = sorted((*_port_span(m.instance, cdp_urls(m)), i) for i, m in enumerate(members))
    open_spans: list[tuple[int, int]] = []  # (high end, index) of spans still in reach
    for low, high, i in spans:
        open_spans = [(h, j) for h, j in open_spans if h + ports.MIN_BASE_SPACING > low]
        for _, j in open_spans:
            add(i, j)
        open_spans.append((high, i))

    owners: dict[Path, list[int]] = {}
    for i, m in enumerate(members):
        inst = m.instance
        for path in {_real(inst.config_path), _real(inst.state_dir), _real(inst.workspace)}:
            owners.setdefault(path, []).append(i)
    for path, mine in owners.items():
        for ancestor in (path, *path.parents):
            for j in owners.get(ancestor, ()):
                for i in mine:
                    add(i, j)

    urls: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        for url in cdp_urls(m).values():
            urls.setdefault(_norm_url(url), []).append(i)
    for sharing in urls.values():
        for i, j in itertools.combinations(sharing, 2):
            add(i, j)
    return sorted(pairs)


def _port_span(instance: Instance, urls: Mapping[str, str]) -> tuple[int, int]:
    """Lowest and highest port the instance uses, may use, or points a Chrome at."""
    pinned = [p for p in (_loopback_port(u) for u in urls.values()) if p]
    block, cdp = instance.port_block, instance.cdp_ports
    every = (*instance.used_ports, *pinned, block.start, block.stop - 1, cdp.start, cdp.stop - 1)
    return min(every), max(every)


def check_service_files(files: Iterable[ServiceFile], members: Sequence[Member]) -> list[Finding]:
    """Legacy clawdbot services beside ours; service files pointing at things that are gone."""
    files = list(files)
    findings = []
    ours = [f for f in files if not f.legacy]
    for legacy in (f for f in files if f.legacy):
        state = legacy.command.state_dir if legacy.command else None
        twins = [
            f
            for f in ours
            if f.command
            and state
            and f.command.state_dir
            and _same(Path(f.command.state_dir), Path(state))
        ]
        if twins or (
            state is None
            and any(f.name.startswith(("moltbot-gateway.", "bot.molt.gateway")) for f in ours)
        ):
            twin = twins[0].name if twins else "the default moltbot service"
            severity: Severity = "error"
            message = (
                f"legacy service {legacy.name} runs the same instance as {twin}: "
                "both would start a gateway on the same state and port"
            )
        elif ours:
            severity = "warning"
            message = f"legacy service {legacy.name} is installed beside moltbot services"
        else:
            severity = "warning"
            message = f"legacy service {legacy.name} is installed (from clawdbot)"
        findings.append(
            Finding(
                severity,
                "legacy-service",
                message,
                (str(legacy.path),),
                fix=" && ".join(legacy.removal),
            )
        )
    for file in ours:
        command = file.command
        if command is None:
            findings.append(
                Finding(
                    "warning",
                    "service-unreadable",
                    f"cannot read service file {file.path}",
                    (str(file.path),),
                    fix=" && ".join(file.removal),
                )
            )
            continue
        interpreter = command.interpreter or ""
        state = command.state_dir
        if state and not Path(state).is_dir():
            findings.append(
                Finding(
                    "error",
                    "service-orphaned",
                    f"service {file.name} runs an instance whose state dir {state} "
                    "no longer exists",
                    (str(file.path),),
                    fix=" && ".join(file.removal),
                )
            )
        elif not (os.path.isabs(interpreter) and os.access(interpreter, os.X_OK)):
            owner = next(
                (m for m in members if state and _same(m.instance.state_dir, Path(state))), None
            )
            fix = f"{owner.cli} gateway install --force" if owner else " && ".join(file.removal)
            actions = (FixAction("reinstall-service", owner.instance.state_dir),) if owner else ()
            findings.append(
                Finding(
                    "error",
                    "service-interpreter-missing",
                    f"service {file.name} runs {interpreter or '(nothing)'}, "
                    "which no longer exists",
                    (str(file.path),),
                    fix=fix,
                    actions=actions,
                )
            )
    return findings


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    unique: dict[tuple[str, tuple[str, ...], str], Finding] = {}
    for finding in findings:
        unique.setdefault((finding.code, finding.subjects, finding.message), finding)
    return sorted(unique.values(), key=lambda f: SEVERITY_ORDER[f.severity])
