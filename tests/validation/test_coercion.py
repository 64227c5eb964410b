"""Field types: lenient coercion, literals, unions, discriminated unions, constraints.

Expected values (error types, messages, locations, context) are the ones pydantic 2.14
gives for the same models, written out literally.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import pytest

from moltbot.validation import BaseModel, Field, ValidationError


def problems(model: type[BaseModel], data: Any) -> list[tuple[str, tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(d["type"], d["loc"], d["msg"]) for d in caught.value.errors()]


def detail(model: type[BaseModel], data: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    (only,) = caught.value.errors()
    return only


class Scalars(BaseModel):
    i: int = 0
    b: bool = False
    f: float = 0.0
    s: str = ""


INT_PARSING = "Input should be a valid integer, unable to parse string as an integer"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("7", 7),
        (7.0, 7),
        (True, 1),
        (" 7 ", 7),
        ("7.0", 7),
        ("1_000", 1000),
        (-3, -3),
        ("+5", 5),
        ("10.00", 10),
        ("-0.0", 0),
        ("1_000.0", 1000),
        ("9" * 30, 10**30 - 1),
    ],
)
def test_int_accepts_numbers_numeric_strings_and_bools(given: Any, expected: int) -> None:
    value = Scalars.model_validate({"i": given}).i
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    ("given", "kind", "msg"),
    [
        (
            7.5,
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
        ),
        ("7.5", "int_parsing", INT_PARSING),
        ("x", "int_parsing", INT_PARSING),
        ("1e3", "int_parsing", INT_PARSING),
        ("1.", "int_parsing", INT_PARSING),
        (".0", "int_parsing", INT_PARSING),
        ("\u0661\u0662", "int_parsing", INT_PARSING),  # Arabic-Indic digits: ASCII only
        (
            "9" * 5000,
            "int_parsing_size",
            "Unable to parse input string as an integer, exceeded maximum size",
        ),
        (None, "int_type", "Input should be a valid integer"),
        ([7], "int_type", "Input should be a valid integer"),
        (float("nan"), "finite_number", "Input should be a finite number"),
        (float("inf"), "finite_number", "Input should be a finite number"),
    ],
)
def test_int_refuses(given: Any, kind: str, msg: str) -> None:
    found = detail(Scalars, {"i": given})
    assert (found["type"], found["loc"], found["msg"]) == (kind, ("i",), msg)
    assert found["input"] is given


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("yes", True),
        ("no", False),
        ("on", True),
        ("off", False),
        ("true", True),
        ("False", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        (1.0, True),
    ],
)
def test_bool_accepts_words_and_zero_one(given: Any, expected: bool) -> None:
    assert Scalars.model_validate({"b": given}).b is expected


@pytest.mark.parametrize(
    ("given", "kind"),
    [
        (2, "bool_parsing"),
        (-1, "bool_parsing"),
        ("maybe", "bool_parsing"),
        (None, "bool_type"),
        ([], "bool_type"),
        (2.0, "bool_parsing"),
        (0.5, "bool_type"),
        (float("nan"), "bool_type"),
    ],
)
def test_bool_refuses(given: Any, kind: str) -> None:
    msg = {
        "bool_parsing": "Input should be a valid boolean, unable to interpret input",
        "bool_type": "Input should be a valid boolean",
    }[kind]
    assert problems(Scalars, {"b": given}) == [(kind, ("b",), msg)]


@pytest.mark.parametrize(
    ("given", "expected"), [("1.5", 1.5), (2, 2.0), (True, 1.0), (" 1.5 ", 1.5), ("1_0", 10.0)]
)
def test_float_accepts_numbers_and_numeric_strings(given: Any, expected: float) -> None:
    value = Scalars.model_validate({"f": given}).f
    assert value == expected
    assert type(value) is float


def test_float_and_str_refuse() -> None:
    assert problems(Scalars, {"f": "x", "s": 5}) == [
        (
            "float_parsing",
            ("f",),
            "Input should be a valid number, unable to parse string as a number",
        ),
        ("string_type", ("s",), "Input should be a valid string"),
    ]
    assert problems(Scalars, {"f": "\u0661\u0662"})[0][0] == "float_parsing"
    assert problems(Scalars, {"f": None, "s": None}) == [
        ("float_type", ("f",), "Input should be a valid number"),
        ("string_type", ("s",), "Input should be a valid string"),
    ]


def test_not_a_mapping_is_a_model_type_error() -> None:
    for given in (None, [1], "x", 5):
        found = detail(Scalars, given)
        assert found == {
            "type": "model_type",
            "loc": (),
            "msg": "Input should be a valid dictionary or instance of Scalars",
            "input": given,
            "ctx": {"class_name": "Scalars"},
        }


class Lit(BaseModel):
    mode: Literal["a", "b"] = "a"
    one: Literal[1] = 1


def test_literal_accepts_its_values_only() -> None:
    assert Lit.model_validate({"mode": "b"}).mode == "b"
    assert detail(Lit, {"mode": "c"}) == {
        "type": "literal_error",
        "loc": ("mode",),
        "msg": "Input should be 'a' or 'b'",
        "input": "c",
        "ctx": {"expected": "'a' or 'b'"},
    }
    assert problems(Lit, {"one": "1"}) == [("literal_error", ("one",), "Input should be 1")]
    assert problems(Lit, {"mode": None}) == [
        ("literal_error", ("mode",), "Input should be 'a' or 'b'")
    ]


class Opt(BaseModel):
    o: int | None = None
    u: str | list[str] | None = None
    v: int | str = 0
    w: bool | int | float | str = 0


def test_optional_is_not_a_union_in_error_locations() -> None:
    assert Opt.model_validate({"o": None}).o is None
    assert problems(Opt, {"o": "x"}) == [("int_parsing", ("o",), INT_PARSING)]


def test_union_errors_carry_member_tags() -> None:
    assert problems(Opt, {"u": 5}) == [
        ("string_type", ("u", "str"), "Input should be a valid string"),
        ("list_type", ("u", "list[str]"), "Input should be a valid list"),
    ]
    assert problems(Opt, {"u": ["a", 1]}) == [
        ("string_type", ("u", "str"), "Input should be a valid string"),
        ("string_type", ("u", "list[str]", 1), "Input should be a valid string"),
    ]
    assert problems(Opt, {"v": None}) == [
        ("int_type", ("v", "int"), "Input should be a valid integer"),
        ("string_type", ("v", "str"), "Input should be a valid string"),
    ]


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("v", "5", "5"),
        ("v", 5, 5),
        ("v", 5.0, 5),
        ("w", "1", "1"),
        ("w", 1.0, 1.0),
        ("w", True, True),
        ("w", 1, 1),
    ],
)
def test_smart_union_prefers_the_exact_type(field: str, given: Any, expected: Any) -> None:
    value = getattr(Opt.model_validate({field: given}), field)
    assert value == expected
    assert type(value) is type(expected)


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog", "puppy"]
    good: bool = True


class Pet(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")
    maybe: Annotated[Cat | Dog, Field(discriminator="kind")] | None = None
    plain: Cat | Dog | None = None


def test_discriminated_union_picks_the_member_by_tag() -> None:
    pets = Pet.model_validate({"pet": {"kind": "puppy"}, "maybe": {"kind": "cat"}})
    assert type(pets.pet) is Dog
    assert type(pets.maybe) is Cat
    assert Pet.model_validate({"pet": {"kind": "dog"}, "maybe": None}).maybe is None
    already = Cat(kind="cat", lives=3)
    assert Pet(pet=already).pet is already


def test_discriminated_union_errors() -> None:
    assert detail(Pet, {"pet": {}}) == {
        "type": "union_tag_not_found",
        "loc": ("pet",),
        "msg": "Unable to extract tag using discriminator 'kind'",
        "input": {},
        "ctx": {"discriminator": "'kind'"},
    }
    assert detail(Pet, {"pet": {"kind": "cow"}}) == {
        "type": "union_tag_invalid",
        "loc": ("pet",),
        "msg": "Input tag 'cow' found using 'kind' does not match any of the expected tags: "
        "'cat', 'dog', 'puppy'",
        "input": {"kind": "cow"},
        "ctx": {"discriminator": "'kind'", "tag": "cow", "expected_tags": "'cat', 'dog', 'puppy'"},
    }
    assert problems(Pet, {"pet": {"kind": ["x"]}}) == [
        (
            "union_tag_invalid",
            ("pet",),
            "Input tag '['x']' found using 'kind' does not match any of the expected tags: "
            "'cat', 'dog', 'puppy'",
        )
    ]
    assert detail(Pet, {"pet": {"kind": None}})["ctx"] == {
        "discriminator": "'kind'",
        "tag": "None",
        "expected_tags": "'cat', 'dog', 'puppy'",
    }
    assert problems(Pet, {"pet": {"kind": ([],)}})[0][:2] == ("union_tag_invalid", ("pet",))
    assert problems(Pet, {"pet": 5}) == [
        (
            "model_attributes_type",
            ("pet",),
            "Input should be a valid dictionary or object to extract fields from",
        )
    ]


def test_discriminated_member_errors_are_located_under_the_tag() -> None:
    assert problems(Pet, {"pet": {"kind": "cat", "lives": "x"}}) == [
        ("int_parsing", ("pet", "cat", "lives"), INT_PARSING)
    ]
    assert problems(Pet, {"pet": {"kind": "puppy", "good": 5}}) == [
        (
            "bool_parsing",
            ("pet", "puppy", "good"),
            "Input should be a valid boolean, unable to interpret input",
        )
    ]
    assert problems(Pet, {"pet": {"kind": "dog"}, "maybe": {"kind": "x"}})[0][:2] == (
        "union_tag_invalid",
        ("maybe",),
    )


def test_plain_union_of_models_tags_errors_with_class_names() -> None:
    assert problems(Pet, {"pet": {"kind": "dog"}, "plain": {"kind": "x"}}) == [
        ("literal_error", ("plain", "Cat", "kind"), "Input should be 'cat'"),
        ("literal_error", ("plain", "Dog", "kind"), "Input should be 'dog' or 'puppy'"),
    ]


class Limits(BaseModel):
    a: int = Field(1, ge=1)
    b: int = Field(5, gt=1)
    c: float = Field(0, le=1.5)
    d: int = Field(0, lt=3)
    s: str = Field("xx", min_length=2, max_length=3)
    items: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=2)
    p: str = Field("ab", pattern=r"^[a-z]+$")
    one: str = Field("x", min_length=1)
    h: Annotated[int, Field(ge=0)] | None = None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": 0}, ("greater_than_equal", "Input should be greater than or equal to 1", {"ge": 1})),
        ({"b": 1}, ("greater_than", "Input should be greater than 1", {"gt": 1})),
        ({"c": 2}, ("less_than_equal", "Input should be less than or equal to 1.5", {"le": 1.5})),
        ({"d": 3}, ("less_than", "Input should be less than 3", {"lt": 3})),
        (
            {"s": "a"},
            ("string_too_short", "String should have at least 2 characters", {"min_length": 2}),
        ),
        (
            {"s": "abcd"},
            ("string_too_long", "String should have at most 3 characters", {"max_length": 3}),
        ),
        (
            {"one": ""},
            ("string_too_short", "String should have at least 1 character", {"min_length": 1}),
        ),
        (
            {"items": []},
            (
                "too_short",
                "List should have at least 1 item after validation, not 0",
                {"field_type": "List", "min_length": 1, "actual_length": 0},
            ),
        ),
        (
            {"items": [1, 2, 3]},
            (
                "too_long",
                "List should have at most 2 items after validation, not 3",
                {"field_type": "List", "max_length": 2, "actual_length": 3},
            ),
        ),
        (
            {"p": "AB"},
            (
                "string_pattern_mismatch",
                "String should match pattern '^[a-z]+$'",
                {"pattern": "^[a-z]+$"},
            ),
        ),
        (
            {"h": -1},
            ("greater_than_equal", "Input should be greater than or equal to 0", {"ge": 0}),
        ),
    ],
)
def test_constraints(data: dict[str, Any], expected: tuple[str, str, dict[str, Any]]) -> None:
    found = detail(Limits, data)
    ((key, given),) = data.items()
    assert (found["type"], found["msg"], found["ctx"]) == expected
    assert found["input"] == next(iter(data.values()))
    assert type(found["input"]) is type(next(iter(data.values())))  # as given, not converted
    assert found["loc"] == (key,)
    assert found["input"] == given
    assert type(found["input"]) is type(given)  # as given, not converted


def test_constraints_let_good_values_through() -> None:
    good = Limits.model_validate(
        {"a": "1", "b": 2, "c": 1.5, "d": 2, "s": "abc", "items": ["2"], "p": "q", "h": None}
    )
    assert (good.a, good.c, good.items, good.h) == (1, 1.5, [2], None)


def test_an_integer_too_large_for_a_float_is_a_type_error() -> None:
    huge = 10**400
    found = detail(Scalars, {"f": huge})
    assert (found["type"], found["loc"], found["msg"]) == (
        "float_type",
        ("f",),
        "Input should be a valid number",
    )
    assert found["input"] is huge
    assert Scalars(f=10**30).f == 1e30


class Sized(BaseModel):
    d: dict[str, int] = Field(default_factory=dict, min_length=2, max_length=3)
    t: tuple[int, ...] = Field((), max_length=1)
    s: set[int] = Field(set(), min_length=2, max_length=3)
    f: frozenset[int] = Field(frozenset(), max_length=1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"d": {"a": 1}},
            (
                "too_short",
                "Dictionary should have at least 2 items after validation, not 1",
                {"field_type": "Dictionary", "min_length": 2, "actual_length": 1},
            ),
        ),
        (
            {"d": {"a": 1, "b": 2, "c": 3, "e": 4}},
            (
                "too_long",
                "Dictionary should have at most 3 items after validation, not more",
                {"field_type": "Dictionary", "max_length": 3, "actual_length": None},
            ),
        ),
        (
            {"t": [1, 2]},
            (
                "too_long",
                "Tuple should have at most 1 item after validation, not 2",
                {"field_type": "Tuple", "max_length": 1, "actual_length": 2},
            ),
        ),
        (
            {"s": [1, 1]},
            (
                "too_short",
                "Set should have at least 2 items after validation, not 1",
                {"field_type": "Set", "min_length": 2, "actual_length": 1},
            ),
        ),
        (
            {"s": [1, 2, 3, 4]},
            (
                "too_long",
                "Set should have at most 3 items after validation, not more",
                {"field_type": "Set", "max_length": 3, "actual_length": None},
            ),
        ),
        (
            {"f": [1, 2]},
            (
                "too_long",
                "Frozenset should have at most 1 item after validation, not more",
                {"field_type": "Frozenset", "max_length": 1, "actual_length": None},
            ),
        ),
    ],
)
def test_size_errors_name_the_container(
    data: dict[str, Any], expected: tuple[str, str, dict[str, Any]]
) -> None:
    found = detail(Sized, data)
    assert (found["type"], found["msg"], found["ctx"]) == expected
    assert found["input"] == next(iter(data.values()))
    assert type(found["input"]) is type(next(iter(data.values())))  # as given, not converted


class Branch(BaseModel):
    kind: Literal["branch"]
    children: list[Annotated[Branch | Leaf, Field(discriminator="kind")]] = []


class Leaf(BaseModel):
    kind: Literal["leaf"]
    v: int = 0


def test_a_discriminated_union_that_contains_its_own_model() -> None:
    tree = Branch.model_validate(
        {"kind": "branch", "children": [{"kind": "leaf", "v": "2"}, {"kind": "branch"}]}
    )
    assert [type(c) for c in tree.children] == [Leaf, Branch]
    assert problems(
        Branch, {"kind": "branch", "children": [{"kind": "branch", "children": [{"kind": "x"}]}]}
    ) == [
        (
            "union_tag_invalid",
            ("children", 0, "branch", "children", 0),
            "Input tag 'x' found using 'kind' does not match any of the expected tags: "
            "'branch', 'leaf'",
        )
    ]
    schema = Branch.model_json_schema()
    assert schema["$ref"] == "#/$defs/Branch"
    assert schema["$defs"]["Branch"]["properties"]["children"]["items"] == {
        "discriminator": {
            "mapping": {"branch": "#/$defs/Branch", "leaf": "#/$defs/Leaf"},
            "propertyName": "kind",
        },
        "oneOf": [{"$ref": "#/$defs/Branch"}, {"$ref": "#/$defs/Leaf"}],
    }


class Shade(str, enum.Enum):  # noqa: UP042 - the mixin whose str() is "Shade.DARK"
    DARK = "dark"


class Tint(enum.StrEnum):
    LIGHT = "light"


def test_a_str_field_given_a_string_enum_member_keeps_its_value() -> None:
    for member, value in ((Shade.DARK, "dark"), (Tint.LIGHT, "light")):
        kept = Scalars(s=member).s
        assert type(kept) is str
        assert kept == value
        assert f"{kept}" == value


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(enum.Enum):
    CALM = 1


class Enums(BaseModel):
    level: Level = Level.LOW
    mood: Mood = Mood.CALM
    shade: Shade = Shade.DARK


def test_enums_by_value() -> None:
    assert Enums(level="2", mood=1.0, shade="dark").model_dump() == {
        "level": Level.HIGH,
        "mood": Mood.CALM,
        "shade": Shade.DARK,
    }
    assert Enums(level=" 2 ").level is Level.HIGH
    assert Enums(level=2).model_dump(mode="json") == {"level": 2, "mood": 1, "shade": "dark"}
    assert detail(Enums, {"level": "3"}) == {
        "type": "enum",
        "loc": ("level",),
        "msg": "Input should be 1 or 2",
        "input": "3",
        "ctx": {"expected": "1 or 2"},
    }
    assert problems(Enums, {"mood": "1"}) == [("enum", ("mood",), "Input should be 1")]
    assert problems(Enums, {"shade": "light"}) == [("enum", ("shade",), "Input should be 'dark'")]


class Tagged(BaseModel):
    a: Annotated[int, Field(ge=0)] | str = 0
    s: Annotated[str, Field(min_length=2)] | int = 0
    c: dict[str, Any] | str = ""
    d: tuple[int, ...] | str = ""
    e: set[str] | int = 0
    g: Level | int = 0
    h: Cat | list[int] = Field(default_factory=list)
    k: Annotated[list[int], Field(min_length=2)] | int = 0


@pytest.mark.parametrize(
    ("data", "locs"),
    [
        ({"a": -1}, [("a", "constrained-int"), ("a", "str")]),
        ({"s": "x"}, [("s", "constrained-str"), ("s", "int")]),
        ({"c": 1}, [("c", "dict[str,any]"), ("c", "str")]),
        ({"d": [1, "x"]}, [("d", "tuple[int, ...]", 1), ("d", "str")]),
        ({"e": None}, [("e", "set[str]"), ("e", "int")]),
        ({"g": "z"}, [("g", "int-enum[Level]"), ("g", "int")]),
        ({"h": 5}, [("h", "Cat"), ("h", "list[int]")]),
        ({"k": [1]}, [("k", "list[int]"), ("k", "int")]),
    ],
)
def test_union_member_tags(data: dict[str, Any], locs: list[tuple[Any, ...]]) -> None:
    with pytest.raises(ValidationError) as caught:
        Tagged.model_validate(data)
    assert [d["loc"] for d in caught.value.errors()] == locs


class Odd(BaseModel):
    nothing: None = None
    three: Literal["a", "b", "c"] = "a"
    lit: int | Literal["1"] = 0
    tagged: Literal["x", 1] | float = 0.0
    s: set[int] = set()
    t: tuple[int, ...] = ()
    f: frozenset[int] = frozenset()
    d: dict = {}  # type: ignore[type-arg]


def test_less_common_types() -> None:
    assert problems(Odd, {"nothing": 1}) == [
        ("none_required", ("nothing",), "Input should be None")
    ]
    assert problems(Odd, {"three": "d"}) == [
        ("literal_error", ("three",), "Input should be 'a', 'b' or 'c'")
    ]
    assert Odd(lit="1").lit == "1"  # the exact literal wins over converting to int
    assert Odd(lit="2").lit == 2
    assert problems(Odd, {"tagged": "y"}) == [
        ("literal_error", ("tagged", "literal['x',1]"), "Input should be 'x' or 1"),
        (
            "float_parsing",
            ("tagged", "float"),
            "Input should be a valid number, unable to parse string as a number",
        ),
    ]
    assert Odd(d={"a": [1]}).d == {"a": [1]}
    assert problems(Odd, {"s": 5, "t": 5, "f": 5, "d": 5}) == [
        ("set_type", ("s",), "Input should be a valid set"),
        ("tuple_type", ("t",), "Input should be a valid tuple"),
        ("frozen_set_type", ("f",), "Input should be a valid frozenset"),
        ("dict_type", ("d",), "Input should be a valid dictionary"),
    ]


def test_a_fixed_length_tuple_is_refused_at_first_use() -> None:
    class Pair(BaseModel):
        pair: tuple[int, str] = (0, "")

    with pytest.raises(TypeError, match=r"only tuple\[X, \.\.\.\] is supported"):
        Pair()


class Typed(BaseModel):
    kind: Literal["t"] = Field(alias="type")


class Other(BaseModel):
    kind: Literal["o"] = Field(alias="type")


class ByType(BaseModel):
    x: Typed | Other = Field(discriminator="kind")


def test_a_discriminator_with_an_alias_is_read_and_named_by_both() -> None:
    assert type(ByType(x={"type": "o"}).x) is Other
    assert detail(ByType, {"x": {"type": "z"}})["ctx"] == {
        "discriminator": "'kind' | 'type'",
        "tag": "z",
        "expected_tags": "'t', 'o'",
    }
    assert problems(ByType, {"x": {}}) == [
        ("union_tag_not_found", ("x",), "Unable to extract tag using discriminator 'kind' | 'type'")
    ]
    assert ByType.model_json_schema()["properties"]["x"]["discriminator"] == {
        "mapping": {"o": "#/$defs/Other", "t": "#/$defs/Typed"},
        "propertyName": "type",
    }
