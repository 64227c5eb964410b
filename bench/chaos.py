"""Chaos: sessions keep talking while the config changes, the gateway restarts and the
provider drops a stream.

A real gateway subprocess with ``SESSIONS`` sessions streaming replies from the
OpenAI-compatible stand-in (its own process; every reply streams for about a
second). Meanwhile an outside writer changes the config every ``CHANGE_EVERY_S``
(a harmless key, and every other time the provider's headers, so its client is
retired), the gateway restarts in-process three times (SIGUSR1; the first two
with ``gateway.restartGraceSeconds`` = ``GRACE_S``, long enough for every turn
to finish; for the last one the same writer has lowered it to ``SHORT_GRACE_S``,
so the turns in flight are aborted), and the stand-in cuts one stream mid-reply.

A session sends its next message once the last one ended; a refusal while the
gateway drains (``UNAVAILABLE``, retryable) is sent again after ``retryAfterMs``,
a dropped connection is re-made. At the end each session's transcript
(``chat.history``) is the judge: every acknowledged message must be there
(*lost* must be 0), each turn ended completed, aborted with a reason, or failed;
and no model may have been put into a cooldown (*spurious cooldowns* must be 0:
the one provider failure is retried, everything else is the gateway's own doing).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from _harness import ROOT, Result, fresh_home

TITLE = "Chaos: turns under config changes, restarts and a provider disconnect"
ORDER = 45

SESSIONS = 50
DURATION_S = 20.0
CHANGE_EVERY_S = 0.2
RESTART_AT_S = (4.0, 9.0, 14.0)
DISCONNECT_AT_S = 6.5
GRACE_S = 2.0
SHORT_GRACE_S = 0.2
REPLY = "streaming words " * 10  # 40 chunks of 4 characters
CHUNK_DELAY_S = 0.025  # about one second per reply

FAKE_SERVER = """
import asyncio, logging, sys
logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # clients that go away mid-stream
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from fakes.llm_openai import FakeOpenAI
from fakes.llm_script import Reply

class Chaos(FakeOpenAI):
    def next_step(self, body):
        if self.queue:
            return self.queue.popleft()
        return Reply(sys.argv[2], chunk_chars=4, chunk_delay=float(sys.argv[3]))

async def main():
    server = Chaos(api_key="sk-bench")
    await server.start()
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip() == "cut":  # the next reply breaks off mid-stream
            server.push(Reply(sys.argv[2], chunk_chars=4, chunk_delay=float(sys.argv[3]),
                              cut="abort"))
    await server.stop()

asyncio.run(main())
"""


class FakeModel:
    """The stand-in in its own process; ``cut()`` makes its next reply break off."""

    def __enter__(self) -> FakeModel:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_SERVER, str(ROOT), REPLY, str(CHUNK_DELAY_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def cut(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("cut\n")
        self.proc.stdin.flush()

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def write_config(home: Path, port: int) -> Path:
    state = home / ".clawdbot-chaos"
    state.mkdir(parents=True)
    config = {
        "gateway": {
            "mode": "local",
            "auth": {"token": secrets.token_urlsafe(24)},
            "restartGraceSeconds": GRACE_S,
            "reload": {"debounceMs": 50},
        },
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": f"http://127.0.0.1:{port}/v1",
                    "apiKey": "sk-bench",
                    "api": "openai-completions",
                    "models": [{"id": "m"}],
                }
            }
        },
        "agents": {
            "defaults": {
                "model": "fake/m",
                "workspace": str(home / "clawd-chaos"),
                "maxConcurrent": SESSIONS,
                "modelRetry": {"minDelayMs": 100},
            }
        },
    }
    path = state / "moltbot.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def change_config(path: Path, n: int, grace: float) -> None:
    """What an outside writer does: read, change, replace atomically."""
    data = json.loads(path.read_text())
    data["agents"]["defaults"]["timeoutSeconds"] = 600 + n % 2
    data["gateway"]["restartGraceSeconds"] = grace
    if n % 2:
        data["models"]["providers"]["fake"]["headers"] = {"X-Chaos": str(n)}
    temporary = path.with_name(f".{path.name}.{n}.tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


class Gone(Exception):
    """The connection dropped (the gateway restarts)."""


class Connection:
    """One protocol connection shared by every session, made again after a restart."""

    def __init__(self, url: str, token: str, http: aiohttp.ClientSession) -> None:
        self.url, self.token, self.http = url, token, http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count()
        self.reconnects = -1
        self._lock = asyncio.Lock()

    async def ensure(self) -> aiohttp.ClientWebSocketResponse:
        async with self._lock:
            while self.ws is None or self.ws.closed:
                try:
                    self.ws = await self._connect()
                    self.reconnects += 1
                    asyncio.get_running_loop().create_task(self._read(self.ws))
                except (OSError, aiohttp.ClientError, RuntimeError):
                    await asyncio.sleep(0.05)
            return self.ws

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.url, max_msg_size=0, compress=0)
        await ws.receive()  # connect.challenge
        params = {
            "minProtocol": 3,
            "maxProtocol": 3,
            "auth": {"token": self.token},
            "client": {"id": "test", "version": "chaos", "platform": "linux", "mode": "test"},
        }
        await ws.send_str(
            json.dumps({"type": "req", "id": "c", "method": "connect", "params": params})
        )
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError("closed during the handshake")
            frame = json.loads(message.data)
            if frame.get("id") == "c":
                if not frame["ok"]:
                    raise RuntimeError(frame)
                return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if frame.get("type") == "res":
                future = self.pending.pop(frame["id"], None)
                if future is not None and not future.done():
                    future.set_result(frame)
        for future in list(self.pending.values()):
            if not future.done():
                future.set_exception(Gone())

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = await self.ensure()
        request_id = f"q{next(self.ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            await ws.send_str(
                json.dumps({"type": "req", "id": request_id, "method": method, "params": params})
            )
        except (ConnectionError, RuntimeError) as exc:
            self.pending.pop(request_id, None)
            raise Gone() from exc
        if ws.closed:  # closed meanwhile: its reader may have failed the others already
            self.pending.pop(request_id, None)
            raise Gone()
        return await asyncio.wait_for(future, 15)


async def session(conn: Connection, n: int, until: float, tally: dict[str, Any]) -> None:
    key = f"agent:main:chaos-{n}"
    acked: list[str] = tally["acked"].setdefault(key, [])
    for turn in itertools.count():
        if time.monotonic() >= until:
            return
        text = f"message {turn} of session {n}"
        idem = str(uuid.uuid4())
        while True:  # until the gateway takes it
            try:
                frame = await conn.request(
                    "chat.send", {"sessionKey": key, "message": text, "idempotencyKey": idem}
                )
            except (Gone, TimeoutError):
                continue  # same idempotency key: a duplicate is never two turns
            if frame["ok"]:
                break
            error = frame["error"]
            if not error.get("retryable"):
                tally["send errors"].append(error.get("message"))
                return
            tally["refusals"] += 1
            await asyncio.sleep(error.get("retryAfterMs", 500) / 1000)
        acked.append(text)
        while True:  # until the run ended, or the restart made it unknown
            try:
                frame = await conn.request("agent.wait", {"runId": idem, "timeoutMs": 10_000})
            except (Gone, TimeoutError):
                continue
            if not frame["ok"] or frame["payload"].get("status") != "timeout":
                break


async def chaos(url: str, token: str, gw: Any, config: Path, model: FakeModel) -> dict[str, Any]:
    tally: dict[str, Any] = {"acked": {}, "refusals": 0, "send errors": []}
    async with aiohttp.ClientSession() as http:
        conn = Connection(url, token, http)
        await conn.ensure()
        started = time.monotonic()
        until = started + DURATION_S

        async def disturb() -> None:
            restarts = list(RESTART_AT_S)
            cut = False
            for n in itertools.count():
                now = time.monotonic() - started
                if now >= DURATION_S:
                    return
                last = len(restarts) == 1 and now >= restarts[0] - 1.0
                change_config(config, n, SHORT_GRACE_S if last else GRACE_S)
                if restarts and now >= restarts[0]:
                    restarts.pop(0)
                    gw.signal(signal.SIGUSR1)
                if not cut and now >= DISCONNECT_AT_S:
                    model.cut()
                    cut = True
                await asyncio.sleep(CHANGE_EVERY_S)

        changes = asyncio.create_task(disturb())
        await asyncio.gather(*(session(conn, n, until, tally) for n in range(SESSIONS)))
        await changes
        elapsed = time.monotonic() - started
        histories = {}
        for key in tally["acked"]:
            while True:
                try:
                    frame = await conn.request("chat.history", {"sessionKey": key, "limit": 1000})
                    break
                except (Gone, TimeoutError):
                    continue
            histories[key] = frame["payload"]["messages"]
        status = (await conn.request("status", {}))["payload"]
        tally.update(
            histories=histories,
            elapsed=elapsed,
            reconnects=conn.reconnects,
            cooldowns=status["subsystems"]["agents"].get("cooldowns", {}),
        )
    return tally


def judge(tally: dict[str, Any], log: str) -> dict[str, Any]:
    completed = aborted = failed = lost = 0
    reasons: dict[str, int] = {}
    for key, acked in tally["acked"].items():
        messages = tally["histories"][key]
        said = [m["content"] for m in messages if m["role"] == "user"]
        lost += sum(1 for text in acked if text not in said)
        for message in messages:
            if message["role"] != "assistant":
                continue
            if message.get("stopReason") == "stop":
                completed += 1
            elif message.get("stopReason") == "aborted":
                aborted += 1
                reason = message.get("errorMessage") or "(no reason)"
                reasons[reason] = reasons.get(reason, 0) + 1
            else:
                failed += 1
    return {
        "completed": completed,
        "aborted": aborted,
        "reasons": reasons,
        "failed": failed,
        "lost": lost,
        "acked": sum(len(a) for a in tally["acked"].values()),
        "cooldowns": log.count("cooling down") + len(tally["cooldowns"]),
        "restarts": log.count("gateway restarted on"),
        "retried": log.count("retry 1/"),
        "reloads": log.count("applied config change live"),
    }


def run() -> list[Result]:
    from gateway_harness import CORE_ONLY, start_gateway

    with FakeModel() as model, fresh_home() as home:
        config = write_config(home, model.port)
        gw = start_gateway(home, "chaos", env=CORE_ONLY)
        try:
            tally = asyncio.run(chaos(gw.url, gw.token, gw, config, model))
        finally:
            gw.stop()
        log = gw.output()
    seen = judge(tally, log)
    setting = (
        f"{SESSIONS} sessions for {DURATION_S:.0f} s, config changed every "
        f"{CHANGE_EVERY_S * 1000:.0f} ms ({seen['reloads']} live reloads), "
        f"{seen['restarts']} in-process restarts (grace {GRACE_S:g} s, the last "
        f"{SHORT_GRACE_S:g} s), 1 provider disconnect"
    )
    reasons = ", ".join(f"{n}× “{r}”" for r, n in sorted(seen["reasons"].items())) or "none"
    return [
        Result(
            name="Turns completed",
            value=seen["completed"],
            unit="turns",
            note=f"{setting}; {seen['acked']} messages acknowledged in {tally['elapsed']:.1f} s",
        ),
        Result(
            name="Turns aborted, with a reason",
            value=seen["aborted"],
            unit="turns",
            note=f"reasons: {reasons} (runs still streaming when the last restart's "
            "short grace period ended; their partial replies are kept)",
        ),
        Result(
            name="Turns failed",
            value=seen["failed"],
            unit="turns",
            note=f"the provider disconnect was retried {seen['retried']}× and answered",
        ),
        Result(
            name="User messages lost",
            value=seen["lost"],
            unit="messages",
            note="acknowledged by chat.send but missing from the transcript; must be 0",
        ),
        Result(
            name="Spurious cooldowns",
            value=seen["cooldowns"],
            unit="models",
            note="models put into a cooldown; must be 0",
        ),
        Result(
            name="Sends refused while draining",
            value=tally["refusals"],
            unit="requests",
            note="UNAVAILABLE, retryable: sent again after retryAfterMs",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']} {row['unit']}  ({row['note']})")
