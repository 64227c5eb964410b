"""A real Synapse homeserver for the Matrix channel's tests.

:func:`start_synapse` writes a config (SQLite, one loopback HTTP listener on a free
port, no federation, rate limits lifted, a registration shared secret), generates
the signing key, starts ``synapse.app.homeserver`` with this venv's Python and waits
until the client API answers. Users are created through the shared-secret admin API
(``/_synapse/admin/v1/register``), as an operator would.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SERVER_NAME = "moltbot.test"
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}


@dataclass
class Synapse:
    process: subprocess.Popen[bytes]
    port: int
    secret: str
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register(self, localpart: str, password: str, *, admin: bool = False) -> dict[str, str]:
        """Create a user with the shared-secret admin API; returns its login answer
        (``user_id``, ``access_token``, ``device_id``)."""
        nonce = self._json("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        role = b"admin" if admin else b"notadmin"
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), role]))
        return self._json(
            "POST",
            "/_synapse/admin/v1/register",
            {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )

    def _json(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "homeserver.log"
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _config(root: Path, port: int, secret: str) -> str:
    config = {
        "server_name": SERVER_NAME,
        "pid_file": str(root / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(root / "homeserver.db")}},
        "log_config": str(root / "log.yaml"),
        "media_store_path": str(root / "media"),
        "signing_key_path": str(root / "signing.key"),
        "registration_shared_secret": secret,
        "enable_registration": False,
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "rc_message": _UNLIMITED,
        "rc_registration": _UNLIMITED,
        "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
        "rc_admin_redaction": _UNLIMITED,
        "rc_key_requests": _UNLIMITED,
        "rc_media_create": _UNLIMITED,
        "max_upload_size": "50M",
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def _log_config(root: Path) -> str:
    return json.dumps(
        {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "plain",
                    "filename": str(root / "homeserver.log"),
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
    )


def start_synapse(root: Path, port: int, timeout: float = 120.0) -> Synapse:
    """Start a fresh homeserver in ``root`` listening on ``127.0.0.1:port``."""
    root.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(16)
    config = root / "homeserver.yaml"
    config.write_text(_config(root, port, secret))
    (root / "log.yaml").write_text(_log_config(root))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLTBOT_", "CLAWDBOT_"))}
    subprocess.run(
        [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config), "--generate-keys"],
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
        timeout=120,
    )
    output = open(root / "stdout.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)],
        stdout=output,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
    )
    server = Synapse(process, port, secret, root)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"synapse exited with {process.returncode}:\n"
                + (root / "stdout.log").read_text(errors="replace")[-3000:]
                + server.log_tail()
            )
        try:
            with urllib.request.urlopen(server.url + "/_matrix/client/versions", timeout=2):
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                server.stop()
                tail = server.log_tail()
                raise TimeoutError("synapse did not answer in time:\n" + tail) from None
            time.sleep(0.2)
