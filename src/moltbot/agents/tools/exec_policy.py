"""What ``exec`` may run without an approval (``tools.exec.security: allowlist``).

:func:`plan` turns a model's command line into an argv it can vouch for, or
raises :class:`NeedsApproval` saying why it cannot:

1. one command, split like a shell would but run without one: ``;``, ``&&``,
   ``|``, redirects, ``$( )`` and newlines need an approval;
2. the command name must be listed in ``tools.exec.allowlist`` and have a rule
   in :data:`~.exec_rules.RULES`; it is looked up on the **gateway's** PATH
   (relative entries and entries inside the workspace or a protected place are
   skipped), never on a PATH the model supplies;
3. the arguments pass the binary's rule (refused options, operand count);
4. every argument that could name a file (operands, option values, the tail
   of a short-option cluster) resolves inside the workspace and outside every
   protected place (:mod:`.confine`), and an existing file it names is not a
   hard link (``st_nlink > 1``).

:func:`child_env` builds the child's environment: the gateway's, without
identity and secret-looking variables, with the cleaned PATH; variables the
model adds must not be secret-looking, identity or loader/interpreter
variables (:data:`FORBIDDEN_ENV`), which are refused, not dropped.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moltbot.agents.tools.base import ToolError
from moltbot.agents.tools.confine import Confinement
from moltbot.agents.tools.exec_rules import NEVER, RULES, Rule, long_matches
from moltbot.instance.env import without_identity
from moltbot.safepath import inside

_PUNCT = set("();<>|&")
_SECRET = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|SECRETS|PASSWORD|PASSWD|PASS|CREDENTIALS?|PRIVATE_KEY|"
    r"ACCESS_KEY|AUTH)(_|$)",
    re.IGNORECASE,
)
_PREFIXES = ("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_")
FORBIDDEN_ENV = re.compile(
    r"^(PATH|LD_.*|DYLD_.*|GCONV_PATH|GLIBC_TUNABLES|MALLOC_.*|LOCPATH|NLSPATH|HOSTALIASES|"
    r"RES_OPTIONS|LOCALDOMAIN|BASH_ENV|ENV|IFS|CDPATH|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|"
    r"BASH_FUNC_.*|SHELL|PYTHON.*|PERL5.*|PERLLIB|PERL_.*|RUBY.*|GEM_.*|NODE_.*|NPM_.*|"
    r"JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS|CLASSPATH|LUA_.*|PHP.*|TCL.*|GIT_.*|"
    r"LESS.*|PAGER|MANPAGER|MANOPT|EDITOR|VISUAL|BROWSER|RIPGREP_CONFIG_PATH|AWKPATH|"
    r"AWKLIBPATH|GREP_OPTIONS|TMPDIR|TMP|TEMP|HOME|XDG_.*|MAGIC|TERMINFO.*|TERMCAP|SSH_.*|"
    r"SUDO_.*|PWD|OLDPWD|POSIXLY_CORRECT)$",
    re.IGNORECASE,
)
"""Variables the model may not set in allowlist mode: they load code, change which
program runs, or move where a listed binary reads or writes."""
_PATHLIKE_ENV = re.compile(r"^(LANG|LANGUAGE|LC_.*|TZ)$", re.IGNORECASE)


class NeedsApproval(ToolError):
    """The command may be harmless, but moltbot cannot show it; an operator must approve."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Plan:
    argv: list[str]
    """What to execute: the resolved binary, then the (possibly extended) arguments."""
    name: str
    """The allowlisted name whose rule applied."""


def split_command(command: str) -> list[str]:
    """The words of ``command`` as a POSIX shell would split them (no expansion)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as exc:
        raise ToolError(f"cannot parse the command: {exc}") from None
    if not words:
        raise ToolError("command must not be empty")
    if any(word and set(word) <= _PUNCT for word in words) or "\n" in command:
        raise NeedsApproval(
            "allowlist mode runs a single command without a shell: ;, &&, ||, |, "
            "redirects, $( ) and newlines are not allowed"
        )
    return words


def search_path(env: Mapping[str, str], box: Confinement) -> str:
    """The gateway's PATH without relative entries or entries the agent could write."""
    keep: list[str] = []
    for entry in env.get("PATH", os.defpath).split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        real = Path(os.path.realpath(entry))
        if inside(real, box.root) or any(inside(real, p) for p in box.protected):
            continue
        if entry not in keep:
            keep.append(entry)
    return os.pathsep.join(keep) or os.defpath


def plan(
    command: str,
    allowlist: Sequence[str],
    path: str,
    cwd: Path,
    box: Confinement,
    *,
    sandboxed: bool = False,
) -> Plan:
    """The argv to run for ``command``; raises :class:`NeedsApproval` or :class:`ToolError`.

    ``sandboxed``: the command will run in the OS sandbox, which hides the
    protected places, so a binary that walks directories may walk one holding them.
    """
    words = split_command(command)
    listed = {os.path.basename(entry): entry for entry in allowlist if entry}
    name = _listed_name(words[0], listed, path)
    rule = RULES[name]
    args = words[1:]
    scan = _scan(rule, args)
    because = f" ({rule.why})" if rule.why else ""
    if scan.refused:
        raise NeedsApproval(f"{name}: {scan.refused} is refused{because}")
    if rule.max_operands is not None and scan.operands > rule.max_operands:
        raise NeedsApproval(f"{name}: at most {rule.max_operands} file operand(s){because}")
    why = rule.check(args) if rule.check else None
    if why:
        raise NeedsApproval(f"{name}: {why}")
    candidates = scan.candidates if rule.paths else []
    for candidate in candidates:
        problem = _path_problem(candidate, cwd, box)
        if problem:
            raise NeedsApproval(f"{name}: argument {candidate!r} {problem}")
    if rule.walks and not sandboxed:
        for place in (".", *candidates):
            holds = _holds_protected(box.locate(place, cwd), box)
            if holds:
                raise NeedsApproval(
                    f"{name}: {place!r} holds {holds}, and no OS sandbox hides it "
                    "(tools.exec.sandbox)"
                )
    binary = _which(listed[name], path)
    if binary is None:
        raise ToolError(f"{name}: command not found on the gateway's PATH")
    return Plan([binary, *rule.prepend, *args], name)


def _listed_name(word: str, listed: Mapping[str, str], path: str) -> str:
    """The allowlisted name ``word`` stands for (it must have a rule)."""
    name = os.path.basename(word)
    if "/" in word:
        entry = listed.get(name)
        found = _which(entry, path) if entry else None
        if found is None or os.path.realpath(word) != os.path.realpath(found):
            raise NeedsApproval(
                f"{word}: give a listed command by name (looked up on the gateway's PATH)"
            )
    elif name not in listed:
        reason = f" ({NEVER[name]})" if name in NEVER else ""
        raise NeedsApproval(
            f"{name} is not in tools.exec.allowlist{reason}; allowed: " + ", ".join(sorted(listed))
        )
    if name not in RULES:
        reason = NEVER.get(name, "moltbot has no argument rules for it")
        raise NeedsApproval(f"{name} cannot run without an approval: {reason}")
    return name


def _which(entry: str, path: str) -> str | None:
    if os.path.isabs(entry):
        return entry if os.access(entry, os.X_OK) and os.path.isfile(entry) else None
    if "/" in entry:
        return None
    return shutil.which(entry, path=path)


@dataclass
class _Scan:
    refused: str | None = None
    """The first refused option, as written."""
    operands: int = 0
    candidates: list[str] = field(default_factory=list)
    """Every argument, or part of one, the binary could take as a file name: each
    argument (but text values such as ``cut -d/``), the value of ``--opt=value``,
    and every tail of a short-option cluster (``-f/etc/x`` → ``/etc/x``)."""


def _scan(rule: Rule, args: Sequence[str]) -> _Scan:
    """Read ``args`` as getopt would (clusters, abbreviations, permutation, ``--``)."""
    out = _Scan()
    skip_next = ended = False
    for arg in args:
        if skip_next:  # the text value of the option before (a pattern, a delimiter)
            skip_next = False
            continue
        if arg in ("", "-"):
            out.operands += arg == "-"
            continue
        out.candidates.append(arg)
        if not rule.getopt:
            if arg in rule.refuse_words and out.refused is None:
                out.refused = arg
            continue
        if ended or not arg.startswith("-"):
            out.operands += 1
        elif arg == "--":
            ended = True
        elif arg.startswith("--"):
            given, eq, value = arg.partition("=")
            if long_matches(given, rule.refuse_long) and out.refused is None:
                out.refused = given
            text = long_matches(given, rule.text_long)
            if eq and not text:
                out.candidates.append(value)
            skip_next = not eq and text
        else:
            for index, letter in enumerate(arg[1:], start=1):
                if letter in rule.refuse_short and out.refused is None:
                    out.refused = f"-{letter}"
                if letter in rule.text_short:
                    skip_next = index == len(arg) - 1
                    break
                if arg[index + 1 :]:
                    out.candidates.append(arg[index + 1 :])
    return out


def _holds_protected(directory: Path, box: Confinement) -> str | None:
    if not directory.is_dir():
        return None
    for place in box.protected:
        if place != directory and inside(place, directory) and place.exists():
            return f"a moltbot state dir, config or another instance's workspace ({place.name})"
    return None


def _path_problem(raw: str, cwd: Path, box: Confinement) -> str | None:
    real = box.locate(raw, cwd)
    why = box.violation(real)
    if why:
        return f"is {why}"
    try:
        info = os.stat(real)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        return f"names a file with {info.st_nlink} hard links (another name may be outside)"
    return None


def with_skill_env(env: dict[str, str], skill_env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the variables configured for skills (``skills.entries.<key>.env``:
    the operator's, so secrets pass), never identity variables nor ones that load code
    or move where programs are found (:data:`FORBIDDEN_ENV`)."""
    for key, value in skill_env.items():
        if key.upper().startswith(_PREFIXES) or FORBIDDEN_ENV.match(key) or key == "PATH":
            continue
        env[key] = value
    return env


def child_env(
    env: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
    path: str | None = None,
) -> dict[str, str]:
    """The environment a tool's child process gets (see the module docstring).

    ``strict`` (allowlist mode) also refuses :data:`FORBIDDEN_ENV` and locale or
    time zone values that are paths; ``path`` replaces the gateway's PATH.
    """
    clean = {
        k: v
        for k, v in without_identity(env).items()
        if not _SECRET.search(k) and not k.startswith(_PREFIXES)
    }
    refused: list[str] = []
    for key, value in (extra or {}).items():
        if _SECRET.search(key) or key.upper().startswith(_PREFIXES):
            raise ToolError(f"env {key}: secret-looking and identity variables cannot be set")
        if strict and (FORBIDDEN_ENV.match(key) or (_PATHLIKE_ENV.match(key) and "/" in value)):
            refused.append(key)
    if refused:
        raise NeedsApproval(
            f"env {', '.join(refused)}: variables that load code or change which program "
            "runs or where it reads and writes (PATH, LD_*, PYTHON*, TMPDIR, ...) cannot be "
            "set in allowlist mode"
        )
    clean.update(extra or {})
    clean["PATH"] = path or clean.get("PATH") or os.defpath
    return clean


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether an approved-executable ``pattern`` (exec approvals file: a path glob with
    ``*`` inside one component and ``**`` across; a bare name matches that file name
    in any directory) matches the executable ``path``."""
    pattern = pattern.strip()
    if not pattern or not path:
        return False
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    regex = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex.append(".*")
            i += 2
        elif pattern[i] == "*":
            regex.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            regex.append("[^/]")
            i += 1
        else:
            regex.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(regex), path) is not None
