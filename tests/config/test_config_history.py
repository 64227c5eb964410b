"""Config history: every writer keeps the version it replaces, with who wrote what;
bounded, private, robust against torn files; the last good config."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from moltbot.config import history
from moltbot.config.store import (
    StaleWriteError,
    content_hash,
    file_hash,
    replace_config_text,
    update_config,
)
from moltbot.errors import ConfigError


def set_key(key: str, value: object):  # noqa: ANN201
    def mutate(data: dict) -> None:
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return mutate


def state(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / ".clawdbot-main"
    directory.mkdir()
    return directory, directory / "moltbot.json"


def test_every_write_keeps_the_text_it_replaces_and_who_wrote_each(tmp_path: Path) -> None:
    directory, path = state(tmp_path)
    update_config(path, set_key("gateway.port", 20000), {}, author="moltbot setup")
    first = path.read_text()
    assert history.versions(path) == []  # nothing was replaced yet
    update_config(path, set_key("gateway.port", 20001), {}, author="moltbot config set")
    second = path.read_text()
    replace_config_text(path, '{"gateway": {"port": 20002}}', {}, author="config.set over ws")

    newest, older = history.versions(path)
    assert history.read_version(path, newest) == second
    assert history.read_version(path, older) == first
    assert (older.written_by, older.replaced_by) == ("moltbot setup", "moltbot config set")
    assert (newest.written_by, newest.replaced_by) == ("moltbot config set", "config.set over ws")
    assert newest.new_hash == content_hash(path.read_text())
    assert history.author_of(path, content_hash(path.read_text())) == "config.set over ws"
    assert history.history_dir(path) == directory / "config-history"


def test_a_hand_edit_is_named_as_such(tmp_path: Path) -> None:
    _, path = state(tmp_path)
    path.write_text('{"gateway": {"port": 20000}}')  # an editor, not moltbot
    update_config(path, set_key("gateway.port", 20001), {}, author="moltbot config set")
    [version] = history.versions(path)
    assert version.written_by == history.HAND_EDIT
    assert history.read_version(path, version) == '{"gateway": {"port": 20000}}'


def test_files_are_private(tmp_path: Path) -> None:
    directory, path = state(tmp_path)
    update_config(path, set_key("a", 1), {})
    update_config(path, set_key("a", 2), {})
    kept = directory / "config-history"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    for entry in kept.iterdir():
        if entry.name != ".lock":
            assert stat.S_IMODE(entry.stat().st_mode) == 0o600, entry


def test_the_history_is_bounded_in_count_and_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, path = state(tmp_path)
    monkeypatch.setattr(history, "MAX_VERSIONS", 3)
    for n in range(6):
        update_config(path, set_key("n", n), {})
    kept = history.versions(path)
    assert [json.loads(history.read_version(path, v))["n"] for v in kept] == [4, 3, 2]
    assert len(list((directory / "config-history").glob("v*.json5"))) == 3

    monkeypatch.setattr(history, "MAX_BYTES", 2 * len(path.read_bytes()) + 10)
    update_config(path, set_key("n", 6), {})
    assert len(history.versions(path)) == 2


def test_writer_label_never_holds_arguments() -> None:
    label = history.command_label
    assert label(["--profile", "rescue", "config", "set", "gateway.auth.token", "s3"]) == (
        "moltbot config set"
    )
    assert label(["onboard", "--telegram-token", "123:abc"]) == "moltbot onboard"
    assert label(["doctor", "--fix", "--yes"]) == "moltbot doctor"
    assert label(["-q", "tests/config"]) == "moltbot"


def test_cli_writers_are_recorded_by_command(run_moltbot, home: Path) -> None:  # noqa: ANN001
    assert run_moltbot("--profile", "main", "setup", "--port", "21000").returncode == 0
    done = run_moltbot("--profile", "main", "config", "set", "gateway.auth.token", "secret-x")
    assert done.returncode == 0, done.stderr
    path = home / ".clawdbot-main" / "moltbot.json"
    [version] = history.versions(path, {"HOME": str(home)})
    assert version.written_by == "moltbot setup"
    assert version.replaced_by == "moltbot config set"
    writes = (home / ".clawdbot-main" / "config-history" / "writes.jsonl").read_text()
    assert "secret-x" not in writes


def test_the_seed_manual_form_keeps_history_in_its_state_dir(tmp_path: Path) -> None:
    home = tmp_path
    (home / ".clawdbot").mkdir()
    main_state = home / ".clawdbot-main"
    main_state.mkdir()
    main_cfg, rescue_cfg = home / ".clawdbot" / "main.json", home / ".clawdbot" / "rescue.json"
    (main_state / "instance.json").write_text(json.dumps({"configPath": str(main_cfg)}))
    env = {"HOME": str(home)}
    for path in (main_cfg, rescue_cfg):
        update_config(path, set_key("a", 1), env)
        update_config(path, set_key("a", 2), env)
    assert history.history_dir(main_cfg, env) == main_state / "config-history"
    assert [v.config_path for v in history.versions(main_cfg, env)] == [str(main_cfg)]
    # an unrecorded config shares its directory's history but never mixes with another
    assert [v.config_path for v in history.versions(rescue_cfg, env)] == [str(rescue_cfg)]


def test_torn_index_and_orphans_are_survived(tmp_path: Path) -> None:
    directory, path = state(tmp_path)
    update_config(path, set_key("a", 1), {})
    update_config(path, set_key("a", 2), {})
    kept = directory / "config-history"
    with (kept / "index.jsonl").open("a") as handle:
        handle.write('{"id": 9, "config_pa')  # a writer killed mid-append
    (kept / "v000099.json5").write_text("orphan")  # killed before the index line
    assert len(history.versions(path)) == 1
    update_config(path, set_key("a", 3), {})
    assert len(history.versions(path)) == 2
    assert not (kept / "v000099.json5").exists()


def test_a_history_that_cannot_be_written_never_blocks_a_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, path = state(tmp_path)
    update_config(path, set_key("a", 1), {})
    for entry in (directory / "config-history").iterdir():
        entry.unlink()
    (directory / "config-history").rmdir()
    (directory / "config-history").write_text("a file where the directory should be")
    with caplog.at_level(logging.WARNING, logger="moltbot.config.store"):
        update_config(path, set_key("a", 2), {})
    assert json.loads(path.read_text())["a"] == 2
    assert "config history of" in caplog.text


def test_a_fifo_in_the_history_never_blocks(tmp_path: Path) -> None:
    directory, path = state(tmp_path)
    update_config(path, set_key("a", 1), {})
    update_config(path, set_key("a", 2), {})
    kept = directory / "config-history"
    for name in ("index.jsonl", "writes.jsonl", "last-good.json"):
        (kept / name).unlink(missing_ok=True)
        os.mkfifo(kept / name)
    assert history.versions(path) == []
    assert history.author_of(path, "x") == history.HAND_EDIT
    assert history.last_good(directory, path) is None
    update_config(path, set_key("a", 3), {})  # the write goes on; the history is rebuilt
    assert json.loads(path.read_text())["a"] == 3


def test_last_good(tmp_path: Path) -> None:
    directory, path = state(tmp_path)
    path.write_text('{"gateway": {"port": 20000}}')
    text = path.read_text()
    assert history.last_good(directory, path) is None
    assert history.record_last_good(directory, path, text, content_hash(text))
    assert not history.record_last_good(directory, path, text, content_hash(text))  # same
    good = history.last_good(directory, path)
    assert good is not None and good.text == text and good.hash == content_hash(text)
    # a crash between the two files: the record no longer matches the text
    (directory / "config-history" / "last-good.json5").write_text("{torn")
    assert history.last_good(directory, path) is None
    # another config file of the same state dir is not this one's last good
    history.record_last_good(directory, path, text, content_hash(text), pid=1)
    assert history.last_good(directory, directory / "other.json") is None


def test_a_broken_file_can_be_replaced_whole(tmp_path: Path) -> None:
    _, path = state(tmp_path)
    path.write_bytes(b'{"gateway": {"port": 20000} oops \xff}')
    with pytest.raises(ConfigError):
        update_config(path, set_key("a", 1), {})  # a mutation needs a parsable file
    broken = file_hash(path)
    with pytest.raises(StaleWriteError):
        replace_config_text(path, '{"a": 1}', {}, base_hash="0" * 64)
    replace_config_text(path, '{"a": 1}', {}, base_hash=broken, author="rescue")
    assert path.read_text() == '{"a": 1}'
    [version] = history.versions(path)
    assert version.hash == broken
    assert history.read_version(path, version).startswith('{"gateway": {"port": 20000} oops')


async def test_protocol_writers_are_recorded_by_method_and_client(home: Path) -> None:
    """Every method that writes the config names itself as the writer (``config.patch``,
    and ``skills.update``, which knows nothing of the history): the gateway's request
    task sets the writer for whatever it writes."""
    import asyncio

    from gateway_harness import CORE_ONLY, start_gateway, ws_client

    gateway = await asyncio.to_thread(start_gateway, home, "main", env=CORE_ONLY)
    try:
        async with ws_client(gateway.url, gateway.token) as client:
            base = (await client.call("config.get"))["hash"]
            await client.call(
                "config.patch", {"raw": "{ logging: { level: 'info' } }", "baseHash": base}
            )
            await client.call("skills.update", {"skillKey": "weather", "enabled": False})
    finally:
        await asyncio.to_thread(gateway.stop)
    writes = [
        json.loads(line)
        for line in (gateway.state_dir / "config-history" / "writes.jsonl").read_text().splitlines()
    ]
    writers = [w["author"] for w in writes]
    assert writers[-2].startswith("config.patch over the protocol (client "), writers
    assert writers[-1].startswith("skills.update over the protocol (client "), writers
    newest = history.versions(gateway.state_dir / "moltbot.json", {"HOME": str(home)})[0]
    assert newest.replaced_by.startswith("skills.update over the protocol (client ")
    assert newest.written_by.startswith("config.patch over the protocol (client ")
