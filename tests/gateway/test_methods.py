"""Every core method, error frames, event sequencing, over real sockets."""

from __future__ import annotations

import json

from gateway_harness import ws_client


async def test_health_status_presence(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        health = await client.call("health")
        assert health["ok"] is True and health["defaultAgentId"] == "main"
        probed = await client.call("health", {"probe": True})
        assert probed["ts"] >= health["ts"]
        status = await client.call("status")
        assert status["instance"]["profile"] == "main"
        assert status["instance"]["port"] == gateway.port
        assert status["instance"]["controlPort"] == gateway.port + 2
        assert status["instance"]["canvasPort"] == gateway.port + 4
        assert status["instance"]["cdpRange"] == [gateway.port + 11, gateway.port + 110]
        presence = await client.call("system-presence")
        assert any(
            entry.get("reason") == "self" and entry.get("mode") == "gateway" for entry in presence
        )
        assert any(entry.get("mode") == "test" for entry in presence)


async def test_unknown_method_keeps_connection_open(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        reply = await client.request("does.not.exist")
        assert reply["ok"] is False
        assert reply["error"] == {
            "code": "INVALID_REQUEST",
            "message": "unknown method: does.not.exist",
        }
        assert (await client.call("health"))["ok"] is True


async def test_bad_params_and_bad_frames(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        reply = await client.request("logs.tail", {"limit": "many"})
        assert reply["error"]["message"].startswith("invalid logs.tail params: at /limit")
        reply = await client.request("status", {"extra": 1})
        assert "unexpected property 'extra'" in reply["error"]["message"]
        await client.ws.send_str(json.dumps({"type": "res", "id": "z"}))
        await client.ws.send_str("not json at all")
        await client.ws.send_str(json.dumps({"type": "req", "id": "", "method": "health"}))
        # no pause: frames are read in order, so the answers below come after theirs
        second_connect = await client.request("connect", {})
        assert second_connect["error"]["message"] == "connect is only valid as the first request"
        assert (await client.call("health"))["ok"] is True
        # each bad frame got exactly one answer (the non-JSON one none), all before health's
        invalid = client.second_response("invalid") + client.second_response("z")
        assert [f["id"] for f in invalid] == ["invalid", "z"]
        assert all(f["error"]["code"] == "INVALID_REQUEST" for f in invalid)


async def test_system_event_broadcasts_presence_with_increasing_seq(gateway) -> None:
    def presence_of(instance_id: str):
        return lambda f: (
            f["event"] == "presence"
            and any(e.get("instanceId") == instance_id for e in f["payload"]["presence"])
        )

    async with (
        ws_client(gateway.url, gateway.token) as watcher,
        ws_client(gateway.url, gateway.token) as actor,
    ):
        await actor.call(
            "system-event", {"text": "first", "instanceId": "probe-1", "mode": "backend"}
        )
        await actor.call("system-event", {"text": "second", "instanceId": "probe-1"})
        await watcher.wait_event(presence_of("probe-1"))
        # a second change once the first was seen: presence events are coalesced, so
        # only a change after the first event is sure to make a second one
        await actor.call("system-event", {"text": "third", "instanceId": "probe-2"})
        await watcher.wait_event(presence_of("probe-2"))
        seqs = [f["seq"] for f in watcher.events if "seq" in f]
        assert len(seqs) >= 2
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        presence = [f for f in watcher.events if f["event"] == "presence"]
        versions = [f["stateVersion"]["presence"] for f in presence]
        assert len(presence) >= 2 and versions == sorted(versions)
        assert len(set(versions)) == len(versions)
        status = await actor.call("status")
        assert status["queuedSystemEvents"][-3:] == ["first", "second", "third"]


async def test_logs_tail_reads_the_instance_log(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        tail = await client.call("logs.tail", {"limit": 50})
        assert tail["file"] == str(gateway.state_dir / "logs" / "gateway.jsonl")
        assert any("listening on" in line for line in tail["lines"])
        again = await client.call("logs.tail", {"cursor": tail["cursor"]})
        assert again["cursor"] >= tail["cursor"]


async def test_config_get_redacts_secrets(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        snapshot = await client.call("config.get")
    assert snapshot["valid"] is True and snapshot["hash"]
    assert gateway.token not in json.dumps(snapshot)
    assert snapshot["parsed"]["gateway"]["auth"]["token"] == "__MOLTBOT_REDACTED__"
    assert "__MOLTBOT_REDACTED__" in snapshot["raw"]


async def test_config_writes_use_compare_and_swap(gateway) -> None:
    config_path = gateway.state_dir / "moltbot.json"
    async with ws_client(gateway.url, gateway.token) as client:
        snapshot = await client.call("config.get")
        missing = await client.request("config.patch", {"raw": {"logging": {"level": "debug"}}})
        assert (
            missing["error"]["message"] == "config base hash required; re-run config.get and retry"
        )
        patched = await client.call(
            "config.patch", {"raw": {"logging": {"level": "debug"}}, "baseHash": snapshot["hash"]}
        )
        assert patched["ok"] is True
        stale = await client.request(
            "config.patch", {"raw": {"logging": {"level": "info"}}, "baseHash": snapshot["hash"]}
        )
        assert stale["error"]["message"].startswith("config changed since last load")
        invalid = await client.request(
            "config.patch", {"raw": {"gateway": {"port": "x"}}, "baseHash": patched["hash"]}
        )
        assert invalid["error"]["message"] == "invalid config"
        on_disk = json.loads(config_path.read_text())
        assert on_disk["logging"] == {"level": "debug"}
        assert on_disk["gateway"]["auth"]["token"] == gateway.token  # redacted secret kept

        current = await client.call("config.get")
        replaced = current["parsed"]
        replaced["agents"] = {"defaults": {"timeoutSeconds": 120}}
        applied = await client.call(
            "config.apply",
            {"raw": json.dumps(replaced), "baseHash": current["hash"], "restartDelayMs": 60_000},
        )
        assert applied["ok"] is True
        assert applied["restart"]["delayMs"] == 60_000 and applied["restart"]["signal"] == "SIGUSR1"
        on_disk = json.loads(config_path.read_text())
        assert on_disk["agents"]["defaults"]["timeoutSeconds"] == 120
        assert on_disk["gateway"]["auth"]["token"] == gateway.token

        current = await client.call("config.get")
        text = config_path.read_text().replace('"timeoutSeconds": 120', '"timeoutSeconds": 90')
        raw_set = await client.call(
            "config.set", {"raw": "// edited\n" + text, "baseHash": current["hash"]}
        )
        assert raw_set["ok"] is True
        assert config_path.read_text().startswith("// edited")
        assert (config_path.with_name("moltbot.json.bak")).exists()


async def test_config_schema_is_json_schema(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        schema = await client.call("config.schema")
    assert schema["schema"]["type"] == "object"
    assert "gateway" in schema["schema"]["properties"]
    assert "canvasHost" in schema["schema"]["properties"]


async def test_http_health_and_ui(gateway) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.http}/health") as response:
            assert response.status == 200
            body = await response.json()
        assert body == {"ok": True}
        async with session.get(f"{gateway.http}/") as response:
            assert response.status in (200, 503)
        async with session.get(f"{gateway.http}/../../etc/passwd") as response:
            assert response.status in (200, 404, 503)
            assert "root:" not in await response.text()


async def test_protocol_config_writes_run_the_checks_of_config_set(gateway, run_moltbot) -> None:
    """A Control UI or upstream client writing the config meets the same refusals as
    `moltbot config set`: a port of another instance, a model reference that cannot work."""
    from gateway_harness import free_port_block

    other = free_port_block()
    assert run_moltbot("--profile", "other", "setup", "--port", str(other)).returncode == 0
    config_path = gateway.state_dir / "moltbot.json"
    before = config_path.read_bytes()
    async with ws_client(gateway.url, gateway.token) as client:
        snapshot = await client.call("config.get")
        clash = await client.request(
            "config.patch", {"raw": {"gateway": {"port": other + 1}}, "baseHash": snapshot["hash"]}
        )
        assert "clashes with profile other" in clash["error"]["message"], clash
        assert "is unchanged" in clash["error"]["message"]
        model = await client.request(
            "config.patch",
            {"raw": {"agents": {"defaults": {"model": "gpt4"}}}, "baseHash": snapshot["hash"]},
        )
        assert model["error"]["message"] == "invalid config"
        assert 'not a "provider/model" reference' in model["error"]["details"]["issues"]
        clash_raw = json.loads(before)
        clash_raw["gateway"]["port"] = other
        whole = await client.request(
            "config.apply", {"raw": json.dumps(clash_raw), "baseHash": snapshot["hash"]}
        )
        assert "clashes with profile other" in whole["error"]["message"], whole
        # the barrier: a valid write goes through, and only it
        ok = await client.call(
            "config.patch", {"raw": {"logging": {"level": "debug"}}, "baseHash": snapshot["hash"]}
        )
        assert ok["ok"] is True
    on_disk = json.loads(config_path.read_text())
    assert on_disk["gateway"]["port"] == json.loads(before)["gateway"]["port"]
    assert "model" not in on_disk.get("agents", {}).get("defaults", {})
