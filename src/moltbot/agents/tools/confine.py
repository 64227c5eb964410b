"""Where the agent tools may reach: the workspace, minus every instance's private places.

:class:`Confinement` is the one answer to "may a tool touch this path?", used by
``read``/``write``/``edit``, by ``exec`` (its working directory and every
path-like argument) and by the ``canvas`` tool:

- the path's **real** location (``..`` and symlinks resolved) must be the root
  or below it, compared component by component (``~/clawd-evil`` is not inside
  ``~/clawd``);
- it must not be in a **protected** place: this instance's state dir and
  config file, and the state dir, config file, workspaces and canvas root of
  every other instance known on the host (:func:`protected_paths`, from the host
  registry). A protected place that itself contains the root (a workspace kept
  inside the state dir) does not hide the root.

These checks decide; :mod:`moltbot.safepath` then opens without following
links, so a link swapped in after the decision is refused rather than followed.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moltbot.agents.tools.base import ToolContext, ToolError
from moltbot.safepath import inside

if TYPE_CHECKING:
    from moltbot.instance.resolve import Instance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Confinement:
    root: Path
    """Real path of the directory the tool works in."""
    protected: tuple[Path, ...] = ()
    """Real paths no tool may reach (those containing ``root`` are left out)."""
    label: str = "the workspace"

    @classmethod
    def build(
        cls, root: Path, protected: Iterable[Path], label: str = "the workspace"
    ) -> Confinement:
        real_root = Path(os.path.realpath(root))
        blocking = []
        for path in protected:
            real = Path(os.path.realpath(path))
            if not inside(real_root, real) and real not in blocking:
                blocking.append(real)
        return cls(real_root, tuple(blocking), label)

    def violation(self, real: Path) -> str | None:
        """Why the real path ``real`` is out of reach, or None."""
        if not inside(real, self.root):
            return f"outside {self.label} ({self.root})"
        for path in self.protected:
            if inside(real, path):
                return "inside a moltbot state dir, config or another instance's workspace"
        return None

    def locate(self, raw: str, base: Path | None = None) -> Path:
        """The real path ``raw`` names (relative to ``base``, default the root)."""
        given = Path(raw)
        candidate = given if given.is_absolute() else (base or self.root) / given
        return Path(os.path.realpath(candidate))

    def resolve(self, raw: str, base: Path | None = None) -> Path:
        """The real path of ``raw`` if a tool may use it; :class:`ToolError` otherwise."""
        if not raw or not raw.strip():
            raise ToolError("path must not be empty")
        if "\x00" in raw:
            raise ToolError("path contains a NUL byte")
        real = self.locate(raw.strip(), base)
        why = self.violation(real)
        if why is not None:
            raise ToolError(f"{raw}: {why}; only files inside {self.label} are reachable")
        return real

    def parts(self, real: Path) -> tuple[str, ...]:
        """Components of ``real`` below the root (``real`` from :meth:`resolve`)."""
        return real.relative_to(self.root).parts

    def display(self, real: Path) -> str:
        try:
            return str(real.relative_to(self.root)) or "."
        except ValueError:
            return str(real)


def workspace_confinement(ctx: ToolContext) -> Confinement:
    """The confinement of a tool call: its workspace, minus every protected place."""
    protected = (*own_paths(ctx.instance), *ctx.protected)
    return _built(Path(ctx.workspace), protected, int(time.monotonic() // REBUILD_S))


REBUILD_S = 30.0


@functools.lru_cache(maxsize=32)
def _built(root: Path, protected: tuple[Path, ...], _epoch: int) -> Confinement:
    # resolving ~20 paths costs more than a read itself: reuse the result for a while
    return Confinement.build(root, protected)


def own_paths(instance: Instance) -> tuple[Path, ...]:
    """An instance's private places: its state dir and config file, and the secrets in
    the state dir one by one (they stay hidden even if a workspace is the state dir)."""
    return (
        instance.state_dir,
        instance.config_path,
        instance.credentials_dir,
        instance.agents_root,
        instance.devices_dir,
        instance.identity_dir,
        instance.logs_dir,
        instance.runtime_file,
        instance.nodes_dir,
        instance.exec_approvals_file,
        instance.node_host_file,
        instance.settings_dir,
    )


def protected_paths(instance: Instance, env: Mapping[str, str]) -> tuple[Path, ...]:
    """Private places of this instance and of every other instance on the host.

    Reads the host registry (state dirs under HOME, service files); slow-ish
    (it loads every instance's config), so callers cache it.
    """
    from moltbot.agents.roster import agent_specs
    from moltbot.instance.registry import discover

    paths: list[Path] = list(own_paths(instance))
    try:
        known = discover(instance.home, env)
    except Exception as exc:  # the registry is best effort; own paths stay protected
        log.warning("cannot list the other instances on this host: %s", exc)
        return tuple(paths)
    mine = Path(os.path.realpath(instance.state_dir))
    for other in known:
        inst = other.instance
        if Path(os.path.realpath(inst.state_dir)) == mine:
            continue
        paths += [*own_paths(inst), inst.workspace, inst.canvas_root]
        if other.config is not None:
            paths += [spec.workspace for spec in agent_specs(other.config, inst)]
    return tuple(paths)
