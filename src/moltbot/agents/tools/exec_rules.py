"""Per-binary argument rules of ``exec``'s allowlist mode.

A binary runs in allowlist mode only if it is listed in ``tools.exec.allowlist``
**and** has a :class:`Rule` here: moltbot can only vouch for a command whose
options it knows. Each rule refuses the options that make the binary run
another program or write somewhere (``find -exec``, ``sort -o``, ``rg --pre``,
...), and every other argument that could name a file is checked against the
workspace (see :func:`moltbot.agents.tools.exec_policy.plan`).

Options are read the way GNU ``getopt`` reads them, erring towards refusal:
short options may be clustered (``-rno/tmp/x``), a long option may be
abbreviated (``--out`` is ``--output``), options may follow operands. An
argument that only *might* be a refused option is refused; a refusal goes to
the approval path, so the cost of a false alarm is a question, never a hole.

The rules are written for GNU coreutils, findutils, grep, sed, file, jq,
ripgrep and tree; other implementations of the same names get the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    paths: bool = True
    """Operands and option values may name files: each must stay in the workspace."""
    refuse_short: str = ""
    """Short option letters refused wherever they appear in a cluster."""
    refuse_long: tuple[str, ...] = ()
    """Long options refused, with any abbreviation of them."""
    refuse_words: tuple[str, ...] = ()
    """Whole arguments refused (``find``'s single-dash primaries)."""
    text_short: str = ""
    """Short options whose value is text, not a file (``cut -d/``): not path-checked."""
    text_long: tuple[str, ...] = ()
    """Long options whose value is text, not a file."""
    getopt: bool = True
    """Arguments are getopt-style options; False: ``find``-style words."""
    walks: bool = False
    """It may descend into directories (``find``, ``grep -r``, ...): without the OS
    sandbox, a directory holding a protected place needs an approval."""
    max_operands: int | None = None
    """At most this many operands (``uniq`` IN [OUT]: an OUT operand writes a file)."""
    prepend: tuple[str, ...] = ()
    """Options always added first (``sed --sandbox``)."""
    check: Callable[[Sequence[str]], str | None] | None = None
    """Extra check of the arguments: why they are refused, or None."""
    why: str = ""
    """What is refused and why, for the README and the error message."""


def _jq_program(args: Sequence[str]) -> str | None:
    for arg in args:
        if re.search(r"\b(import|include)\b", arg):
            return "jq modules (import/include) read files from outside the workspace"
    return None


_DEREFERENCE = ("--dereference",)

RULES: dict[str, Rule] = {
    "ls": Rule(walks=True, refuse_short="L", refuse_long=_DEREFERENCE, why="-L follows symlinks"),
    "cat": Rule(),
    "head": Rule(),
    "tail": Rule(),
    "wc": Rule(refuse_long=("--files0-from",), why="--files0-from reads names from a file"),
    "grep": Rule(
        walks=True,
        refuse_short="R",
        refuse_long=("--dereference-recursive",),
        text_short="e",
        text_long=("--regexp",),
        why="-R follows symlinks",
    ),
    "rg": Rule(
        walks=True,
        refuse_short="zL",
        refuse_long=("--pre", "--pre-glob", "--search-zip", "--follow", "--hostname-bin"),
        text_short="er",
        text_long=("--regexp", "--replace"),
        prepend=("--no-config",),
        why="--pre, --hostname-bin and -z run programs; -L follows symlinks",
    ),
    "find": Rule(
        getopt=False,
        walks=True,
        refuse_words=(
            "-exec",
            "-execdir",
            "-ok",
            "-okdir",
            "-delete",
            "-fprint",
            "-fprint0",
            "-fprintf",
            "-fls",
            "-L",
            "-H",
            "-follow",
            "-files0-from",
        ),
        why="-exec/-execdir/-ok/-okdir run programs; -delete and -fprint*/-fls write; "
        "-L/-H/-follow follow symlinks",
    ),
    "echo": Rule(paths=False),
    "pwd": Rule(),
    "date": Rule(refuse_short="s", refuse_long=("--set",), why="-s sets the clock"),
    "sort": Rule(
        refuse_short="oT",
        refuse_long=("--output", "--temporary-directory", "--compress-program", "--files0-from"),
        text_short="t",
        text_long=("--field-separator",),
        why="-o writes a file; -T and --compress-program write temp files elsewhere or run "
        "a program",
    ),
    "uniq": Rule(max_operands=1, why="a second operand is an output file"),
    "diff": Rule(
        walks=True,
        refuse_short="rNP",
        refuse_long=("--recursive", "--new-file", "--unidirectional-new-file"),
        why="-r/-N/-P read through symlinks inside directories",
    ),
    "cut": Rule(text_short="d", text_long=("--delimiter", "--output-delimiter")),
    "tr": Rule(paths=False),
    "stat": Rule(text_short="c", text_long=("--format", "--printf")),
    "file": Rule(
        refuse_short="CzZf",
        refuse_long=("--compile", "--uncompress", "--uncompress-noreport", "--files-from"),
        why="-C writes a magic file; -z/-Z run decompressors; -f reads names from a file",
    ),
    "du": Rule(
        walks=True,
        refuse_short="L",
        refuse_long=(*_DEREFERENCE, "--files0-from"),
        why="-L follows symlinks; --files0-from reads names from a file",
    ),
    "df": Rule(),
    "uname": Rule(paths=False),
    "which": Rule(),
    "true": Rule(paths=False),
    "false": Rule(paths=False),
    "basename": Rule(paths=False),
    "dirname": Rule(paths=False),
    "realpath": Rule(),
    "sha256sum": Rule(refuse_short="c", refuse_long=("--check",), why="-c reads names from a file"),
    "md5sum": Rule(refuse_short="c", refuse_long=("--check",), why="-c reads names from a file"),
    "tree": Rule(
        walks=True,
        refuse_short="oRl",
        refuse_long=("--fromfile",),
        text_short="PI",
        why="-o and -R write files; -l follows symlinks",
    ),
    "jq": Rule(
        refuse_short="L",
        refuse_long=("--library-path",),
        check=_jq_program,
        why="-L and import/include load modules from elsewhere",
    ),
    "sed": Rule(
        refuse_short="i",
        refuse_long=("--in-place",),
        prepend=("--sandbox",),
        why="-i rewrites files; run with --sandbox, which refuses the e, r and w commands",
    ),
}
"""Binaries allowlist mode can vouch for (``tools.exec.allowlist`` may name fewer)."""

DEFAULT_ALLOWLIST = tuple(name for name in RULES if name != "sed")

NEVER: dict[str, str] = {
    **dict.fromkeys(
        ("sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "busybox"),
        "a shell runs any command",
    ),
    **dict.fromkeys(
        (
            "env",
            "xargs",
            "nice",
            "nohup",
            "timeout",
            "stdbuf",
            "setsid",
            "sudo",
            "su",
            "doas",
            "chroot",
            "unshare",
            "nsenter",
            "flock",
            "watch",
            "strace",
            "ltrace",
            "gdb",
            "time",
            "parallel",
            "script",
            "systemd-run",
        ),
        "it runs another command",
    ),
    **dict.fromkeys(
        (
            "python",
            "python3",
            "perl",
            "ruby",
            "node",
            "nodejs",
            "deno",
            "bun",
            "php",
            "lua",
            "tclsh",
            "awk",
            "gawk",
            "mawk",
            "nawk",
        ),
        "it is a programming language (system(), file I/O)",
    ),
    "git": "a repository's own config (hooks, core.fsmonitor, filters, core.pager) runs "
    "commands, and the agent can write .git/config",
    "tar": "it writes files anywhere and runs programs (--to-command, -I, --checkpoint-action)",
    "make": "a Makefile runs commands",
    **dict.fromkeys(
        ("less", "more", "man", "vi", "vim", "nvim", "ed", "ex", "emacs", "nano"),
        "it has shell escapes",
    ),
}
"""Why some often-listed binaries are never run without an approval."""


def long_matches(given: str, names: Sequence[str]) -> bool:
    """Whether ``--given`` is one of ``names`` or an abbreviation getopt would expand."""
    return len(given) > 2 and any(name.startswith(given) for name in names)
