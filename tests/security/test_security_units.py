"""The security building blocks on their own: secret comparison, token strength,
the throttle's arithmetic, connection admission, proxy resolution, process limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from moltbot.security import process
from moltbot.security.connguard import ConnectionGuard
from moltbot.security.origin import (
    is_local,
    origin_allowed,
    parse_origin,
    resolve_peer,
    same_origin,
    split_host,
)
from moltbot.security.secrets import matches_any, secret_equals, weakness
from moltbot.security.throttle import AuthThrottle, address_key


@pytest.mark.parametrize(
    "given,ok",
    [
        ("s3cret", True),
        ("s3cre", False),
        ("s3cretx", False),
        ("", False),
        (None, False),
        ("s3crét", False),
        ("S3CRET", False),
    ],
)
def test_secret_equals_is_exact(given: str | None, ok: bool) -> None:
    assert secret_equals(given, "s3cret") is ok
    assert secret_equals("tökén", "tökén")  # non-ASCII never raises
    assert not secret_equals("x", None) and not matches_any("x", [None, "y"])


def test_weakness() -> None:
    assert weakness("a") and weakness("a" * 40) and weakness("password1234")
    assert weakness("abcdefghijabcdefghijabcd")  # 24 lowercase letters: ~113 bits
    assert weakness("Kx9-qT2vLm8Rw4Zp7Nb3Hc6Jd1Fg5Ys0Ua") is None
    assert weakness("3f1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e") is None  # 48 hex


def test_throttle_refills_over_time() -> None:
    now = [0.0]
    throttle = AuthThrottle(burst=3, refill_s=10, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(10)
    assert throttle.retry_after("10.0.0.2") is None  # per address
    now[0] = 10.0
    assert throttle.retry_after("10.0.0.1") is None  # one attempt back
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(10)
    now[0] = 100.0
    assert throttle.retry_after("10.0.0.1") is None and len(throttle) == 0


def test_throttle_groups_ipv6_by_64_and_is_bounded() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    throttle = AuthThrottle(max_entries=5)
    for i in range(20):
        throttle.failed(f"10.0.0.{i}")
    assert len(throttle) == 5


def test_guard_caps_unauthenticated_per_address_and_total() -> None:
    guard = ConnectionGuard(per_address=2, total=3, trusted_proxies=("10.9.9.9",))
    a1, a2 = guard.admit("10.0.0.1"), guard.admit("10.0.0.1")
    assert a1 and a2 and guard.admit("10.0.0.1") is None
    b = guard.admit("10.0.0.2")
    assert b and guard.admit("10.0.0.3") is None  # total reached
    guard.release(a1)
    assert guard.admit("10.9.9.9")  # a trusted proxy counts towards the total only
    assert guard.stats.refused_per_address == 1 and guard.stats.refused_total == 1


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:99999999", "http://[::1", "http://:80", "null", "ftp://x", ""]
)
def test_malformed_origins_are_not_allowed_and_never_raise(origin: str) -> None:
    assert parse_origin(origin) is None or origin == ""
    assert not same_origin(origin, "127.0.0.1:80") or origin == ""


def test_split_host_rejects_bad_ports() -> None:
    assert split_host("localhost:99999") == ("", None)
    assert split_host("localhost:-1") == ("", None)
    assert split_host("localhost:٣") == ("", None)


def test_allowed_origins_and_locality() -> None:
    assert origin_allowed("https://proxy.example", "127.0.0.1:1", ["https://proxy.example:443"])
    assert not origin_allowed("https://other.example", "127.0.0.1:1", ["https://proxy.example"])
    local = resolve_peer("127.0.0.1", {"Host": "127.0.0.1:1"})
    assert is_local(local, None) and is_local(local, "http://127.0.0.1:1")
    assert not is_local(local, "https://proxy.example")
    untrusted = resolve_peer("127.0.0.1", {"Host": "127.0.0.1:1", "X-Forwarded-For": "127.0.0.1"})
    assert not is_local(untrusted, None)
    chain = {"Host": "127.0.0.1:1", "X-Forwarded-For": "203.0.113.9, 10.0.0.5"}
    peer = resolve_peer("127.0.0.1", chain, ["127.0.0.1", "10.0.0.0/8"])
    assert peer.address == "203.0.113.9" and not is_local(peer, None)


def test_process_limits_and_allocator() -> None:
    limits = process.raise_open_files_limit()
    assert limits is None or limits[0] >= min(limits[1], 1024)
    # glibc here; on other C libraries both report False instead of failing
    assert process.tune_allocator() in (True, False)
    assert process.release_memory() in (True, False)


def test_frozenlist_is_pure_python_and_the_switch_does_not_leak() -> None:
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "from moltbot.security import process\n"
        "assert process.pure_python_frozenlist()\n"
        "import aiohttp.web, frozenlist\n"
        "assert frozenlist.FrozenList is frozenlist.PyFrozenList\n"
        "assert 'FROZENLIST_NO_EXTENSIONS' not in os.environ\n"
        "assert not process.pure_python_frozenlist()  # already imported\n"
        "print(any('libstdc++' in line for line in open('/proc/self/maps')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FROZENLIST_NO_EXTENSIONS"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # no C++ runtime mapped for it


_MIME_PROBE = (
    "import mimetypes, sys\n"
    "from moltbot.security import process\n"
    "if sys.argv[1] == 'deferred':\n"
    "    assert process.mime_table_on_demand()\n"
    "    assert not mimetypes.inited and not process.mime_table_on_demand()\n"
    "import aiohttp.web\n"
    "from aiohttp.web_fileresponse import CONTENT_TYPES\n"
    "names = ['a.js', 'a.css', 'a.svg', 'a.opus', 'a.wasm', 'a.jxl', 'a.m4a', 'a.heic']\n"
    "print([CONTENT_TYPES.guess_type(n) for n in names])\n"
    "print([mimetypes.guess_type(n) for n in names], len(mimetypes.types_map))\n"
)


def test_the_mime_table_is_read_at_first_use_with_the_same_answers() -> None:
    """Deferring the system's MIME table changes no answer: aiohttp's own table and the
    module-wide one (read from /etc/mime.types at the first lookup) are as without it."""
    import subprocess
    import sys

    runs = {
        mode: subprocess.run(
            [sys.executable, "-c", _MIME_PROBE, mode], capture_output=True, text=True, check=False
        )
        for mode in ("eager", "deferred")
    }
    for done in runs.values():
        assert done.returncode == 0, done.stderr
    assert runs["deferred"].stdout == runs["eager"].stdout


async def test_guarded_site_serves_and_falls_back_when_aiohttp_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiohttp
    from aiohttp import web

    from gateway_harness import free_port_block
    from moltbot.security import connguard

    async def hello(request: web.Request) -> web.Response:
        connguard.mark_authenticated(request)
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    guard = ConnectionGuard()
    try:
        port = free_port_block(1)
        site = connguard.GuardedSite(runner, "127.0.0.1", port, guard=guard)
        assert not isinstance(site, web.TCPSite)
        await site.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                assert await response.text() == "hi"
        assert guard.unauthenticated == 0  # the request authenticated its connection
        assert isinstance(connguard.GuardedSite(runner, "127.0.0.1", port), web.TCPSite)

        def changed(*args: object, **kwargs: object) -> None:
            raise AttributeError("BaseSite has no _server")

        monkeypatch.setattr(connguard, "_make_guarded_site", changed)
        fallback = connguard.GuardedSite(runner, "127.0.0.1", port + 1, guard=guard)
        assert isinstance(fallback, web.TCPSite)
    finally:
        await runner.cleanup()


def _ca_and_server(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA (its PEM) and a localhost certificate it signed (chain PEM, key PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = issue(f"{name} CA", ca_key, f"{name} CA", ca_key, ca=True)
    server = issue("localhost", server_key, f"{name} CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = (
        directory / f"{name}-ca.pem",
        directory / f"{name}-server.pem",
        directory / f"{name}.key",
    )
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(server.public_bytes(pem))
    paths[2].write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


CA_LOOKUP_SCRIPT = """
import asyncio, http.server, os, ssl, sys, threading
certs, trusted, untrusted = sys.argv[1], sys.argv[2:4], sys.argv[4:6]
# this machine's layout, pointed at a test directory: the bundle in the hashed directory
ssl.get_default_verify_paths = lambda: ssl.DefaultVerifyPaths(
    certs + "/bundle.crt", certs, "SSL_CERT_FILE", certs + "/bundle.crt", "SSL_CERT_DIR", certs
)
from moltbot.security import process
before = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
applied = process.system_cas_on_demand()
import aiohttp
assert {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")} == before
assert not process.system_cas_on_demand()  # aiohttp already imported

def serve(chain, key):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_port

async def fetch(port):
    async with aiohttp.ClientSession() as session:  # aiohttp's default, verifying context
        try:
            async with session.get(f"https://localhost:{port}/") as response:
                return str(response.status)
        except aiohttp.ClientConnectorCertificateError:
            return "refused"

async def main():
    print(applied, await fetch(serve(*trusted)), await fetch(serve(*untrusted)))

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("hashed", "cert_file", "applies"),
    [
        (True, None, True),
        (True, "bundle.crt", True),
        (True, "mine.crt", False),
        (False, None, False),
    ],
)
def test_aiohttp_finds_system_cas_on_demand_and_still_verifies(
    tmp_path: Path, hashed: bool, cert_file: str | None, applies: bool
):
    """With OpenSSL's default bundle in its hashed default directory, aiohttp's default
    contexts verify against that directory (a server signed by a CA in it is accepted,
    any other refused). Without hashed certificates, or with SSL_CERT_FILE naming another
    bundle, nothing changes. The environment is left as it was."""
    import subprocess
    import sys

    certs = tmp_path / "certs"
    certs.mkdir()
    trusted_ca, *trusted = _ca_and_server(tmp_path, "trusted")
    _, *untrusted = _ca_and_server(tmp_path, "other")
    (certs / "bundle.crt").write_bytes(trusted_ca.read_bytes())
    if hashed:
        subprocess.run(["openssl", "rehash", str(certs)], check=True)  # noqa: S607
        assert any(p.suffix == ".0" for p in certs.iterdir())
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if cert_file:
        (certs / cert_file).write_bytes(trusted_ca.read_bytes())
        env["SSL_CERT_FILE"] = str(certs / cert_file)
    done = subprocess.run(
        [sys.executable, "-c", CA_LOOKUP_SCRIPT, str(certs), *map(str, trusted + untrusted)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # not applied: aiohttp reads the bundle as before (the system's lacks the test CA)
    accepted = "200" if applies or cert_file else "refused"
    assert done.stdout.split() == [str(applies), accepted, "refused"]
