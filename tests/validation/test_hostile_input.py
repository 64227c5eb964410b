"""Input meant to break models: huge and deep values, keys that clash with the model's own
attributes, keys that are not strings, odd mappings, validators returning garbage, and
copies of frozen models. Each gives a clean result or a clean ValidationError."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from moltbot.validation import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)


class Bag(BaseModel):
    data: dict[str, Any] = {}
    items: list[int] = []
    anything: Any = None


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: int = 0


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int = 0


def nested_dict(depth: int) -> dict[str, Any]:
    top: dict[str, Any] = {}
    cur = top
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return top


def test_a_hundred_thousand_items() -> None:
    assert Bag(items=[str(i) for i in range(100_000)]).items[-1] == 99_999
    with pytest.raises(ValidationError) as caught:
        Bag(items=["x"] * 100_000)
    assert caught.value.error_count() == 100_000
    assert caught.value.errors()[-1]["loc"] == ("items", 99_999)


def test_a_deep_dict_in_an_any_field_is_kept_and_dumped() -> None:
    deep = nested_dict(200)
    bag = Bag(data=deep, anything=deep)
    assert bag.model_dump()["data"] == deep
    assert bag.model_dump(mode="json")["anything"] == deep
    assert bag.model_copy(deep=True) == bag


def test_a_far_too_deep_dict_does_not_take_the_process_down() -> None:
    bag = Bag(data=nested_dict(10_000))
    with pytest.raises(RecursionError):  # an ordinary exception, the caller handles it
        bag.model_dump()
    assert Bag(data={"k": 1}).model_dump() == {"data": {"k": 1}, "items": [], "anything": None}


HOSTILE_KEYS = [
    "__class__",
    "__dict__",
    "model_dump",
    "model_fields",
    "__model_extra__",
    "__model_fields_set__",
    "__getattr__",
    "__getstate__",
    "_private",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_extra_keys_named_like_model_attributes_stay_data(key: str) -> None:
    m = Open.model_validate({key: 1, "x": "2"})
    assert type(m) is Open
    assert m.x == 2
    assert m.model_extra == {key: 1}
    assert m.model_dump() == {"x": 2, key: 1}
    assert m.model_fields_set == {"x", key}
    assert pickle.loads(pickle.dumps(m)).model_dump() == {"x": 2, key: 1}
    assert copy.deepcopy(m) == m
    assert callable(Open.model_dump)
    assert m.model_copy().model_dump() == {"x": 2, key: 1}


def test_hostile_keys_as_keyword_arguments() -> None:
    m = Open(**{"__class__": 1, "__dict__": 2})
    assert type(m) is Open
    assert m.model_dump() == {"x": 0, "__class__": 1, "__dict__": 2}


class ReadOnly(Mapping[str, Any]):
    """A mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_a_mapping_that_is_not_a_dict() -> None:
    assert Open.model_validate(ReadOnly({"x": "1", "y": 2})).model_dump() == {"x": 1, "y": 2}
    kept = Bag(data=ReadOnly({"k": 1})).data
    assert type(kept) is dict
    assert kept == {"k": 1}
    with pytest.raises(ValidationError):
        Closed.model_validate(ReadOnly({"y": 1}))


def test_before_validators_returning_garbage_get_a_type_error() -> None:
    class Garbage(BaseModel):
        x: int = 0
        items: list[int] = []

        @field_validator("x", mode="before")
        @classmethod
        def to_object(cls, value: Any) -> Any:
            return object()

        @field_validator("items", mode="before")
        @classmethod
        def to_dict(cls, value: Any) -> Any:
            return {"a": 1}

    with pytest.raises(ValidationError) as caught:
        Garbage(x=1, items=[1])
    assert [(d["type"], d["loc"]) for d in caught.value.errors()] == [
        ("int_type", ("x",)),
        ("list_type", ("items",)),
    ]


class Sealed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    a: int = 0
    tags: list[int] = []


def test_pickle_and_deepcopy_of_a_frozen_model() -> None:
    sealed = Sealed(a=1, tags=[1], note="n")
    for clone in (pickle.loads(pickle.dumps(sealed)), copy.deepcopy(sealed)):
        assert clone == sealed
        assert hash(clone) == hash(sealed)
        assert clone.note == "n"
        assert clone.model_fields_set == {"a", "tags", "note"}
        assert clone.tags is not sealed.tags
        with pytest.raises(ValidationError):
            clone.a = 2
    assert copy.copy(sealed) == sealed


def test_a_frozen_model_refuses_deletion() -> None:
    sealed = Sealed(a=1, note="n")
    for name in ("a", "note"):
        with pytest.raises(ValidationError) as caught:
            delattr(sealed, name)
        assert caught.value.errors() == [
            {"type": "frozen_instance", "loc": (name,), "msg": "Instance is frozen", "input": None}
        ]
    assert sealed.a == 1
    assert sealed.model_dump() == {"a": 1, "tags": [], "note": "n"}


def test_an_after_model_validator_returning_garbage_keeps_the_model() -> None:
    class Careless(BaseModel):
        x: int = 0

        @model_validator(mode="after")
        def check(self) -> Any:
            return 5

    assert Careless(x="1").x == 1
    assert Careless.model_validate({"x": 2}).model_dump() == {"x": 2}


class Number(BaseModel):
    n: int = 0


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_an_unprintable_input_still_gives_a_validation_error() -> None:
    for given, shown in ((nested_dict(10_000), "dict"), (BadRepr(), "BadRepr")):
        with pytest.raises(ValidationError) as caught:
            Number(n=given)
        assert str(caught.value) == (
            "1 validation error for Number\nn\n  Input should be a valid integer "
            f"[type=int_type, input_value=<unprintable {shown} object>, input_type={shown}]"
        )
        assert caught.value.errors()[0]["input"] is given


class Chain(BaseModel):
    name: str = ""
    kids: list[Chain] = []


def nested_chain(depth: int) -> dict[str, Any]:
    top: dict[str, Any] = {}
    cur = top
    for _ in range(depth):
        cur["kids"] = [{}]
        cur = cur["kids"][0]
    return top


def test_a_model_nested_too_deep_is_a_validation_error() -> None:
    assert Chain.model_validate(nested_chain(50)).kids[0].kids[0].name == ""
    deep = nested_chain(10_000)
    for attempt in (lambda: Chain.model_validate(deep), lambda: Chain(**deep)):
        with pytest.raises(ValidationError) as caught:
            attempt()
        (problem,) = caught.value.errors()
        assert problem["type"] == "recursion_depth_exceeded"
        assert problem["msg"] == "Recursion error - maximum validation depth exceeded"
        assert problem["loc"] == ()


def test_unknown_keys_that_are_not_strings_are_refused_unless_ignored() -> None:
    class Quiet(BaseModel):
        x: int = 0

    assert Quiet.model_validate({1: 2, "x": 1}).model_dump() == {"x": 1}
    for model in (Open, Closed):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({1: 2, (1, 2): 3, None: 4, "x": 1})
        assert caught.value.errors() == [
            {"type": "invalid_key", "loc": (1,), "msg": "Keys should be strings", "input": 1},
            {
                "type": "invalid_key",
                "loc": ("(1, 2)",),
                "msg": "Keys should be strings",
                "input": (1, 2),
            },
            {
                "type": "invalid_key",
                "loc": ("None",),
                "msg": "Keys should be strings",
                "input": None,
            },
        ]


def test_a_bad_mapping_key_is_located_apart_from_its_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Bag(data={1: 2, (1, 2): 3, "ok": 4, 5: 6})
    assert caught.value.errors() == [
        {
            "type": "string_type",
            "loc": ("data", 1, "[key]"),
            "msg": "Input should be a valid string",
            "input": 1,
        },
        {
            "type": "string_type",
            "loc": ("data", "(1, 2)", "[key]"),
            "msg": "Input should be a valid string",
            "input": (1, 2),
        },
        {
            "type": "string_type",
            "loc": ("data", 5, "[key]"),
            "msg": "Input should be a valid string",
            "input": 5,
        },
    ]
    with pytest.raises(ValidationError) as caught:
        Number.model_validate({"n": {1: "x"}})
    assert caught.value.errors()[0]["loc"] == ("n",)

    class Counts(BaseModel):
        by_name: dict[str, int] = {}

    with pytest.raises(ValidationError) as caught:
        Counts(by_name={1: "x"})
    assert [(d["type"], d["loc"]) for d in caught.value.errors()] == [
        ("string_type", ("by_name", 1, "[key]")),
        ("int_parsing", ("by_name", 1)),
    ]
    with pytest.raises(ValidationError) as caught:
        Bag(items={"a": 1})
    assert caught.value.errors()[0]["loc"] == ("items",)


class CountsRepr(dict[str, Any]):
    """An input that counts how often it is rendered."""

    renders = 0

    def __repr__(self) -> str:
        CountsRepr.renders += 1
        return "counted"


def test_the_input_is_rendered_only_when_the_error_is_shown() -> None:
    class Wide(BaseModel):
        a: int
        b: int

    given = CountsRepr({f"k{i}": i for i in range(1000)})
    with pytest.raises(ValidationError) as caught:
        Wide.model_validate(given)
    assert CountsRepr.renders == 0
    assert caught.value.error_count() == 2
    assert "input_value=counted, input_type=CountsRepr" in str(caught.value)
    assert CountsRepr.renders == 2
    assert repr(caught.value).startswith("ValidationError('2 validation errors for Wide\\n")


def test_a_before_model_validator_returning_garbage_gets_a_model_type_error() -> None:
    class Swapped(BaseModel):
        x: int = 0

        @model_validator(mode="before")
        @classmethod
        def swap(cls, data: Any) -> Any:
            return [1, 2]

    with pytest.raises(ValidationError) as caught:
        Swapped(x=1)
    assert caught.value.errors() == [
        {
            "type": "model_type",
            "loc": (),
            "msg": "Input should be a valid dictionary or instance of Swapped",
            "input": [1, 2],
            "ctx": {"class_name": "Swapped"},
        }
    ]
