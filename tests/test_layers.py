"""Dependencies point one way (DESIGN §4): an import scan of every module in
``src/moltbot``, counting lazy imports inside functions, ``TYPE_CHECKING`` imports
and ``"module:Class"`` strings of lazy registries."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import moltbot

PACKAGE = Path(moltbot.__file__).resolve().parent
BOTTOM = {
    "lifecycle",
    "errors",
    "instance",
    "config",
    "security",
    "fsutil",
    "safepath",
    "lazy",
    "validation",
}
"""Imported by everything; imports nothing but itself (and ``moltbot.__version__``)."""
ABOVE_BOTTOM = {"gateway", "agents", "channels", "browser", "canvas", "cli"}
MAY_IMPORT_GATEWAY = {"gateway", "cli"}
GATEWAY_CLIENT_SIDE = {
    "moltbot.gateway.client",
    "moltbot.gateway.client_base",
    "moltbot.gateway.sync_client",
    "moltbot.gateway.blocking_ws",
    "moltbot.gateway.status",
    "moltbot.gateway.target",
    "moltbot.gateway.probe",
}
"""What a client of *another* gateway uses (the protocol client, typed status, where a
gateway runs): rescue talks to its targets through these, never to the server side."""
MAY_IMPORT_GATEWAY_CLIENT = {"rescue"}
MAY_IMPORT_CLI = {"cli", "__main__"}
BELOW_CHANNELS = {"commands"}
"""Used by channels, agents and the gateway (and plugins); imports none of them."""
_DOTTED = re.compile(r"moltbot(?:\.\w+)+(?::\w+)?")
AREAS = {
    entry.stem
    for entry in PACKAGE.iterdir()
    if (entry / "__init__.py").exists() or (entry.suffix == ".py" and entry.stem != "__init__")
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every ``moltbot.*`` module (or name) that ``path`` imports or names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and _DOTTED.fullmatch(node.value)
            and area(node.value) in AREAS
        ):
            yield node.value.partition(":")[0]


def area(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if parts[0] == "moltbot" and len(parts) > 1 else None


def edges() -> list[tuple[str, str, str]]:
    """(importing module, imported name, imported area) for imports across areas."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for target in imports(path):
            theirs = area(target)
            if theirs is not None and theirs != area(here) and theirs != "__version__":
                out.append((here, target, theirs))
    return out


def test_the_scan_sees_lazy_and_registry_imports() -> None:
    found = {(a, t) for a, t, _ in edges()}
    assert ("moltbot.gateway.runtime", "moltbot.browser.service") in found  # "module:Class"
    assert any(a.startswith("moltbot.cli.") and t.startswith("moltbot.gateway") for a, t in found)


def test_bottom_layer_imports_only_the_bottom_layer() -> None:
    bad = [
        f"{here} imports {target}"
        for here, target, theirs in edges()
        if area(here) in BOTTOM and theirs not in BOTTOM
    ]
    assert not bad, "\n".join(bad)
    assert BOTTOM.isdisjoint(ABOVE_BOTTOM)


def _client_side(target: str) -> bool:
    return any(target == m or target.startswith(m + ".") for m in GATEWAY_CLIENT_SIDE)


def test_nothing_below_the_gateway_imports_it() -> None:
    bad = [
        f"{here} imports {target}"
        for here, target, theirs in edges()
        if theirs == "gateway"
        and area(here) not in MAY_IMPORT_GATEWAY
        and not (area(here) in MAY_IMPORT_GATEWAY_CLIENT and _client_side(target))
    ]
    assert not bad, "\n".join(bad)


def test_the_client_side_of_the_gateway_does_not_import_its_server() -> None:
    """What rescue may import of the gateway stays clear of the server (aiohttp app,
    runtime, methods), so a rescue CLI or tool never drags the server in."""
    bad = [
        f"{here} imports {target}"
        for here, target, theirs in edges()
        if _client_side(here)
        and theirs == "gateway"
        and not _client_side(target)
        and not target.startswith("moltbot.gateway.lock")
        and not target.startswith("moltbot.gateway.preflight")
    ]
    assert not bad, "\n".join(bad)


def test_no_module_imports_the_cli() -> None:
    bad = [
        f"{here} imports {target}"
        for here, target, theirs in edges()
        if theirs == "cli" and area(here) not in MAY_IMPORT_CLI
    ]
    assert not bad, "\n".join(bad)


def test_the_command_layer_sits_below_channels_agents_and_gateway() -> None:
    bad = [
        f"{here} imports {target}"
        for here, target, theirs in edges()
        if area(here) in BELOW_CHANNELS and theirs in {"channels", "agents", "gateway", "cli"}
    ]
    assert not bad, "\n".join(bad)
