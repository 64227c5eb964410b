"""Models: fields and aliases, unknown keys, validators, frozen models, dumping, copying,
forward references, error reports and defaults.

Expected values are the ones pydantic 2.14 gives for the same models, written out.
"""

from __future__ import annotations

import copy
import pickle
import re
from typing import Annotated, Any, ClassVar, Optional

import pytest

from moltbot.validation import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    FieldInfo,
    ValidationError,
    field_validator,
    model_validator,
    to_camel,
)


def problems(model: type[BaseModel], data: Any) -> list[tuple[str, tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(d["type"], d["loc"], d["msg"]) for d in caught.value.errors()]


class Person(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str = Field(alias="theName")
    age: int


def test_missing_fields_are_reported_by_their_input_name() -> None:
    with pytest.raises(ValidationError) as caught:
        Person.model_validate({})
    assert caught.value.errors() == [
        {"type": "missing", "loc": ("theName",), "msg": "Field required", "input": {}},
        {"type": "missing", "loc": ("age",), "msg": "Field required", "input": {}},
    ]


def test_populate_by_name_accepts_alias_or_name() -> None:
    assert Person.model_validate({"theName": "a", "age": 1}).name == "a"
    assert Person.model_validate({"name": "b", "age": 1}).name == "b"
    assert Person(theName="c", age="2").model_dump() == {"name": "c", "age": 2}
    assert Person(name="d", age=2).model_dump(by_alias=True) == {"theName": "d", "age": 2}
    assert problems(Person, {"theName": 1, "age": "x"}) == [
        ("string_type", ("theName",), "Input should be a valid string"),
        (
            "int_parsing",
            ("age",),
            "Input should be a valid integer, unable to parse string as an integer",
        ),
    ]


def test_without_populate_by_name_only_the_alias_is_read() -> None:
    class Aliased(BaseModel):
        name: str = Field("unset", alias="theName")

    assert Aliased.model_validate({"name": "x"}).name == "unset"
    assert Aliased.model_validate({"theName": "x"}).name == "x"


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: int = 0


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int = 0


class Quiet(BaseModel):
    x: int = 0


def test_extra_allow_keeps_unknown_keys() -> None:
    m = Open.model_validate({"x": "1", "y": [2]})
    assert m.model_extra == {"y": [2]}
    assert m.y == [2]
    assert m.model_dump() == {"x": 1, "y": [2]}
    assert m.model_fields_set == {"x", "y"}
    m.z = 3
    assert m.model_extra == {"y": [2], "z": 3}
    assert m.model_dump() == {"x": 1, "y": [2], "z": 3}
    assert m.model_fields_set == {"x", "y", "z"}
    copied = m.model_copy(update={"w": 4})
    assert copied.model_extra == {"y": [2], "z": 3, "w": 4}
    assert copied.model_fields_set == {"x", "y", "z", "w"}
    assert m.model_extra == {"y": [2], "z": 3}


def test_extra_forbid_refuses_each_unknown_key() -> None:
    with pytest.raises(ValidationError) as caught:
        Closed.model_validate({"x": 1, "y": 2, "z": 3})
    assert caught.value.errors() == [
        {
            "type": "extra_forbidden",
            "loc": ("y",),
            "msg": "Extra inputs are not permitted",
            "input": 2,
        },
        {
            "type": "extra_forbidden",
            "loc": ("z",),
            "msg": "Extra inputs are not permitted",
            "input": 3,
        },
    ]
    with pytest.raises(ValidationError):
        Closed(x=1, y=2)


def test_extra_ignore_drops_unknown_keys() -> None:
    m = Quiet.model_validate({"zz": 1})
    assert m.model_dump() == {"x": 0}
    assert m.model_extra is None
    assert m.model_fields_set == set()
    with pytest.raises(ValueError, match='"Quiet" object has no field "zz"'):
        m.zz = 1


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    some_field: int = 0
    other_one: str | None = None
    explicit: int = Field(0, alias="EXPLICIT")


def test_alias_generator_to_camel() -> None:
    assert to_camel("some_field_name") == "someFieldName"
    assert to_camel("already") == "already"
    assert to_camel("alreadyCamel") == "alreadyCamel"
    assert Camel.model_validate({"someField": 1}).some_field == 1
    assert Camel.model_validate({"some_field": 2}).some_field == 2
    m = Camel.model_validate({"otherOne": "x", "some_field": 3, "EXPLICIT": 4})
    assert m.model_dump(by_alias=True) == {"someField": 3, "otherOne": "x", "EXPLICIT": 4}
    assert problems(Camel, {"someField": "x"})[0][1] == ("someField",)
    assert Camel.model_fields["other_one"].alias == "otherOne"
    assert Camel.model_fields["explicit"].alias == "EXPLICIT"


class Token(BaseModel):
    token: str = Field(validation_alias=AliasChoices("token", "apiKey"))


def test_alias_choices_first_present_wins() -> None:
    assert Token.model_validate({"apiKey": "k"}).token == "k"
    assert Token.model_validate({"token": "t", "apiKey": "k"}).token == "t"
    assert problems(Token, {}) == [("missing", ("token",), "Field required")]


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class Checked(BaseModel):
    a: str = ""
    b: str = ""
    n: int = 0
    _strip = field_validator("a", "b", mode="before")(strip)

    @field_validator("n")
    @classmethod
    def doubled(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be positive")
        return value * 2

    @field_validator("b")
    @classmethod
    def not_x(cls, value: str) -> str:
        if value == "x":
            raise AssertionError("no x")
        return value


def test_field_validators_before_and_after() -> None:
    m = Checked.model_validate({"a": " x ", "b": " y", "n": "3"})
    assert (m.a, m.b, m.n) == ("x", "y", 6)
    with pytest.raises(ValidationError) as caught:
        Checked.model_validate({"n": -1, "b": "x"})
    assert caught.value.errors() == [
        {
            "type": "assertion_error",
            "loc": ("b",),
            "msg": "Assertion failed, no x",
            "input": "x",
            "ctx": {"error": "no x"},
        },
        {
            "type": "value_error",
            "loc": ("n",),
            "msg": "Value error, must be positive",
            "input": -1,
            "ctx": {"error": "must be positive"},
        },
    ]
    # the before validator runs before the type check
    assert problems(Checked, {"a": 5}) == [
        ("string_type", ("a",), "Input should be a valid string")
    ]


def test_a_plain_function_validator_is_shared_by_several_models() -> None:
    class Other(BaseModel):
        name: str = ""
        _strip = field_validator("name", mode="before")(strip)

    assert Other(name="  n ").name == "n"
    assert Checked(a=" a ").a == "a"


def test_a_validator_for_an_unknown_field_is_an_error_at_first_use() -> None:
    class Wrong(BaseModel):
        a: int = 0

        @field_validator("b")
        @classmethod
        def check(cls, value: Any) -> Any:
            return value

    with pytest.raises(TypeError, match="validates unknown field 'b'"):
        Wrong()


class Span(BaseModel):
    lo: int = 0
    hi: int = 0

    @model_validator(mode="before")
    @classmethod
    def from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            lo, hi = data.split("-")
            return {"lo": lo, "hi": hi}
        return data

    @model_validator(mode="after")
    def ordered(self) -> Span:
        if self.lo > self.hi:
            raise ValueError("lo above hi")
        return self


def test_model_validators_before_and_after() -> None:
    assert Span.model_validate("1-2").model_dump() == {"lo": 1, "hi": 2}
    assert problems(Span, {"lo": 1}) == [("value_error", (), "Value error, lo above hi")]
    with pytest.raises(ValidationError) as caught:
        Span.model_validate("3-2")
    assert caught.value.errors() == [
        {
            "type": "value_error",
            "loc": (),
            "msg": "Value error, lo above hi",
            "input": "3-2",
            "ctx": {"error": "lo above hi"},
        }
    ]
    assert problems(Span, 5) == [
        ("model_type", (), "Input should be a valid dictionary or instance of Span")
    ]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)
    a: int = 0
    tags: list[str] = []


def test_frozen_refuses_assignment_is_hashable_and_equal() -> None:
    f = Frozen(a=1, tags=["x"])
    with pytest.raises(ValidationError) as caught:
        f.a = 2
    assert caught.value.errors() == [
        {"type": "frozen_instance", "loc": ("a",), "msg": "Instance is frozen", "input": 2}
    ]
    assert f.a == 1
    assert f == Frozen(a=1, tags=["x"])
    assert f != Frozen(a=2, tags=["x"])


class Point(BaseModel):
    model_config = ConfigDict(frozen=True)
    x: int = 0
    y: int = 0


def test_frozen_models_are_hashable() -> None:
    assert hash(Point(x=1)) == hash(Point(x="1"))
    assert len({Point(x=1), Point(x=1), Point(y=1)}) == 2
    assert Point(x=1) in {Point(x=1): "here"}


def test_models_that_are_not_frozen_are_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(Quiet())


class Inner(BaseModel):
    x: int = 0
    y: str | None = None


class Outer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    inner_thing: Inner = Field(default_factory=Inner)
    items: list[Inner] = []
    maybe_none: int | None = None


def outer() -> Outer:
    return Outer.model_validate({"innerThing": {"x": 1}, "items": [{"x": 2, "y": None}]})


def test_model_dump_options() -> None:
    o = outer()
    assert o.model_dump() == {
        "inner_thing": {"x": 1, "y": None},
        "items": [{"x": 2, "y": None}],
        "maybe_none": None,
    }
    assert o.model_dump(by_alias=True) == {
        "innerThing": {"x": 1, "y": None},
        "items": [{"x": 2, "y": None}],
        "maybeNone": None,
    }
    assert o.model_dump(exclude_none=True) == {"inner_thing": {"x": 1}, "items": [{"x": 2}]}
    assert o.model_dump(exclude_unset=True) == {
        "inner_thing": {"x": 1},
        "items": [{"x": 2, "y": None}],
    }
    assert o.model_dump(exclude_defaults=True) == {"inner_thing": {"x": 1}, "items": [{"x": 2}]}
    assert o.model_dump(include={"items"}) == {"items": [{"x": 2, "y": None}]}
    assert o.model_dump(exclude={"items", "maybe_none"}) == {"inner_thing": {"x": 1, "y": None}}
    assert o.model_fields_set == {"inner_thing", "items"}
    assert o.inner_thing.model_fields_set == {"x"}


def test_model_dump_json_mode_turns_tuples_into_lists() -> None:
    class Pair(BaseModel):
        pair: tuple[int, ...] = ()
        names: set[str] = set()

    m = Pair(pair=[1, 2], names=["a"])
    assert m.pair == (1, 2)
    assert m.model_dump() == {"pair": (1, 2), "names": {"a"}}
    assert m.model_dump(mode="json") == {"pair": [1, 2], "names": ["a"]}


def test_model_copy_shallow_update_and_deep() -> None:
    o = outer()
    updated = o.model_copy(update={"maybe_none": 5})
    assert updated.maybe_none == 5
    assert o.maybe_none is None
    assert updated.model_fields_set == {"inner_thing", "items", "maybe_none"}
    assert updated.items is o.items
    deep = o.model_copy(deep=True)
    assert deep == o
    assert deep.items is not o.items
    assert deep.items[0] is not o.items[0]
    assert copy.deepcopy(o) == o


def test_model_fields_describe_each_field() -> None:
    fields = Person.model_fields
    assert list(fields) == ["name", "age"]
    assert isinstance(fields["name"], FieldInfo)
    assert fields["name"].alias == "theName"
    assert fields["name"].annotation is str
    assert fields["name"].is_required()
    assert fields["age"].alias is None
    assert Outer.model_fields["maybe_none"].annotation == int | None
    assert not Outer.model_fields["maybe_none"].is_required()
    assert not Outer.model_fields["inner_thing"].is_required()
    assert Person(theName="a", age=1).model_fields is fields


class Tree(BaseModel):
    name: str
    kids: list[Tree] = []
    data: dict[str, Any] = {}


def test_a_model_may_contain_itself() -> None:
    t = Tree.model_validate({"name": "a", "kids": [{"name": "b", "kids": [{"name": "c"}]}]})
    assert t.kids[0].kids[0].name == "c"
    assert problems(Tree, {"name": "a", "kids": [{"name": "b", "kids": [{}]}]}) == [
        ("missing", ("kids", 0, "kids", 0, "name"), "Field required")
    ]


class Early(BaseModel):
    later: Later | None = None


class Later(BaseModel):
    v: int = 0


def test_forward_references_to_classes_further_down() -> None:
    assert Early.model_validate({"later": {"v": "3"}}).later == Later(v=3)


def test_classes_defined_inside_a_function() -> None:
    class Leaf(BaseModel):
        v: int = 0

    class Branch(BaseModel):
        leaf: Leaf | None = None
        leaves: list[Leaf] = []

    b = Branch.model_validate({"leaf": {"v": "1"}, "leaves": [{"v": 2}]})
    assert b.model_dump() == {"leaf": {"v": 1}, "leaves": [{"v": 2}]}


def test_validation_error_text_and_details() -> None:
    with pytest.raises(ValidationError) as caught:
        Person.model_validate({"theName": 1, "age": "x", "zz": 1})
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.error_count() == 2
    assert str(error) == (
        "2 validation errors for Person\n"
        "theName\n"
        "  Input should be a valid string [type=string_type, input_value=1, input_type=int]\n"
        "age\n"
        "  Input should be a valid integer, unable to parse string as an integer "
        "[type=int_parsing, input_value='x', input_type=str]"
    )
    with pytest.raises(ValidationError) as caught:
        Tree.model_validate({"name": "a", "kids": [{"name": 1}]})
    assert str(caught.value) == (
        "1 validation error for Tree\n"
        "kids.0.name\n"
        "  Input should be a valid string [type=string_type, input_value=1, input_type=int]"
    )


def test_errors_returns_copies() -> None:
    with pytest.raises(ValidationError) as caught:
        Person.model_validate({})
    caught.value.errors()[0]["msg"] = "changed"
    assert caught.value.errors()[0]["msg"] == "Field required"


def test_defaults_are_fresh_for_each_instance() -> None:
    one, two = Tree(name="a"), Tree(name="b")
    one.kids.append(Tree(name="c"))
    one.data["k"] = 1
    assert two.kids == []
    assert two.data == {}
    assert Tree(name="d").kids == []
    f1, f2 = Frozen(), Frozen()
    f1.tags.append("q")
    assert f2.tags == []


def test_subclass_overrides_a_field_and_inherits_validators() -> None:
    class Base(BaseModel):
        x: int = 0

        @field_validator("x")
        @classmethod
        def doubled(cls, value: Any) -> Any:
            return value * 2

    class Child(Base):
        x: str = "a"
        y: int = 0

    assert Child(x="q").x == "qq"
    assert Child.model_fields["x"].annotation is str
    assert list(Child.model_fields) == ["x", "y"]
    assert Base(x="2").x == 4
    assert problems(Child, {"x": 1}) == [("string_type", ("x",), "Input should be a valid string")]


def test_a_model_and_its_subclass_are_never_equal() -> None:
    class Base(BaseModel):
        x: int = 0

    class Child(Base):
        pass

    assert Base(x=1) != Child(x=1)
    assert Child(x=1) != Base(x=1)
    assert Child(x=1) == Child(x=1)


def test_an_instance_is_accepted_as_is_for_its_class_and_subclasses() -> None:
    class Base(BaseModel):
        x: int = 0

    class Child(Base):
        y: int = 0

    class Holder(BaseModel):
        b: Base

    child = Child(x=1, y=3)
    assert Holder(b=child).b is child
    assert Base.model_validate(child) is child


def test_repr_and_iteration() -> None:
    m = Open(x=1, extra="e")
    assert repr(m) == "Open(x=1, extra='e')"
    assert list(m) == [("x", 1), ("extra", "e")]
    assert str(Inner(x=1)) == "x=1 y=None"


class Quoted(BaseModel):
    kids: list["Quoted"] = []  # noqa: UP037 - a quoted name inside a generic, as written
    by_name: dict[str, "Later"] = {}  # noqa: UP037
    maybe: Optional["Later"] = None  # noqa: UP037, UP045


def test_quoted_names_inside_generics_are_resolved() -> None:
    q = Quoted.model_validate(
        {"kids": [{"kids": []}], "by_name": {"a": {"v": "1"}}, "maybe": {"v": 2}}
    )
    assert type(q.kids[0]) is Quoted
    assert q.by_name == {"a": Later(v=1)}
    assert q.maybe == Later(v=2)
    assert Quoted.model_fields["kids"].annotation == list[Quoted]


def test_attributes_that_are_not_fields_stay_out_of_dumps_and_equality() -> None:
    m = Inner(x=1)
    m._cache = "private"
    assert m._cache == "private"
    assert m.model_dump() == {"x": 1, "y": None}
    assert m == Inner(x=1)
    assert repr(m) == "Inner(x=1, y=None)"
    assert dict(m) == {"x": 1, "y": None}
    updated = Inner(x=1).model_copy(update={"unknown": 5})
    assert updated.unknown == 5
    assert updated.model_dump() == {"x": 1, "y": None}
    assert updated == Inner(x=1)


def test_equal_frozen_models_have_equal_hashes() -> None:
    class Keyed(BaseModel):
        model_config = ConfigDict(frozen=True)
        d: dict[str, int] = {}

    one, two = Keyed(d={"a": 1, "b": 2}), Keyed(d={"b": 2, "a": 1})
    assert one == two
    assert hash(one) == hash(two)
    copied = Point(x=1).model_copy(update={"unknown": 5})
    assert copied == Point(x=1)
    assert hash(copied) == hash(Point(x=1))


def test_long_inputs_are_shortened_in_the_error_text() -> None:
    class Count(BaseModel):
        n: int = 0

    for given, shown in (
        ("x" * 200, "'" + "x" * 24 + "..." + "x" * 23 + "'"),
        (list(range(100)), "[0, 1, 2, 3, 4, 5, 6, 7, ... 94, 95, 96, 97, 98, 99]"),
        ("y" * 48, "'" + "y" * 48 + "'"),
    ):
        with pytest.raises(ValidationError) as caught:
            Count(n=given)
        assert f"input_value={shown}, " in str(caught.value)


def test_field_declared_inside_annotated() -> None:
    class Marked(BaseModel):
        x: Annotated[int, Field(description="the x", alias="X")] = 0
        y: Annotated[int, Field(ge=1, description="why")] = 3
        z: Annotated[str, Field(default="d", title="Zed")]

    assert Marked.model_validate({"X": 5}).model_dump() == {"x": 5, "y": 3, "z": "d"}
    assert Marked(X=5, z="d").model_dump(by_alias=True, exclude_defaults=True) == {"X": 5}
    assert problems(Marked, {"y": 0})[0][:2] == ("greater_than_equal", ("y",))
    assert Marked.model_fields["x"].alias == "X"
    assert not Marked.model_fields["z"].is_required()
    assert Marked.model_json_schema() == {
        "properties": {
            "X": {"default": 0, "description": "the x", "title": "X", "type": "integer"},
            "y": {
                "default": 3,
                "description": "why",
                "minimum": 1,
                "title": "Y",
                "type": "integer",
            },
            "z": {"default": "d", "title": "Zed", "type": "string"},
        },
        "title": "Marked",
        "type": "object",
    }


def test_a_subclass_config_changes_only_the_keys_it_names() -> None:
    class Parent(BaseModel):
        model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)
        some_field: int = 0

    class Child(Parent):
        model_config = ConfigDict(frozen=True)
        other_field: int = 0

    child = Child.model_validate({"someField": 1, "other_field": 2, "x": 3})
    assert child.model_dump(by_alias=True) == {"someField": 1, "otherField": 2, "x": 3}
    assert Child.model_config["extra"] == "allow"
    assert Child.model_config["frozen"] is True
    assert not Parent.model_config.get("frozen", False)
    assert ConfigDict(extra="forbid") == {"extra": "forbid"}


def test_a_validation_error_can_be_pickled_and_copied() -> None:
    with pytest.raises(ValidationError) as caught:
        Person.model_validate({"theName": 1})
    for clone in (pickle.loads(pickle.dumps(caught.value)), copy.copy(caught.value)):
        assert type(clone) is ValidationError
        assert clone.errors() == caught.value.errors()
        assert str(clone) == str(caught.value)
        assert clone.title == "Person"


def test_overriding_a_field_without_an_annotation_is_refused() -> None:
    class Parent(BaseModel):
        x: int = 1

    with pytest.raises(TypeError, match="Child.x overrides a field without a type annotation"):

        class Child(Parent):
            x = 5


def test_an_annotation_naming_nothing_is_an_error_at_first_use() -> None:
    class Dangling(BaseModel):
        x: Nowhere | None = None  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(
        TypeError,
        match=re.escape("Dangling: cannot resolve annotation 'Nowhere | None': name 'Nowhere'"),
    ):
        Dangling()


class Row(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int | None = None
    b: int = 0
    c: int | None = 3


def test_each_dump_option_skips_only_what_it_names() -> None:
    row = Row.model_validate({"b": 2, "x": None, "y": 1, "z": 2})
    assert row.model_dump(exclude_none=True) == {"b": 2, "c": 3, "y": 1, "z": 2}
    assert row.model_dump(exclude_unset=True) == {"b": 2, "x": None, "y": 1, "z": 2}
    assert row.model_dump(exclude_defaults=True) == {"b": 2, "x": None, "y": 1, "z": 2}
    assert row.model_dump(exclude={"a", "x"}) == {"b": 2, "c": 3, "y": 1, "z": 2}
    assert row.model_dump(include={"c", "y", "z"}) == {"c": 3, "y": 1, "z": 2}
    assert row.model_dump(include={"a", "b"}, exclude={"a"}) == {"b": 2}
    private = Row(b=1)
    private._first = "hidden"
    assert private.model_dump() == {"a": None, "b": 1, "c": 3}


def test_deleting_an_extra_key() -> None:
    row = Row(b=1, note="n", other="o")
    del row.note
    assert row.model_extra == {"other": "o"}
    assert row.model_dump() == {"a": None, "b": 1, "c": 3, "other": "o"}
    with pytest.raises(AttributeError):
        row.note  # noqa: B018


def test_private_and_class_attributes_are_not_fields() -> None:
    class Mixed(BaseModel):
        _cache: int = 0
        limit: ClassVar[int] = 5
        a: int = 1
        b: Annotated[int, "note", Field(alias="B", default=2)]
        c: Annotated[int, Field(alias="C")] = Field(3, alias="own")

    assert list(Mixed.model_fields) == ["a", "b", "c"]
    assert Mixed.limit == 5
    m = Mixed.model_validate({"B": 7, "own": 8})
    assert m.model_dump() == {"a": 1, "b": 7, "c": 8}  # the field's own Field wins
    assert Mixed.model_fields["b"].default == 2


def test_an_after_model_validator_may_return_a_new_instance_or_assert() -> None:
    class Normalized(BaseModel):
        name: str = ""

        @model_validator(mode="after")
        def lowered(self) -> Normalized:
            if self.name.lower() != self.name:
                return Normalized.model_construct_lower(self.name)
            return self

        @classmethod
        def model_construct_lower(cls, name: str) -> Normalized:
            return cls(name=name.lower())

    assert Normalized(name="AbC").name == "abc"

    class Checked(BaseModel):
        n: int = 0

        @model_validator(mode="after")
        def small(self) -> Checked:
            if self.n > 9:
                raise AssertionError("too big")
            return self

    with pytest.raises(ValidationError) as caught:
        Checked(n=10)
    assert caught.value.errors() == [
        {
            "type": "assertion_error",
            "loc": (),
            "msg": "Assertion failed, too big",
            "input": {"n": 10},
            "ctx": {"error": "too big"},
        }
    ]
