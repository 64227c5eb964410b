"""Comment- and order-preserving rendering of config writes (moltbot.config.edit)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import json5
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moltbot.config.edit import dump, render

HAND_EDITED = """\
// moltbot config, edited by hand
{
  // the gateway
  gateway: {
    port: 18789, // base port
    auth: { token: "${GW_TOKEN}" },
    bind: 'loopback',
  },
  /* agents */
  agents: {
    defaults: {
      workspace: "~/clawd",
      model: "openai/gpt-4o", // fast
    },
  },
  browser: { profiles: {} },
  list: [1, 2, 3,],
}
"""

COMMENTS = ["// moltbot config, edited by hand", "// the gateway", "// base port", "/* agents */"]


def patched(mutate: Callable[[dict[str, Any]], None], text: str = HAND_EDITED) -> str:
    original = json5.loads(text)
    data = copy.deepcopy(original)
    mutate(data)
    out = render(text, original, data)
    assert json5.loads(out) == data
    return out


def lines_changed(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_plain_files_are_plain_json() -> None:
    assert render("", {}, {"a": 1}) == '{\n  "a": 1\n}\n'
    canonical = dump({"a": 1, "b": {"c": [1, 2]}})
    assert render(canonical, {"a": 1, "b": {"c": [1, 2]}}, {"a": 2}) == dump({"a": 2})


def test_changed_value_replaces_only_its_span() -> None:
    out = patched(lambda d: d["gateway"].__setitem__("port", 19789))
    assert out == HAND_EDITED.replace("port: 18789,", "port: 19789,")


def test_new_key_goes_into_the_deepest_existing_object_with_its_indentation() -> None:
    out = patched(lambda d: d["gateway"].__setitem__("mode", "local"))
    assert out == HAND_EDITED.replace(
        "    bind: 'loopback',\n", "    bind: 'loopback',\n    mode: \"local\",\n"
    )


def test_new_nested_object_is_written_in_the_file_style() -> None:
    out = patched(lambda d: d["agents"].__setitem__("list", [{"id": "main", "default": True}]))
    assert '    },\n    list: [\n      {\n        id: "main",\n        default: true\n' in out
    for comment in COMMENTS:
        assert comment in out


def test_new_top_level_key_keeps_trailing_comma_style() -> None:
    out = patched(lambda d: d.__setitem__("meta", {"lastTouchedVersion": "1"}))
    assert out.endswith('  list: [1, 2, 3,],\n  meta: {\n    lastTouchedVersion: "1"\n  },\n}\n')


def test_insert_into_one_line_objects() -> None:
    out = patched(lambda d: d["gateway"]["auth"].__setitem__("mode", "token"))
    assert 'auth: { token: "${GW_TOKEN}", mode: "token" },' in out
    out = patched(lambda d: d["browser"]["profiles"].__setitem__("work", {"cdpPort": 18850}))
    assert "browser: { profiles: { work: { cdpPort: 18850 } } }," in out


def test_removed_key_goes_with_its_comma_and_comment() -> None:
    out = patched(lambda d: d["gateway"].pop("port"))
    assert out == HAND_EDITED.replace("    port: 18789, // base port\n", "")


def test_removing_the_last_key_without_trailing_comma() -> None:
    text = '{\n  "a": 1,\n  // about b\n  "b": 2\n}\n'
    out = patched(lambda d: d.pop("b"), text)
    assert out == '{\n  "a": 1\n  // about b\n}\n'


def test_remove_last_and_add_in_one_write() -> None:
    text = '{\n  "a": 1, // one\n  "b": 2\n}\n'
    out = patched(lambda d: (d.pop("b"), d.__setitem__("c", 3)), text)
    assert out == '{\n  "a": 1, // one\n  "c": 3\n}\n'


def test_add_after_a_last_key_without_comma() -> None:
    text = '{\n    "a": 1 // keep\n}\n'
    out = patched(lambda d: d.__setitem__("b", [1]), text)
    assert out == '{\n    "a": 1, // keep\n    "b": [\n        1\n    ]\n}\n'


def test_empty_object_with_only_a_comment() -> None:
    text = "{\n  tools: {\n    // nothing yet\n  },\n}\n"
    out = patched(lambda d: d["tools"].__setitem__("exec", {"timeout": 5}), text)
    assert (
        out == "{\n  tools: {\n    // nothing yet\n    exec: {\n      timeout: 5\n    }\n  },\n}\n"
    )


def test_remove_every_key_keeps_the_comments() -> None:
    text = "{\n  // header\n  a: 1,\n  b: 2\n}\n"
    assert patched(lambda d: d.clear(), text) == "{\n  // header\n}\n"


def test_env_references_survive_unrelated_writes() -> None:
    out = patched(lambda d: d["agents"]["defaults"].__setitem__("model", "anthropic/claude"))
    assert '"${GW_TOKEN}"' in out
    assert 'model: "anthropic/claude", // fast' in out


def test_type_changes_and_arrays() -> None:
    out = patched(lambda d: d["gateway"].__setitem__("port", {"x": 1}))
    assert "    port: {\n      x: 1\n    }, // base port\n" in out
    out = patched(lambda d: d.__setitem__("list", [1, 2, 3, 4]))
    assert "  list: [\n    1,\n    2,\n    3,\n    4\n  ],\n" in out
    out = patched(lambda d: d["list"].__setitem__(1, 20))
    assert "list: [1, 20, 3,]," in out


def test_keys_that_need_quotes() -> None:
    out = patched(lambda d: d.__setitem__("with space", True))
    assert '  "with space": true,\n' in out
    out = patched(lambda d: d.__setitem__("true", None))
    assert '  "true": null,\n' in out


def test_quoted_key_style_is_kept() -> None:
    text = '{\n  "gateway": {\n    "port": 1, // p\n  },\n}\n'
    out = patched(lambda d: d["gateway"].__setitem__("mode", "local"), text)
    assert out == '{\n  "gateway": {\n    "port": 1, // p\n    "mode": "local",\n  },\n}\n'


def test_tabs_and_four_spaces_are_kept() -> None:
    text = '{\n\t"a": {\n\t\t"b": 1\n\t}, // c\n}\n'
    out = patched(lambda d: d["a"].__setitem__("c", 2), text)
    assert out == '{\n\t"a": {\n\t\t"b": 1,\n\t\t"c": 2\n\t}, // c\n}\n'


def test_numbers_are_told_apart() -> None:
    text = "{a: 1, // int\n b: 1.0}\n"
    out = patched(lambda d: d.__setitem__("a", True), text)
    assert "a: true, // int" in out
    out = patched(lambda d: d.__setitem__("b", 1), text)
    assert "b: 1}" in out


def test_duplicate_keys_fall_back_to_plain_json() -> None:
    text = "{a: 1, a: 2, // dup\n b: 3}"
    original = json5.loads(text)
    assert render(text, original, {"a": 2, "b": 4}) == dump({"a": 2, "b": 4})


def test_unparseable_original_falls_back() -> None:
    assert render("{oops", {}, {"a": 1}) == dump({"a": 1})


def test_original_that_disagrees_with_its_text_falls_back() -> None:
    assert render("{a: 1} // c", {"a": 5}, {"a": 2}) == dump({"a": 2})


# -- property: any change renders to text that parses to the new data, and
#    unrelated comments survive single-key changes --------------------------------------------

KEYS = st.sampled_from(["gateway", "port", "auth", "token", "mode", "x", "with space", "list"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_single_change_round_trips_and_keeps_comments(data: st.DataObject) -> None:
    original = json5.loads(HAND_EDITED)
    new = copy.deepcopy(original)
    paths = [p for p in _paths(new) if isinstance(p[-1], str)]
    path = data.draw(st.sampled_from(paths))
    parent = new
    for key in path[:-1]:
        parent = parent[key]
    action = data.draw(st.sampled_from(["set", "unset", "add"]))
    if action == "set":
        parent[path[-1]] = data.draw(VALUES)
    elif action == "unset":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(KEYS)] = data.draw(VALUES)
    out = render(HAND_EDITED, original, new)
    assert json5.loads(out) == new
    # Comments outside the changed spans survive; those inside go with their value.
    survivors = ["// moltbot config, edited by hand", "// the gateway", "/* agents */"]
    gateway = new.get("gateway")
    if isinstance(gateway, dict) and "port" in gateway:
        survivors.append("// base port")
    defaults = (
        new.get("agents", {}).get("defaults") if isinstance(new.get("agents"), dict) else None
    )
    if isinstance(defaults, dict) and "model" in defaults:
        survivors.append("// fast")
    for comment in survivors:
        assert comment in out


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=4), st.dictionaries(KEYS, VALUES, max_size=4))
def test_arbitrary_rewrites_always_parse_to_the_new_data(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    text = "// header\n" + json.dumps(before, indent=3) + "\n"
    assert json5.loads(render(text, before, after)) == after


@pytest.mark.parametrize("source", [HAND_EDITED, "{}", "{\n}\n", "// c\n{}\n"])
def test_meta_stamp_on_any_file(source: str) -> None:
    out = patched(lambda d: d.__setitem__("meta", {"lastTouchedAt": "now"}), source)
    if "//" in source:
        assert source.splitlines()[0] in out
