"""JSON Schema of models, as the config forms and tool descriptions use it.

The expected schemas are pydantic 2.14's output for the same models, written out.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from moltbot.validation import AliasChoices, BaseModel, ConfigDict, Field, to_camel


class Cat(BaseModel):
    """A cat."""

    kind: Literal["cat"]
    lives: int = Field(9, ge=0, le=9)


class Dog(BaseModel):
    kind: Literal["dog", "puppy"]
    good: bool = True


class Pets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pet: Cat | Dog = Field(discriminator="kind")
    maybe: Annotated[Cat | Dog, Field(discriminator="kind")] | None = None
    plain: Cat | Dog | None = None
    many: list[Cat] = []


class Settings(BaseModel):
    """Settings of one thing.

    A second paragraph."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)
    max_items: int = Field(10, ge=1, le=100, description="How many.", examples=[5])
    names: list[str] = Field(default_factory=list, title="The Names", min_length=1)
    tags: set[str] = set()
    pattern_field: str | None = Field(None, pattern="^a", max_length=9)
    mode: Literal["on", "off", 1] = "on"
    ratio: float | int = 0.5
    env: dict[str, str] = {}
    anything: Any = None
    pair: tuple[int, ...] = (1, 2)
    nested: dict[str, list[int]] | None = None
    token: str = Field(validation_alias=AliasChoices("token", "apiKey"))


class Node(BaseModel):
    name: str
    children: list[Node] = []
    parent: Node | None = None


PETS = {
    "$defs": {
        "Cat": {
            "description": "A cat.",
            "properties": {
                "kind": {"const": "cat", "title": "Kind", "type": "string"},
                "lives": {
                    "default": 9,
                    "maximum": 9,
                    "minimum": 0,
                    "title": "Lives",
                    "type": "integer",
                },
            },
            "required": ["kind"],
            "title": "Cat",
            "type": "object",
        },
        "Dog": {
            "properties": {
                "kind": {"enum": ["dog", "puppy"], "title": "Kind", "type": "string"},
                "good": {"default": True, "title": "Good", "type": "boolean"},
            },
            "required": ["kind"],
            "title": "Dog",
            "type": "object",
        },
    },
    "additionalProperties": False,
    "properties": {
        "pet": {
            "discriminator": {
                "mapping": {"cat": "#/$defs/Cat", "dog": "#/$defs/Dog", "puppy": "#/$defs/Dog"},
                "propertyName": "kind",
            },
            "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
            "title": "Pet",
        },
        "maybe": {
            "anyOf": [
                {
                    "discriminator": {
                        "mapping": {
                            "cat": "#/$defs/Cat",
                            "dog": "#/$defs/Dog",
                            "puppy": "#/$defs/Dog",
                        },
                        "propertyName": "kind",
                    },
                    "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
                },
                {"type": "null"},
            ],
            "default": None,
            "title": "Maybe",
        },
        "plain": {
            "anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}, {"type": "null"}],
            "default": None,
            "title": "Plain",
        },
        "many": {"default": [], "items": {"$ref": "#/$defs/Cat"}, "title": "Many", "type": "array"},
    },
    "required": ["pet"],
    "title": "Pets",
    "type": "object",
}

SETTINGS = {
    "additionalProperties": True,
    "description": "Settings of one thing.\n\nA second paragraph.",
    "properties": {
        "maxItems": {
            "default": 10,
            "description": "How many.",
            "examples": [5],
            "maximum": 100,
            "minimum": 1,
            "title": "Maxitems",
            "type": "integer",
        },
        "names": {
            "items": {"type": "string"},
            "minItems": 1,
            "title": "The Names",
            "type": "array",
        },
        "tags": {
            "default": [],
            "items": {"type": "string"},
            "title": "Tags",
            "type": "array",
            "uniqueItems": True,
        },
        "patternField": {
            "anyOf": [{"maxLength": 9, "pattern": "^a", "type": "string"}, {"type": "null"}],
            "default": None,
            "title": "Patternfield",
        },
        "mode": {"default": "on", "enum": ["on", "off", 1], "title": "Mode"},
        "ratio": {
            "anyOf": [{"type": "number"}, {"type": "integer"}],
            "default": 0.5,
            "title": "Ratio",
        },
        "env": {
            "additionalProperties": {"type": "string"},
            "default": {},
            "title": "Env",
            "type": "object",
        },
        "anything": {"default": None, "title": "Anything"},
        "pair": {"default": [1, 2], "items": {"type": "integer"}, "title": "Pair", "type": "array"},
        "nested": {
            "anyOf": [
                {
                    "additionalProperties": {"items": {"type": "integer"}, "type": "array"},
                    "type": "object",
                },
                {"type": "null"},
            ],
            "default": None,
            "title": "Nested",
        },
        "token": {"title": "Token", "type": "string"},
    },
    "required": ["token"],
    "title": "Settings",
    "type": "object",
}

NODE = {
    "$defs": {
        "Node": {
            "properties": {
                "name": {"title": "Name", "type": "string"},
                "children": {
                    "default": [],
                    "items": {"$ref": "#/$defs/Node"},
                    "title": "Children",
                    "type": "array",
                },
                "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}], "default": None},
            },
            "required": ["name"],
            "title": "Node",
            "type": "object",
        }
    },
    "$ref": "#/$defs/Node",
}


def test_discriminated_and_plain_unions_of_models() -> None:
    assert Pets.model_json_schema() == PETS


def test_constraints_aliases_docstring_and_containers() -> None:
    assert Settings.model_json_schema() == SETTINGS


def test_a_model_that_contains_itself_is_a_reference() -> None:
    assert Node.model_json_schema() == NODE


def test_by_alias_false_uses_field_names() -> None:
    class Alias(BaseModel):
        model_config = ConfigDict(alias_generator=to_camel)
        some_field: int = 0

    assert Alias.model_json_schema(by_alias=False) == {
        "properties": {"some_field": {"default": 0, "title": "Some Field", "type": "integer"}},
        "title": "Alias",
        "type": "object",
    }
    assert list(Alias.model_json_schema()["properties"]) == ["someField"]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    """How loud."""

    LOW = 1
    HIGH = 2


class Painted(BaseModel):
    color: Color = Color.RED
    level: Level | None = None
    levels: list[Level] = []
    req: Color


def test_enums_are_definitions() -> None:
    assert Painted.model_json_schema() == {
        "$defs": {
            "Color": {"enum": ["red", "blue"], "title": "Color", "type": "string"},
            "Level": {
                "description": "How loud.",
                "enum": [1, 2],
                "title": "Level",
                "type": "integer",
            },
        },
        "properties": {
            "color": {"$ref": "#/$defs/Color", "default": "red"},
            "level": {"anyOf": [{"$ref": "#/$defs/Level"}, {"type": "null"}], "default": None},
            "levels": {
                "default": [],
                "items": {"$ref": "#/$defs/Level"},
                "title": "Levels",
                "type": "array",
            },
            "req": {"$ref": "#/$defs/Color"},
        },
        "required": ["req"],
        "title": "Painted",
        "type": "object",
    }
    assert Painted(req="blue", level=2).model_dump(mode="json") == {
        "color": "red",
        "level": 2,
        "levels": [],
        "req": "blue",
    }


def test_properties_are_named_by_the_validation_alias() -> None:
    class Renamed(BaseModel):
        token: str = Field(validation_alias=AliasChoices("apiKey", "token"))
        other: str = Field("", validation_alias="oth")
        third: str = Field("", alias="th", validation_alias="thv")

    assert Renamed.model_json_schema() == {
        "properties": {
            "apiKey": {"title": "Apikey", "type": "string"},
            "oth": {"default": "", "title": "Oth", "type": "string"},
            "thv": {"default": "", "title": "Thv", "type": "string"},
        },
        "required": ["apiKey"],
        "title": "Renamed",
        "type": "object",
    }
    assert list(Renamed.model_json_schema(by_alias=False)["properties"]) == [
        "token",
        "other",
        "third",
    ]


def make_item(kind: type) -> type[BaseModel]:
    class Item(BaseModel):
        value: kind  # type: ignore[valid-type]

    return Item


IntItem, StrItem = make_item(int), make_item(str)


class TwoItems(BaseModel):
    first: IntItem  # type: ignore[valid-type]
    second: StrItem  # type: ignore[valid-type]
    third: list[IntItem] = []  # type: ignore[valid-type]


def test_two_models_of_one_name_get_distinct_definitions() -> None:
    path = "test_jsonschema__make_item___locals___Item"
    item = {"required": ["value"], "title": "Item", "type": "object"}
    assert TwoItems.model_json_schema() == {
        "$defs": {
            f"{path}__1": {
                "properties": {"value": {"title": "Value", "type": "integer"}},
                **item,
            },
            f"{path}__2": {
                "properties": {"value": {"title": "Value", "type": "string"}},
                **item,
            },
        },
        "properties": {
            "first": {"$ref": f"#/$defs/{path}__1"},
            "second": {"$ref": f"#/$defs/{path}__2"},
            "third": {
                "default": [],
                "items": {"$ref": f"#/$defs/{path}__1"},
                "title": "Third",
                "type": "array",
            },
        },
        "required": ["first", "second"],
        "title": "TwoItems",
        "type": "object",
    }


def item_a() -> type[BaseModel]:
    class Item(BaseModel):
        a: int = 0

    return Item


def item_b() -> type[BaseModel]:
    class Item(BaseModel):
        b: int = 0

    return Item


class Mixed(BaseModel):
    a: item_a()  # type: ignore[valid-type]
    b: item_b()  # type: ignore[valid-type]
    cat: Cat


def test_a_shared_class_name_is_qualified_by_module_and_function() -> None:
    schema = Mixed.model_json_schema()
    assert sorted(schema["$defs"]) == [
        "Cat",
        "test_jsonschema__item_a___locals___Item",
        "test_jsonschema__item_b___locals___Item",
    ]
    assert schema["properties"]["b"] == {"$ref": "#/$defs/test_jsonschema__item_b___locals___Item"}
