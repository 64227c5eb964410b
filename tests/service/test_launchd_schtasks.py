from __future__ import annotations

import plistlib
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from moltbot.instance import Invocation, resolve_identity
from moltbot.instance.setup import setup_instance
from moltbot.service.launchd import REQUIRED_KEYS, read_plist, render_plist
from moltbot.service.schtasks import (
    TASK_NS,
    quote_cmd_arg,
    read_script,
    render_script,
    render_task_xml,
    split_cmd_line,
)
from moltbot.service.spec import build_spec


def make_instance(home: Path, profile: str | None):
    env = {"HOME": str(home)}
    return setup_instance(resolve_identity(Invocation(profile=profile), env, home), env).instance


ODD_PYTHON = "/Users/o'brien & co/100% <py>/bin/python3"


@pytest.mark.parametrize("profile", [None, "rescue"])
def test_plist_round_trips_with_required_keys(
    home: Path, tmp_path: Path, profile: str | None
) -> None:
    instance = make_instance(home, profile)
    spec = build_spec(instance, platform="darwin", python=ODD_PYTHON)
    data = plistlib.loads(render_plist(spec))
    for key in REQUIRED_KEYS:
        assert key in data, key
    assert data["Label"] == ("bot.molt.gateway" if profile is None else "bot.molt.rescue")
    assert data["ProgramArguments"] == [
        ODD_PYTHON,
        "-m",
        "moltbot",
        "gateway",
        "--port",
        str(instance.port),
    ]
    assert all(isinstance(arg, str) for arg in data["ProgramArguments"])
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    env = data["EnvironmentVariables"]
    assert env["CLAWDBOT_STATE_DIR"] == str(instance.state_dir)
    assert env["CLAWDBOT_CONFIG_PATH"] == str(instance.config_path)
    assert env["CLAWDBOT_GATEWAY_PORT"] == str(instance.port)
    assert env["CLAWDBOT_SERVICE_MARKER"] == "moltbot"
    assert not any("TOKEN" in k or "PASSWORD" in k for k in env)
    assert Path(data["StandardErrorPath"]).parent == instance.logs_dir
    path = tmp_path / f"{data['Label']}.plist"
    path.write_bytes(render_plist(spec))
    parsed = read_plist(path)
    assert parsed is not None and list(parsed.program) == data["ProgramArguments"]
    assert parsed.port == instance.port and parsed.profile == instance.profile


def test_task_xml_parses_and_runs_the_script(home: Path) -> None:
    instance = make_instance(home, "rescue")
    spec = build_spec(instance, platform="win32", python="C:\\Program Files\\Python 3\\python.exe")
    script = Path("C:/Users/me/.clawdbot-rescue/service/gateway.cmd")
    xml = render_task_xml(spec, script, "DOMAIN\\me")
    assert xml[:2] in (b"\xff\xfe", b"\xfe\xff")  # UTF-16 with BOM, as schtasks expects
    root = ET.fromstring(xml)
    ns = {"t": TASK_NS}
    assert root.tag == f"{{{TASK_NS}}}Task"
    assert root.find("t:RegistrationInfo/t:URI", ns).text == "\\Moltbot Gateway (rescue)"
    assert root.find("t:Triggers/t:LogonTrigger/t:UserId", ns).text == "DOMAIN\\me"
    assert root.find("t:Actions/t:Exec/t:Command", ns).text == str(script)
    settings = root.find("t:Settings", ns)
    assert settings.find("t:ExecutionTimeLimit", ns).text == "PT0S"
    assert settings.find("t:MultipleInstancesPolicy", ns).text == "IgnoreNew"
    assert settings.find("t:RestartOnFailure/t:Count", ns) is not None


@pytest.mark.parametrize(
    "arg",
    [
        "plain",
        "C:\\Program Files\\Python 3\\python.exe",
        "a&b",
        "100%",
        'q"uote',
        "trail\\",
        "trail space\\",
        "",
        "x^y|z<w>",
        "a,b;c=d",
    ],
)
def test_cmd_quoting_round_trips(arg: str) -> None:
    line = quote_cmd_arg(arg).replace("%%", "%")
    assert split_cmd_line(line) == [arg]


def test_script_sets_identity_and_clears_aliases(home: Path, tmp_path: Path) -> None:
    instance = make_instance(home, "rescue")
    python = "C:\\Users\\A & B\\py 3\\python.exe"
    spec = build_spec(instance, platform="win32", python=python)
    text = render_script(spec)
    assert "\r\n" in text
    assert 'set "MOLTBOT_STATE_DIR="' in text  # an inherited alias cannot win
    path = tmp_path / "gateway.cmd"
    path.write_bytes(text.encode())
    parsed = read_script(path)
    assert parsed is not None
    port = str(instance.port)
    assert list(parsed.program) == [python, "-m", "moltbot", "gateway", "--port", port]
    assert parsed.environment["CLAWDBOT_PROFILE"] == "rescue"
    assert parsed.environment["CLAWDBOT_STATE_DIR"] == str(instance.state_dir)
    assert "MOLTBOT_STATE_DIR" not in parsed.environment
    assert "PATH" not in parsed.environment  # Windows keeps its own PATH


def test_spec_interpreter_is_this_python(home: Path) -> None:
    spec = build_spec(make_instance(home, None), platform="linux")
    assert spec.interpreter == sys.executable or Path(spec.interpreter).samefile(sys.executable)
