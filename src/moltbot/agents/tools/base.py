"""The tool interface every agent tool implements.

A tool is a class with a ``name``, a ``description`` (shown to the model), a
``Params`` model (:mod:`moltbot.validation`) (its JSON schema is what the model sees) and one
coroutine ``run(ctx, params)`` that returns a string or a JSON-able dict::

    class EchoParams(BaseModel):
        text: str = Field(description="What to echo.")

    class EchoTool(Tool):
        name = "echo"
        description = "Echo the text back."
        Params = EchoParams

        async def run(self, ctx: ToolContext, params: EchoParams) -> str:
            return params.text

Rules the agent loop relies on:

- ``run`` raises :class:`ToolError` for an error the model should see and can
  react to ("file not found", "command not allowed"); the message becomes the
  tool result with ``isError: true``. Any other exception is reported the same
  way but also logged with its traceback.
- ``run`` must honour cancellation: an aborted run cancels the task running the
  tool (``asyncio.CancelledError``); clean up (kill processes, close sockets)
  and re-raise.
- Tools are built once per runtime with no arguments; per-call state comes from
  the :class:`ToolContext` (workspace, config, the other subsystems through
  ``ctx.lookup(BROWSER)``, keys in :mod:`moltbot.subsystems`).
- ``enabled(config)`` lets a tool hide itself (policy, missing dependency).

Built-in tools are listed lazily in :data:`moltbot.agents.tools.TOOLS`
(``name -> "module:Class"``); a module that does not exist yet is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from moltbot.errors import MoltbotError
from moltbot.lifecycle import Lookup, no_subsystems
from moltbot.validation import BaseModel, ConfigDict

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Instance
    from moltbot.sessions.origin import Origin

ToolResult = str | dict[str, Any]
_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


class ToolError(MoltbotError):
    """A failure reported to the model as the tool's (error) result."""


class ToolParams(BaseModel):
    """Base for params models: unknown fields are ignored, names are used as given."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


@dataclass(frozen=True)
class ToolContext:
    """What a tool call may use."""

    agent_id: str
    session_key: str
    run_id: str
    workspace: Path
    instance: Instance
    config: Config
    env: Mapping[str, str]
    logger: logging.Logger
    lookup: Lookup = field(default=no_subsystems)  # type: ignore[assignment]
    """``lookup(AGENTS)`` → the agent runtime; ``lookup(BROWSER)`` → that subsystem or None."""
    skill_env: Mapping[str, str] = field(default_factory=dict)
    """Variables the operator configured for eligible skills (``skills.entries.<key>.env``,
    ``apiKey``): commands the agent runs get them."""
    origin: Origin | None = None
    """Where the run's message came from (a channel chat; None: WebChat, an API, a timer)."""
    protected: tuple[Path, ...] = ()
    """Other instances' private places (state dirs, configs, workspaces) no tool may
    reach; this instance's own state dir and config are always protected as well
    (see :mod:`moltbot.agents.tools.confine`)."""


class Tool:
    """Base class of agent tools (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = ToolParams

    def enabled(self, config: Config) -> bool:
        """Whether the tool is offered to the model under this config."""
        return True

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of ``Params`` as sent to the model (titles stripped; cached)."""
        cached = _SCHEMAS.get(self.Params)
        if cached is None:
            cached = _SCHEMAS[self.Params] = _strip_titles(self.Params.model_json_schema())
        return cached

    def parse(self, arguments: Mapping[str, Any]) -> BaseModel:
        """Validate the model's arguments; raises :class:`ToolError` on bad input."""
        from moltbot.validation import ValidationError

        try:
            return self.Params.model_validate(dict(arguments))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None

    async def run(self, ctx: ToolContext, params: Any) -> ToolResult:
        raise NotImplementedError


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def format_result(result: ToolResult) -> str:
    """A tool result as the text the model receives."""
    if isinstance(result, str):
        return result
    import json

    return json.dumps(result, ensure_ascii=False, indent=1, default=str)
