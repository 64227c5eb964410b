"""Models whose annotations are evaluated when the class is defined (no
``from __future__ import annotations``): real types, ClassVar, quoted names in them."""

from typing import ClassVar, Optional

from moltbot.validation import BaseModel


class Folder(BaseModel):
    kind: ClassVar[str] = "folder"
    name: str = ""
    children: list["Folder"] = []  # noqa: UP037 - a quoted name is what this tests
    parent: Optional["Folder"] = None  # noqa: UP037, UP045


def test_class_variables_are_not_fields() -> None:
    assert list(Folder.model_fields) == ["name", "children", "parent"]
    assert Folder.kind == "folder"


def test_quoted_names_in_evaluated_annotations_are_resolved() -> None:
    folder = Folder.model_validate({"name": "a", "children": [{"name": "b"}], "parent": {}})
    assert type(folder.children[0]) is Folder
    assert type(folder.parent) is Folder
    assert Folder.model_fields["children"].annotation == list[Folder]
    assert Folder.model_fields["parent"].annotation == Optional[Folder]  # noqa: UP045
