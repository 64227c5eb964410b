"""Cron in a real gateway subprocess, with the stand-in model and the stand-in Telegram:
delivery, restarts, one-shots, the methods' shapes (against upstream's own schemas),
``moltbot cron`` and upstream's ``openclaw cron``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.automation.conftest import BOT_TOKEN, telegram_config
from tests.automation.cron_helpers import ms
from tests.channels.channel_helpers import run_cli as run_moltbot_async
from tests.fakes.llm_openai import FakeOpenAI
from tests.fakes.telegram import FakeTelegram
from tests.upstream import run_cli, validate

from gateway_harness import MethodFailed, ws_client
from moltbot.automation.scheduler import INTERRUPTED


def isolated(name: str, schedule: dict[str, Any], message: str, **payload: Any) -> dict[str, Any]:
    return {
        "name": name,
        "schedule": schedule,
        "sessionTarget": "isolated",
        "wakeMode": "next-heartbeat",
        "payload": {"kind": "agentTurn", "message": message, **payload},
    }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_every_second_job_delivers_to_telegram_survives_a_restart_and_records_runs(
    llm: FakeOpenAI, fake_telegram: FakeTelegram, launch: Any
) -> None:
    bot = fake_telegram.bot(BOT_TOKEN)
    gw = await launch(telegram_config(llm, fake_telegram))
    await bot.wait_polling(20)
    params = isolated(
        "pulse",
        {"kind": "every", "everyMs": 1000},
        "pulse check",
        deliver=True,
        channel="telegram",
        to="4242",
    )
    validate("CronAddParams", params)
    async with ws_client(gw.url, gw.token) as client:
        job = await client.call("cron.add", params)
        validate("CronJob", job)
        first = await bot.wait_sent(2, timeout=30)
        assert {s.chat_id for s in first} == {"4242"}
        assert all("pulse check" in s.text for s in first)
        runs: list[Any] = []

        async def logged_runs() -> bool:
            runs[:] = (await client.call("cron.runs", {"id": job["id"]}))["entries"]
            return len(runs) >= 2

        while not await logged_runs():  # the log line follows the delivery: next event
            seen = {id(f) for f in client.events}
            await client.wait_event(lambda f, seen=seen: f["event"] == "cron" and id(f) not in seen)
        assert all(r["status"] == "ok" for r in runs)
        for entry in runs:
            validate("CronRunLogEntry", entry)
        events = [f["payload"] for f in client.events if f["event"] == "cron"]
        assert {"started", "finished"} <= {e["action"] for e in events}
        assert all(e["jobId"] == job["id"] for e in events)
        status = await client.call("status")
        # each run posts its summary to the main session
        assert any(e.startswith("Cron: echo:") for e in status["queuedSystemEvents"])
    assert gw.stop() == 0
    stored = json.loads((gw.state_dir / "cron" / "jobs.json").read_text())
    assert [j["id"] for j in stored["jobs"]] == [job["id"]]
    logged = (gw.state_dir / "cron" / "runs" / f"{job['id']}.jsonl").read_text().splitlines()
    delivered = len(bot.sent)

    again = await launch(None)
    try:
        await bot.wait_sent(delivered + 2, timeout=30)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{again.output()[-6000:]}") from None
    async with ws_client(again.url, again.token) as client:
        [listed] = (await client.call("cron.list"))["jobs"]
        validate("CronJob", listed)
        assert listed["id"] == job["id"] and listed["state"]["lastStatus"] == "ok"
        entries = (await client.call("cron.runs", {"id": job["id"], "limit": 5000}))["entries"]
    assert len(entries) >= len(logged) + 2  # the log kept the first process's runs
    assert {e["status"] for e in entries} <= {"ok", "error"}
    assert all(e.get("error") in (None, INTERRUPTED) for e in entries)


async def test_at_job_fires_once(llm: FakeOpenAI, fake_telegram: FakeTelegram, launch: Any) -> None:
    bot = fake_telegram.bot(BOT_TOKEN)
    gw = await launch(telegram_config(llm, fake_telegram))
    await bot.wait_polling(20)
    start = now_ms()
    async with ws_client(gw.url, gw.token) as client:
        alpha = await client.call(
            "cron.add",
            isolated("alpha", {"kind": "at", "atMs": start + 1000}, "alpha", to="4242"),
        )
        # bravo fires later: once its message is in, alpha has had every chance to repeat
        await client.call(
            "cron.add",
            isolated("bravo", {"kind": "at", "atMs": start + 3000}, "bravo", to="4242"),
        )
        sent = await bot.wait_sent(2, timeout=30)
        assert ["alpha" in s.text for s in sent] == [True, False]
        assert "bravo" in sent[1].text
        listed = {
            j["name"]: j
            for j in (await client.call("cron.list", {"includeDisabled": True}))["jobs"]
        }
        assert listed["alpha"]["enabled"] is False
        assert listed["alpha"]["state"]["lastStatus"] == "ok"
        assert "nextRunAtMs" not in listed["alpha"]["state"]
        assert await client.call("cron.run", {"jobId": alpha["id"]}) == {
            "ok": True,
            "ran": False,
            "reason": "not-due",
        }
        assert (await client.call("cron.list"))["jobs"] == []  # disabled ones are hidden
    assert len(bot.sent) == 2


async def test_methods_check_their_input_and_scopes(
    home: Path, launch: Any, llm: FakeOpenAI
) -> None:
    from tests.fakes.llm_openai import openai_config

    gw = await launch(openai_config(llm.base_url))
    async with ws_client(gw.url, gw.token) as client:
        cases = [
            ("cron.add", {"name": "x"}),
            ("cron.add", {**isolated("x", {"kind": "cron", "expr": "61 * * * *"}, "m")}),
            (
                "cron.add",
                {**isolated("x", {"kind": "cron", "expr": "0 7 * * *", "tz": "Nowhere/X"}, "m")},
            ),
            (
                "cron.add",
                {**isolated("x", {"kind": "every", "everyMs": 1}, "m"), "sessionTarget": "main"},
            ),
            ("cron.add", {**isolated("x", {"kind": "every", "everyMs": 1}, "m"), "bogus": 1}),
            ("cron.add", isolated("x", {"kind": "every", "everyMs": 500}, "m")),  # under 1 s
            ("cron.add", isolated("n" * 201, {"kind": "every", "everyMs": 60_000}, "m")),
            ("cron.runs", {"id": "../../gateway"}),
            ("cron.update", {"id": "nope", "patch": {"enabled": False}}),
            ("cron.remove", {}),
        ]
        for method, params in cases:
            with pytest.raises(MethodFailed) as caught:
                await client.call(method, params)
            assert caught.value.error["code"] == "INVALID_REQUEST", (method, params)
        assert "invalid cron.add params" in str(caught.value) or "missing id" in str(caught.value)
        # upstream's lenient forms: an ISO time for `at`, no kind, defaults filled in
        job = await client.call(
            "cron.add",
            {
                "name": "lenient",
                "schedule": {"at": "2099-01-01T07:00:00Z"},
                "payload": {"kind": "systemEvent", "text": "hi"},
            },
        )
        validate("CronJob", job)
        assert job["schedule"] == {"kind": "at", "atMs": ms("2099-01-01 07:00")}
        assert (job["sessionTarget"], job["wakeMode"]) == ("main", "next-heartbeat")
        update = {"jobId": job["id"], "patch": {"name": "renamed", "agentId": None}}
        validate("CronUpdateParams", update)
        assert (await client.call("cron.update", update))["name"] == "renamed"
        assert await client.call("cron.remove", {"jobId": job["id"]}) == {
            "ok": True,
            "removed": True,
        }
        assert await client.call("cron.remove", {"id": job["id"]}) == {"ok": True, "removed": False}
    async with ws_client(gw.url, gw.token, scopes=["operator.read"]) as reader:
        assert (await reader.call("cron.list"))["jobs"] == []
        assert (await reader.call("cron.status"))["enabled"] is True
        with pytest.raises(MethodFailed, match="missing scope: operator.admin"):
            await reader.call("cron.add", isolated("x", {"kind": "every", "everyMs": 1000}, "m"))
        with pytest.raises(MethodFailed, match="missing scope: operator.write"):
            await reader.call("wake", {"mode": "now", "text": "x"})


async def test_moltbot_cron_cli_against_the_gateway_and_offline(
    home: Path, launch: Any, llm: FakeOpenAI, run_moltbot: Any
) -> None:
    from tests.fakes.llm_openai import openai_config

    async def cli(*args: str) -> Any:
        return await run_moltbot_async(run_moltbot, "--profile", "main", "cron", *args)

    gw = await launch(openai_config(llm.base_url))
    added = await cli(
        "add",
        "--name",
        "standup",
        "--cron",
        "0 9 * * 1-5",
        "--tz",
        "Europe/Berlin",
        "--system-event",
        "Standup soon",
        "--wake",
        "now",
    )
    assert added.returncode == 0, added.stderr
    job = json.loads(added.stdout)
    validate("CronJob", job)
    assert job["schedule"] == {"kind": "cron", "expr": "0 9 * * 1-5", "tz": "Europe/Berlin"}
    listed = await cli("list")
    assert job["id"] in listed.stdout and "cron 0 9 * * 1-5 @ Europe/Berlin" in listed.stdout
    edited = await cli("edit", job["id"], "--name", "daily standup", "--disable")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["enabled"] is False
    assert (await cli("list")).stdout.strip() == "No cron jobs."
    assert job["id"] in (await cli("list", "--all")).stdout
    ran = await cli("run", job["id"], "--force")
    assert json.loads(ran.stdout) == {"ok": True, "ran": True}, ran.stderr
    runs = json.loads((await cli("runs", "--id", job["id"])).stdout)["entries"]
    assert [r["status"] for r in runs] == ["ok"], [r.get("error") for r in runs]
    assert runs[0]["summary"] == "Standup soon"
    bad = await cli("add", "--name", "x", "--every", "10m", "--message", "m")
    assert bad.returncode == 2 and "isolated jobs" not in bad.stdout
    assert "main jobs need --system-event" in bad.stderr
    missing = await cli("rm", "no-such-job")
    assert missing.returncode == 9 and "unknown cron job id" in missing.stderr
    assert gw.stop() == 0

    # no gateway: the store itself, and `run` says what it needs
    offline = await cli("add", "--name", "later", "--every", "1h", "--system-event", "tick")
    assert offline.returncode == 0, offline.stderr
    later = json.loads(offline.stdout)["id"]
    assert later in (await cli("list")).stdout
    cannot = await cli("run", later)
    assert cannot.returncode == 6 and "needs the running gateway" in cannot.stderr
    assert (await cli("rm", job["id"])).returncode == 0
    again = await launch(None)
    async with ws_client(again.url, again.token) as client:
        assert [
            j["id"] for j in (await client.call("cron.list", {"includeDisabled": True}))["jobs"]
        ] == [later]


async def test_upstream_cli_cron_add_list_runs(
    home: Path, launch: Any, llm: FakeOpenAI, fake_telegram: FakeTelegram
) -> None:
    bot = fake_telegram.bot(BOT_TOKEN)
    gw = await launch(telegram_config(llm, fake_telegram))
    await bot.wait_polling(20)
    target = ["--url", gw.url, "--token", gw.token]

    added = run_cli(
        "cron",
        "add",
        "--name",
        "upstream",
        "--every",
        "2s",
        "--session",
        "isolated",
        "--message",
        "from openclaw",
        "--deliver",
        "--channel",
        "telegram",
        "--to",
        "5151",
        "--json",
        *target,
        home=home,
    )
    assert added.returncode == 0, added.stderr
    job = json.loads(added.stdout)
    validate("CronJob", job)
    assert job["isolation"] == {
        "postToMainPrefix": "Cron",
        "postToMainMode": "summary",
        "postToMainMaxChars": 8000,
    }
    [message] = await bot.wait_sent(1, timeout=30, chat_id=5151)
    assert "from openclaw" in message.text

    listed = run_cli("cron", "list", *target, home=home)
    assert listed.returncode == 0, listed.stderr
    assert (
        job["id"] in listed.stdout and "every 2s" in listed.stdout and "isolated" in listed.stdout
    )
    as_json = json.loads(run_cli("cron", "list", "--json", *target, home=home).stdout)
    assert [j["id"] for j in as_json["jobs"]] == [job["id"]]

    runs = run_cli("cron", "runs", "--id", job["id"], *target, home=home)
    assert runs.returncode == 0, runs.stderr
    entries = json.loads(runs.stdout)["entries"]
    assert entries and entries[0]["status"] == "ok"
    for entry in entries:
        validate("CronRunLogEntry", entry)
    status = json.loads(run_cli("cron", "status", *target, home=home).stdout)
    assert status["enabled"] is True and status["jobs"] == 1
    removed = run_cli("cron", "rm", job["id"], *target, home=home)
    assert json.loads(removed.stdout) == {"ok": True, "removed": True}
