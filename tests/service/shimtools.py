"""A recording shim for systemctl / loginctl / launchctl / schtasks.

Real executables, placed first on PATH, that append their argv to
``calls.jsonl`` and behave like the real tools for the verbs moltbot uses:
they keep state (enabled / active / loaded units), refuse to enable a unit whose
file does not exist, reject unknown verbs and a missing ``--user``, and can be
told to fail any call (``Shim.fail``) or to have no bus (``Shim.no_bus``).
They never "always succeed": what a test asserts is what a real manager would do.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

TOOLS = ("systemctl", "loginctl", "launchctl", "schtasks")

SCRIPT = r"""#!{python}
import json, os, plistlib, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOL = Path(sys.argv[0]).name
ARGS = sys.argv[1:]
with open(HERE / "calls.jsonl", "a") as f:
    f.write(json.dumps([TOOL, *ARGS]) + "\n")
state_file = HERE / "state.json"
state = json.loads(state_file.read_text()) if state_file.exists() else {{}}

def done(rc=0, out="", err=""):
    state_file.write_text(json.dumps(state))
    sys.stdout.write(out); sys.stderr.write(err)
    sys.exit(rc)

for rule in state.get("rules", []):
    if rule["tool"] == TOOL and ARGS[:len(rule["argv"])] == rule["argv"]:
        done(rule["rc"], rule.get("stdout", ""), rule.get("stderr", ""))

home = Path(os.environ.get("HOME", "/nonexistent"))

if TOOL == "systemctl":
    if not ARGS or ARGS[0] != "--user":
        done(1, err="shim: systemctl must be called with --user first\n")
    args = ARGS[1:]
    if state.get("no_bus"):
        if args and args[0] == "is-enabled":
            pass  # works offline, from the unit files
        else:
            done(1, err="Failed to connect to bus: No medium found\n")
    units = state.setdefault("units", {{}})
    unit_dir = home / ".config" / "systemd" / "user"
    verb, rest = (args[0], args[1:]) if args else ("", [])
    def unit_arg(r):
        names = [a for a in r if not a.startswith("-")]
        if len(names) != 1 or not names[0].endswith(".service"):
            done(1, err=f"shim: expected exactly one unit name, got {{r}}\n")
        return names[0]
    if verb == "show" and rest == ["--property=Version"]:
        done(0, "Version=252\n")
    if verb == "daemon-reload" and not rest:
        state["reloaded"] = sorted(p.name for p in unit_dir.glob("*.service"))
        done(0)
    if verb in ("enable", "start", "restart", "stop", "disable", "is-enabled", "show",
                "reset-failed"):
        name = unit_arg(rest)
        exists = (unit_dir / name).is_file()
        u = units.setdefault(name, {{"enabled": False, "active": False}})
        known = name in state.get("reloaded", [])
        if verb == "enable":
            if not exists:
                done(1, err=f"Failed to enable unit: Unit file {{name}} does not exist.\n")
            u["enabled"] = True
            done(0, err=f"Created symlink {{unit_dir}}/default.target.wants/{{name}}\n")
        if verb in ("start", "restart"):
            if not exists or not known:
                done(5, err=f"Failed to {{verb}} {{name}}: Unit {{name}} not found.\n")
            u["active"] = True
            done(0)
        if verb == "stop":
            if not exists and not u["active"]:
                done(5, err=f"Failed to stop {{name}}: Unit {{name}} not loaded.\n")
            u["active"] = False
            done(0)
        if verb == "disable":
            if "--now" in rest:
                u["active"] = False
            if not exists and not u["enabled"]:
                done(1, err=f"Failed to disable unit: Unit file {{name}} does not exist.\n")
            u["enabled"] = False
            done(0, err=f"Removed {{unit_dir}}/default.target.wants/{{name}}.\n")
        if verb == "is-enabled":
            if not exists:
                done(1, err=f"Failed to get unit file state for {{name}}: "
                     "No such file or directory\n")
            done(0 if u["enabled"] else 1, "enabled\n" if u["enabled"] else "disabled\n")
        if verb == "show":
            active = u["active"]
            done(0, "\n".join([
                f"LoadState={{'loaded' if exists else 'not-found'}}",
                f"ActiveState={{'active' if active else 'inactive'}}",
                f"SubState={{'running' if active else 'dead'}}",
                f"MainPID={{4242 if active else 0}}",
                "ExecMainStatus=0", ""]))
        if verb == "reset-failed":
            done(0)
    done(1, err=f"shim: unsupported systemctl call {{ARGS}}\n")

if TOOL == "loginctl":
    if ARGS[:1] == ["show-user"] and ARGS[2:] == ["--property=Linger", "--value"]:
        done(0, state.get("linger", "no") + "\n")
    if ARGS[:1] == ["enable-linger"] and len(ARGS) == 2:
        state["linger"] = "yes"
        done(0)
    done(1, err=f"shim: unsupported loginctl call {{ARGS}}\n")

if TOOL == "launchctl":
    loaded = state.setdefault("loaded", {{}})
    uid = str(os.getuid())
    domain = f"gui/{{uid}}"
    verb, rest = (ARGS[0], ARGS[1:]) if ARGS else ("", [])
    def label_of(target):
        if not target.startswith(domain + "/"):
            done(1, err=f"shim: bad service target {{target}}\n")
        return target[len(domain) + 1:]
    if verb == "print" and len(rest) == 1:
        label = label_of(rest[0])
        if label not in loaded:
            done(113, err=f"Could not find service \"{{label}}\" in domain for port\n")
        body = "\tstate = running\n\tpid = 4343\n\tlast exit code = 0\n"
        done(0, f"{{rest[0]}} = {{{{\n{{body}}}}}}\n")
    if verb == "bootstrap" and len(rest) == 2 and rest[0] == domain:
        path = Path(rest[1])
        if not path.is_file():
            done(5, err="Bootstrap failed: 5: Input/output error\n")
        label = plistlib.loads(path.read_bytes())["Label"]
        if label in loaded:
            done(5, err="Bootstrap failed: 5: Input/output error\n")
        loaded[label] = str(path)
        done(0)
    if verb == "bootout" and len(rest) == 1:
        label = label_of(rest[0])
        if label not in loaded:
            done(3, err="Boot-out failed: 3: No such process\n")
        del loaded[label]
        done(0)
    if verb == "enable" and len(rest) == 1:
        label_of(rest[0])
        done(0)
    if verb == "kickstart" and rest and len([a for a in rest if a != "-k"]) == 1:
        label = label_of(rest[-1])
        if label not in loaded:
            done(113, err=f"Could not find service \"{{label}}\" in domain for port\n")
        done(0)
    done(1, err=f"shim: unsupported launchctl call {{ARGS}}\n")

if TOOL == "schtasks":
    tasks = state.setdefault("tasks", {{}})
    def tn():
        if "/TN" not in ARGS or ARGS.index("/TN") + 1 >= len(ARGS):
            done(1, err="ERROR: Invalid syntax. /TN is required.\n")
        return ARGS[ARGS.index("/TN") + 1]
    verb = ARGS[0] if ARGS else ""
    if verb == "/Create":
        name = tn()
        xml = Path(ARGS[ARGS.index("/XML") + 1]) if "/XML" in ARGS else None
        if xml is None or not xml.is_file():
            done(1, err="ERROR: The system cannot find the file specified.\n")
        if name in tasks and "/F" not in ARGS:
            done(1, err=f"WARNING: The task name \"{{name}}\" already exists.\n")
        tasks[name] = {{"running": False}}
        done(0, f"SUCCESS: The scheduled task \"{{name}}\" has successfully been created.\n")
    if verb in ("/Run", "/End", "/Delete", "/Query"):
        name = tn()
        if name not in tasks:
            done(1, err="ERROR: The system cannot find the file specified.\n")
        if verb == "/Run":
            tasks[name]["running"] = True
        elif verb == "/End":
            tasks[name]["running"] = False
        elif verb == "/Delete":
            if "/F" not in ARGS:
                done(1, err="shim: /Delete needs /F in scripts\n")
            del tasks[name]
        else:
            status = "Running" if tasks[name]["running"] else "Ready"
            done(0, f"TaskName: \\{{name}}\nStatus: {{status}}\nLast Result: 0\n")
        done(0, "SUCCESS\n")
    done(1, err=f"shim: unsupported schtasks call {{ARGS}}\n")
"""


class Shim:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        text = SCRIPT.format(python=sys.executable)
        for tool in TOOLS:
            path = directory / tool
            path.write_text(text)
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self._write({})

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def _read(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def _write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    @property
    def state(self) -> dict[str, Any]:
        return self._read()

    def update(self, **values: Any) -> None:
        state = self._read()
        state.update(values)
        self._write(state)

    def fail(
        self, tool: str, argv: list[str], rc: int = 1, stderr: str = "failed\n", stdout: str = ""
    ) -> None:
        """Make every call of ``tool`` whose arguments start with ``argv`` fail."""
        state = self._read()
        state.setdefault("rules", []).append(
            {"tool": tool, "argv": argv, "rc": rc, "stderr": stderr, "stdout": stdout}
        )
        self._write(state)

    def no_bus(self) -> None:
        self.update(no_bus=True)

    def calls(self, tool: str | None = None) -> list[list[str]]:
        log = self.dir / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return [c for c in calls if tool is None or c[0] == tool]

    def clear_calls(self) -> None:
        (self.dir / "calls.jsonl").unlink(missing_ok=True)

    def path_env(self, base: str | None = None) -> str:
        return os.pathsep.join([str(self.dir), base if base is not None else os.environ["PATH"]])
