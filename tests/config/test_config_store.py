"""Reading, validating and writing the config file (moltbot.config.store)."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from moltbot.config import keypath
from moltbot.config.store import (
    content_hash,
    parse_text,
    parse_value,
    read_config,
    update_config,
    validate,
    write_lock,
)
from moltbot.errors import ConfigError, ConflictError

SRC = "/x/moltbot.json"


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_text(text, SRC)
    assert err.value.exit_code == 78
    return err.value.message


# -- parsing ---------------------------------------------------------------------------------


def test_json_and_json5() -> None:
    assert parse_text('{"a": [1, 2.5, null, true]}', SRC) == {"a": [1, 2.5, None, True]}
    text = "// c\n{a: 1, 'b': 'x', /* d */ c: [1,], d: 0x10, e: +1, f: .5, g: Infinity,}\n"
    assert parse_text(text, SRC) == {
        "a": 1,
        "b": "x",
        "c": [1],
        "d": 16,
        "e": 1,
        "f": 0.5,
        "g": float("inf"),
    }
    assert parse_text("", SRC) == {}
    assert parse_text("  \n", SRC) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"a": ',
            "config syntax error at /x/moltbot.json:1:6: unexpected end of file, expected a value",
        ),
        (
            "{a: 1,,}",
            "config syntax error at /x/moltbot.json:1:6: unexpected ',' (two commas in a row)",
        ),
        (
            "{\n  a: 1\n  b: 2\n}",
            "config syntax error at /x/moltbot.json:3:3: unexpected 'b', expected ',' or '}'",
        ),
        ("{\n  a: #1\n}", "config syntax error at /x/moltbot.json:2:6: unexpected character '#'"),
        (
            '{a: "open\n}',
            "config syntax error at /x/moltbot.json:1:5: unterminated string "
            "(missing closing quote)",
        ),
        (
            "{a: [1, 2}",
            "config syntax error at /x/moltbot.json:1:10: unexpected '}', expected ']' or ','",
        ),
        (
            "{a: tru}",
            "config syntax error at /x/moltbot.json:1:5: unexpected 'tru', expected a value",
        ),
        ("{\n a: 1,\n}\n}", "config syntax error at /x/moltbot.json:4:1: unexpected '}'"),
        (
            "{a: 01}",
            "config syntax error at /x/moltbot.json:1:5: invalid number '01': "
            "leading zeros are not allowed",
        ),
    ],
)
def test_syntax_errors_name_file_line_column_and_what(text: str, message: str) -> None:
    assert config_error(text) == message


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[1]", "an array"), ('"x"', "a string"), ("true", "a boolean"), ("5", "a value")],
)
def test_top_level_must_be_an_object(text: str, kind: str) -> None:
    assert config_error(text) == f"{SRC}: the config must be a JSON5 object {{...}}, got {kind}"


# -- validation ------------------------------------------------------------------------------


def schema_error(data: dict[str, Any], env: dict[str, str] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as err:
        validate(data, env or {}, SRC, **kw)
    return err.value.message


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (
            {"gateway": {"port": "abc"}},
            ['gateway.port: expected an integer, unable to parse string as an integer (got "abc")'],
        ),
        (
            {"gateway": {"port": 70000}},
            ["gateway.port: expected a value less than or equal to 65535 (got 70000)"],
        ),
        (
            {"gateway": {"bind": "all"}},
            [
                "gateway.bind: expected 'loopback', 'lan', 'tailnet', 'auto' or 'custom' "
                '(got "all")'
            ],
        ),
        (
            {"gateway": {"mode": "lokal"}},
            ["gateway.mode: expected 'local' or 'remote' (got \"lokal\")"],
        ),
        (
            {"agents": {"defaults": {"model": 5}}},
            ["agents.defaults.model: expected a string or an object (got 5)"],
        ),
        ({"agents": {"list": [{"name": "x"}]}}, ["agents.list[0].id: required key is missing"]),
        (
            {"agents": {"list": [{"id": "Bad Id"}]}},
            [
                "agents.list[0].id: expected a string matching ^[a-z0-9][a-z0-9_-]{0,63}$ "
                '(got "Bad Id")'
            ],
        ),
        (
            {"browser": {"profiles": {"w": {"cdpPort": 0}}}},
            ["browser.profiles.w.cdpPort: expected a value greater than or equal to 1 (got 0)"],
        ),
        (
            {"gateway": {"port": "x", "auth": {"mode": "key"}}},
            [
                'gateway.port: expected an integer, unable to parse string as an integer (got "x")',
                "gateway.auth.mode: expected 'token' or 'password' (got \"key\")",
            ],
        ),
    ],
)
def test_schema_errors_name_key_path_and_expectation(
    data: dict[str, Any], lines: list[str]
) -> None:
    assert schema_error(data) == f"invalid config at {SRC}:\n" + "\n".join(
        f"  - {x}" for x in lines
    )


def test_unknown_keys_warn_or_fail_when_strict() -> None:
    data = {"gatewy": {}, "gateway": {"prt": 1}, "channels": {"anything": {"goes": 1}}}
    config, warnings = validate(data, {}, SRC)
    assert warnings == (
        f"{SRC}: unknown key gatewy (ignored)",
        f"{SRC}: unknown key gateway.prt (ignored)",
    )
    expected = (
        f"invalid config at {SRC} (strict: unknown keys are errors):\n"
        "  - gatewy: unknown key\n  - gateway.prt: unknown key"
    )
    assert schema_error(data, strict=True) == expected
    assert schema_error({**data, "strict": True}) == expected
    assert validate({**data, "strict": True}, {}, SRC, strict=False)[1] == warnings


def test_env_substitution() -> None:
    data = {"gateway": {"port": "${PORT}", "auth": {"token": "${A}-${B}", "password": "$${LIT}"}}}
    config, _ = validate(data, {"PORT": "20000", "A": "x", "B": "y"}, SRC)
    assert config.gateway.port == 20000
    assert config.gateway.auth.token == "x-y"
    assert config.gateway.auth.password == "${LIT}"


@pytest.mark.parametrize("env", [{}, {"TOKEN": ""}])
def test_missing_variable_names_it_and_the_key_path(env: dict[str, str]) -> None:
    data = {"agents": {"list": [{"id": "a", "name": "${TOKEN}"}]}}
    with pytest.raises(ConfigError) as err:
        validate(data, env, SRC)
    assert err.value.message == (
        f'{SRC}: missing environment variable "TOKEN" referenced at agents.list[0].name'
    )
    assert err.value.hint == "export TOKEN=... or replace the reference in the config file"


def test_missing_variable_kept_on_request() -> None:
    config, _ = validate({"gateway": {"auth": {"token": "${T}"}}}, {}, SRC, missing_env="keep")
    assert config.gateway.auth.token == "${T}"


# -- reading ---------------------------------------------------------------------------------


def test_missing_file_is_an_empty_valid_config(tmp_path: Path) -> None:
    snapshot = read_config(tmp_path / "none.json", {})
    assert (snapshot.exists, snapshot.hash, snapshot.data) == (False, None, {})
    assert snapshot.config.gateway.port is None


def test_read_keeps_references_in_data(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{gateway: {auth: {token: "${T}"}}}')
    snapshot = read_config(path, {"T": "secret"})
    assert snapshot.data == {"gateway": {"auth": {"token": "${T}"}}}
    assert snapshot.config.gateway.auth.token == "secret"
    assert snapshot.hash == content_hash(path.read_text())


def test_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match=r"^cannot read config .*dir\.json: Is a directory$"):
        read_config(tmp_path / "dir.json", {})
    with pytest.raises(ConfigError, match=r"^cannot read config .*dir\.json: Is a directory$"):
        update_config(tmp_path / "dir.json", set_key("a", 1), {})


# -- writing ---------------------------------------------------------------------------------


def set_key(key: str, value: Any):
    return lambda data: keypath.set_(data, keypath.parse(key), value)


def test_first_write_creates_private_dir_and_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "moltbot.json"
    snapshot = update_config(path, set_key("gateway.port", 20000), {})
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["gateway"] == {"port": 20000}
    assert set(data["meta"]) == {"lastTouchedVersion", "lastTouchedAt"}
    assert snapshot.hash == content_hash(path.read_text())
    assert not path.with_name("moltbot.json.bak").exists()


def test_previous_version_is_kept_as_bak(tmp_path: Path) -> None:
    path = tmp_path / "moltbot.json"
    update_config(path, set_key("a", 1), {})
    first = path.read_text()
    update_config(path, set_key("a", 2), {})
    assert path.with_name("moltbot.json.bak").read_text() == first
    assert json.loads(path.read_text())["a"] == 2


def test_invalid_result_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "moltbot.json"
    update_config(path, set_key("gateway.port", 20000), {})
    before = path.read_text()
    with pytest.raises(ConfigError, match="gateway.port: expected a value less than"):
        update_config(path, set_key("gateway.port", 99999), {})
    assert path.read_text() == before
    assert not path.with_name("moltbot.json.bak").exists()


def test_compare_and_swap(tmp_path: Path) -> None:
    path = tmp_path / "moltbot.json"
    snapshot = update_config(path, set_key("a", 1), {})
    update_config(path, set_key("a", 2), {}, base_hash=snapshot.hash)
    with pytest.raises(ConflictError) as err:
        update_config(path, set_key("a", 3), {}, base_hash=snapshot.hash)
    assert f"{path} changed since it was read" in err.value.message
    assert err.value.message.endswith("; reload and retry")
    assert json.loads(path.read_text())["a"] == 2
    with pytest.raises(ConflictError, match="expected none"):
        update_config(path, set_key("a", 4), {}, base_hash="")


def test_compare_and_swap_of_a_whole_file(tmp_path: Path) -> None:
    from moltbot.config.store import read_config, replace_config_text

    path = tmp_path / "moltbot.json"
    with pytest.raises(ConflictError, match=r"\(hash none, expected 0123456789ab\)"):
        update_config(path, set_key("a", 0), {}, base_hash="0123456789abcdef")
    first = replace_config_text(path, '{"a": 1}', {}, base_hash="")
    assert first.exists
    read = read_config(path, {})
    assert read.exists and read.hash == first.hash and read.raw == '{"a": 1}'
    replace_config_text(path, '{"a": 2}', {}, base_hash=first.hash)
    with pytest.raises(ConflictError, match="changed since it was read"):
        replace_config_text(path, '{"a": 3}', {}, base_hash=first.hash)
    assert json.loads(path.read_text()) == {"a": 2}
    assert not read_config(tmp_path / "missing.json", {}).exists


def test_unset_variables_do_not_block_writes(tmp_path: Path) -> None:
    path = tmp_path / "moltbot.json"
    path.write_text('{gateway: {auth: {token: "${NOT_SET}"}}}')
    update_config(path, set_key("gateway.port", 20000), {})
    assert '"${NOT_SET}"' in path.read_text()


def test_comments_survive_a_write(tmp_path: Path) -> None:
    path = tmp_path / "moltbot.json"
    path.write_text("// mine\n{\n  gateway: { port: 20000 }, // p\n}\n")
    update_config(path, set_key("gateway.port", 20001), {})
    text = path.read_text()
    assert text.startswith("// mine\n{\n  gateway: { port: 20001 }, // p\n  meta: {\n")


def test_stale_temp_files_of_a_dead_writer_are_removed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    path = state / "moltbot.json"
    for stale in (".moltbot.json.99999.tmp", ".moltbot.json.bak.99999.tmp"):
        (state / stale).write_text('{"torn": ')
    update_config(path, set_key("a", 1), {})
    assert sorted(p.name for p in state.iterdir()) == [
        "config-history",  # the write's record (who wrote it)
        "moltbot.json",
        "moltbot.json.lock",
    ]


def test_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "moltbot.json"
    lock = os.open(tmp_path / "moltbot.json.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another open file description: conflicts like a process
        with pytest.raises(ConflictError) as err, write_lock(path, timeout=0.1):
            pass
        assert err.value.message == (f"timed out after 0 s waiting for the config lock {path}.lock")
    finally:
        os.close(lock)
    with write_lock(path, timeout=0.1):
        pass


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("18789", 18789),
        ("true", True),
        ("null", None),
        ("lan", "lan"),
        ('"18789"', "18789"),
        ("{cdpPort: 1}", {"cdpPort": 1}),
        ("[1, 'a']", [1, "a"]),
        ("${TOKEN}", "${TOKEN}"),
        ("hello world", "hello world"),
        ("", ""),
    ],
)
def test_parse_value(text: str, value: Any) -> None:
    assert parse_value(text) == value


def test_update_is_on_disk_before_it_returns(tmp_path: Path, monkeypatch) -> None:
    """The new content is fsync'd before the rename, and the rename (the directory)
    before update_config returns; the same for the .bak copy and a whole-file replace."""
    from fsync_spy import FsyncSpy
    from moltbot.config.store import replace_config_text

    path = tmp_path / "moltbot.json"
    update_config(path, set_key("a", 1), {})
    spy = FsyncSpy.install(monkeypatch)
    snapshot = update_config(path, set_key("a", 2), {})
    size = len(snapshot.raw.encode())
    renamed = spy.index("replace", path)
    temp = spy.events[renamed][2]
    assert spy.synced(temp) == [size]
    assert spy.index("fsync", temp) < renamed < spy.index("fsync-dir", tmp_path)
    backup = path.with_name("moltbot.json.bak")
    assert spy.index("replace", backup) < renamed

    spy.clear()
    text = '{"a": 3}\n'
    replace_config_text(path, text, {})
    renamed = spy.index("replace", path)
    assert spy.synced(spy.events[renamed][2]) == [len(text)]
    assert renamed < spy.index("fsync-dir", tmp_path)


def test_an_editor_saving_during_an_update_is_kept(tmp_path: Path) -> None:
    """Someone outside the lock (an editor) saves while an update is computed: the update
    is redone on top of the editor's file, not written over it."""
    path = tmp_path / "moltbot.json"
    update_config(path, set_key("a", 1), {})
    calls = []

    def mutate(data: dict[str, Any]) -> None:
        calls.append(dict(data))
        if len(calls) == 1:  # the editor saves right after we read
            path.write_text('{"a": 1, "editor": true}\n')
        data["b"] = 2

    snapshot = update_config(path, mutate, {})
    assert snapshot.exists and len(calls) == 2
    saved = json.loads(path.read_text())
    assert saved["editor"] is True and saved["b"] == 2


def test_reading_raw_does_not_import_the_schema() -> None:
    """`status` reads the config raw: the models are imported only when validating."""
    import subprocess
    import sys

    code = "import sys, moltbot.config.store; print('moltbot.validation' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
