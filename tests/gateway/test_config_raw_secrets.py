"""``config.set`` of the raw text ``config.get`` gave (secrets redacted): the secrets are
put back into the text itself, so a hand-written file keeps its comments and layout;
a marker that matches no secret is refused and nothing is written."""

from __future__ import annotations

import json5

from gateway_harness import ws_client
from moltbot.config.secrets import REDACTED

HAND_WRITTEN = """// my gateway, edited by hand
{
  gateway: {
    mode: 'local',
    auth: {
      token: '%s', // never share this
    },
  },
  models: {
    providers: {
      fake: {
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKey: "sk-hand-written-key", /* rotated monthly */
        api: 'openai-completions',
        models: [{ id: 'm1' }],
      },
    },
  },
  agents: {
    defaults: {
      compaction: {
        // a text that looks like a secret inside a longer value
        memoryFlush: { prompt: "Write notes; never write apiKey: 'abc123' down." },
      },
    },
  },
  logging: { level: 'info' }, // quiet
}
"""


async def test_raw_edit_keeps_comments_and_secrets(gateway) -> None:
    path = gateway.state_dir / "moltbot.json"
    original = HAND_WRITTEN % gateway.token
    async with ws_client(gateway.url, gateway.token) as client:
        first = await client.call("config.get")
        await client.call("config.set", {"raw": original, "baseHash": first["hash"]})
        assert path.read_text() == original

        seen = await client.call("config.get")
        assert gateway.token not in seen["raw"] and "sk-hand-written-key" not in seen["raw"]
        assert seen["raw"].count(REDACTED) == 3 and "// never share this" in seen["raw"]
        edited = seen["raw"].replace("level: 'info'", "level: 'debug'")
        saved = await client.call("config.set", {"raw": edited, "baseHash": seen["hash"]})
        assert saved["ok"] is True
        # byte for byte what was there, with only the edit: comments, quotes, layout
        assert path.read_text() == original.replace("level: 'info'", "level: 'debug'")
        data = json5.loads(path.read_text())
        assert data["gateway"]["auth"]["token"] == gateway.token
        assert data["models"]["providers"]["fake"]["apiKey"] == "sk-hand-written-key"
        flush = data["agents"]["defaults"]["compaction"]["memoryFlush"]
        assert flush["prompt"] == "Write notes; never write apiKey: 'abc123' down."
        # the gateway still takes its (restored) token
        assert (await client.call("health"))["ok"] is True


async def test_a_marker_without_a_secret_is_refused(gateway) -> None:
    path = gateway.state_dir / "moltbot.json"
    async with ws_client(gateway.url, gateway.token) as client:
        first = await client.call("config.get")
        await client.call(
            "config.set", {"raw": HAND_WRITTEN % gateway.token, "baseHash": first["hash"]}
        )
        seen = await client.call("config.get")
        before = path.read_bytes()

        # a marker where the file has no secret: refused, nothing written
        unknown = seen["raw"].replace(
            "api: 'openai-completions',", f"api: 'openai-completions', token: '{REDACTED}',"
        )
        reply = await client.request("config.set", {"raw": unknown, "baseHash": seen["hash"]})
        assert reply["ok"] is False
        message = reply["error"]["message"]
        assert "models.providers.fake.token" in message and "nothing was written" in message
        # a marker inside a value that held no secret: refused too
        inside = seen["raw"].replace("'http://127.0.0.1:9/v1'", f"'http://{REDACTED}/v1'")
        reply = await client.request("config.set", {"raw": inside, "baseHash": seen["hash"]})
        assert "models.providers.fake.baseUrl holds" in reply["error"]["message"]
        assert path.read_bytes() == before

        # the base hash is still enforced, with markers and without
        for raw in (seen["raw"], HAND_WRITTEN % gateway.token):
            stale = await client.request("config.set", {"raw": raw, "baseHash": "0" * 64})
            assert stale["error"]["message"].startswith("config changed since last load")
        missing = await client.request("config.set", {"raw": seen["raw"]})
        assert missing["error"]["message"] == (
            "config base hash required; re-run config.get and retry"
        )
        assert path.read_bytes() == before
        # and the unchanged redacted text saves as a no-op, secrets intact
        await client.call("config.set", {"raw": seen["raw"], "baseHash": seen["hash"]})
        assert path.read_bytes() == before
