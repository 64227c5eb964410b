"""Validated records: the models of the config file, protocol frames, stores and tools.

A small, dependency-free subset of the pydantic API this project used before:
``BaseModel``, ``Field``, ``ConfigDict``, ``field_validator``, ``model_validator``,
``ValidationError``, ``AliasChoices``, ``to_camel``. It keeps what the gateway relies
on (unknown keys kept or refused per model, camelCase aliases, lenient coercion of
config values, every error reported with its path, JSON Schema for the config forms
and tool descriptions) at a fraction of pydantic's import cost, which was a fifth of
an idle gateway's memory. Models are compiled at their first use.
"""

from moltbot.validation.errors import ValidationError
from moltbot.validation.fields import (
    AliasChoices,
    ConfigDict,
    Field,
    FieldInfo,
    field_validator,
    model_validator,
    to_camel,
)
from moltbot.validation.model import BaseModel

__all__ = [
    "AliasChoices",
    "BaseModel",
    "ConfigDict",
    "Field",
    "FieldInfo",
    "ValidationError",
    "field_validator",
    "model_validator",
    "to_camel",
]
