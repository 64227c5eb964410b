"""Run the real systemd tools on generated units.

- :func:`verify` runs ``systemd-analyze --user verify`` (the unit must produce no
  diagnostics at all, not just exit 0: systemd reports many mistakes as warnings).
- :func:`systemd_parse` asks systemd itself how it parsed a unit: ``systemd
  --test --user`` dumps the loaded unit, including the ExecStart command line and
  every Environment= assignment after unquoting and specifier expansion.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SYSTEMD = "/lib/systemd/systemd"


def verify(unit: Path, home: Path) -> subprocess.CompletedProcess[str]:
    runtime = Path(tempfile.mkdtemp(prefix="xdg-runtime-"))
    runtime.chmod(0o700)
    try:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "SYSTEMD_LOG_LEVEL": "notice",
        }
        return subprocess.run(
            ["systemd-analyze", "--user", "verify", str(unit)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def can_dump() -> bool:
    if not Path(SYSTEMD).exists():
        return False
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


def systemd_parse(unit: Path) -> tuple[list[str], dict[str, str]]:
    """(argv before exec-time ``$`` expansion, environment) as systemd parsed ``unit``."""
    workdir = Path(tempfile.mkdtemp(prefix="unit-dump-"))
    try:
        workdir.chmod(0o755)
        units = workdir / "units"
        units.mkdir(mode=0o755)
        shutil.copy(unit, units / unit.name)
        (units / unit.name).chmod(0o644)
        runtime = workdir / "runtime"
        runtime.mkdir(mode=0o700)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(workdir),
            "XDG_RUNTIME_DIR": str(runtime),
            "SYSTEMD_UNIT_PATH": f"{units}:",
        }
        argv = [
            SYSTEMD,
            "--test",
            "--user",
            f"--unit={unit.name}",
            "--no-pager",
            "--log-target=console",
            "--log-level=err",
        ]
        if os.geteuid() == 0:  # systemd refuses test mode as root
            os.chown(runtime, 65534, 65534)
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        out = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    block = out.split(f"-> Unit {unit.name}:", 1)[1].split("\n\t-> Unit ", 1)[0]
    command: list[str] | None = None
    environment: dict[str, str] = {}
    lines = block.splitlines()
    for index, line in enumerate(lines):
        text = line.strip()
        if text.startswith("Environment: "):
            key, _, value = text[len("Environment: ") :].partition("=")
            environment[key] = value
        elif text == "-> ExecStart:" and command is None:
            command_line = lines[index + 1].strip()
            assert command_line.startswith("Command Line: "), command_line
            command = split_dumped(command_line[len("Command Line: ") :])
    assert command is not None, block
    return command, environment


def split_dumped(text: str) -> list[str]:
    r"""Split systemd's dumped command line (its quote_command_line: shell-style
    double quotes with ``\\``, ``\"``, ``\$`` and ``\``` escapes)."""
    words: list[str] = []
    current: list[str] = []
    in_word = in_quotes = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_quotes:
            if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$`':
                current.append(text[i + 1])
                i += 2
                continue
            if char == '"':
                in_quotes = False
            else:
                current.append(char)
        elif char == '"':
            in_quotes = in_word = True
        elif char in " \t":
            if in_word:
                words.append("".join(current))
            current, in_word = [], False
        else:
            current.append(char)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(current))
    return words


def exec_time(argv: list[str], env: dict[str, str]) -> list[str]:
    """Apply what happens at exec time: systemd turns ``$$`` into ``$`` in arguments
    (we never use ``$VAR``); ``/usr/bin/env PATH ARGS`` runs PATH with ARGS."""
    words = argv[:1] + [arg.replace("$$", "$") for arg in argv[1:]]
    if words[0] == "/usr/bin/env" and len(words) > 1 and words[1].startswith("/"):
        words = words[1:]  # env execs its first argument, unchanged
    return words
