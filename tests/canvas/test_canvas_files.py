"""The canvas root's file rules on a real file system, and the canvas tool at its edge.

``canvas-evil`` next to ``canvas`` is the trap: its path starts with the root's
path, so a check by string prefix would let it through.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import make_instance

from moltbot.agents.tools.base import ToolContext, ToolError
from moltbot.agents.tools.canvas import CanvasTool
from moltbot.canvas import files
from moltbot.canvas.files import Refused

SECRET = "<p>the neighbour's secret</p>"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "canvas"
    root.mkdir()
    evil = tmp_path / "canvas-evil"
    evil.mkdir()
    (evil / "secret.html").write_text(SECRET)
    return root


def test_split_path() -> None:
    assert files.split_path("a/./b//c%20d") == ["a", "b", "c d"]
    assert files.split_path("") == []
    for bad in ("../x", "a/%2e%2e/x", "a%2fb", "a%5cb", "a\\b", "a%00b", ".."):
        with pytest.raises(Refused):
            files.split_path(bad)


def test_resolve_files_and_index(root: Path) -> None:
    (root / "index.html").write_text("home")
    (root / "app").mkdir()
    (root / "app" / "index.html").write_text("app")
    (root / "app" / "main.js").write_text("js")
    found = files.resolve(root, "app/main.js")
    assert found is not None and found.path == root / "app" / "main.js" and found.size == 2
    assert files.resolve(root, "").path == root / "index.html"  # type: ignore[union-attr]
    assert files.resolve(root, "app/").path == root / "app" / "index.html"  # type: ignore[union-attr]
    assert files.read(files.resolve(root, "app")) == b"app"  # type: ignore[arg-type]
    assert files.resolve(root, "missing.html") is None
    assert files.resolve(root.parent / "no-root-yet", "") is None
    assert files.resolve(root, "missing/deeper.html") is None
    assert files.resolve(root, "app/main.js/deeper") is None  # a file used as a directory
    (root / "empty").mkdir()
    assert files.resolve(root, "empty") is None  # a directory without index.html
    os.mkfifo(root / "pipe")
    assert files.resolve(root, "pipe") is None  # never open a FIFO


def test_resolve_refuses_symlinks_even_inside(root: Path) -> None:
    (root / "real.html").write_text("inside")
    os.symlink(root / "real.html", root / "alias.html")
    os.symlink(root.parent / "canvas-evil", root / "evil")
    (root / "dir").mkdir()
    os.symlink(root / "real.html", root / "dir" / "index.html")
    for path in ("alias.html", "evil/secret.html", "evil", "dir/"):
        with pytest.raises(Refused):
            files.resolve(root, path)


def test_a_directory_swapped_for_a_link_after_the_walk_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence: a directory replaced by a symlink out of the root
    between the walk's checks and the final resolution (a race with another process)
    is caught by comparing the real path with the root."""
    sub = root / "sub"
    sub.mkdir()
    (sub / "secret.html").write_text("decoy inside")
    real_lstat = os.lstat
    swapped = []

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        info = real_lstat(path, *args, **kwargs)
        if not swapped and Path(path) == sub:
            swapped.append(True)  # the attacker wins the race right after this check
            os.rename(sub, root / "moved")
            os.symlink(root.parent / "canvas-evil", sub)
        return info

    monkeypatch.setattr(os, "lstat", lstat)
    with pytest.raises(Refused, match="leaves the canvas root"):
        files.resolve(root, "sub/secret.html")
    assert swapped


def test_write_delete_and_listing(root: Path) -> None:
    written = files.write(root, "site/a.html", b"A")
    assert written == root / "site" / "a.html" and written.read_bytes() == b"A"
    files.write(root, "site/a.html", b"AA")
    assert written.read_bytes() == b"AA"
    files.write(root, ".hidden", b"x")
    (root / "node_modules").mkdir()
    files.write(root, "node_modules/x.js", b"x")
    files.write(root, "b.txt", b"bb")
    assert files.listing(root) == [
        {"path": "b.txt", "size": 2},
        {"path": "site/a.html", "size": 2},
    ]
    assert files.listing(root, limit=1) == [{"path": "b.txt", "size": 2}]
    assert files.listing(root / "nothing-here") == []
    assert files.delete(root, "site/a.html") is True
    assert files.delete(root, "site/a.html") is False
    assert files.delete(root, "gone/a.html") is False
    assert not (root / "gone").exists()  # deleting creates nothing
    nested = files.write(root, "n1/n2/x.html", b"x")
    assert nested == root / "n1" / "n2" / "x.html"
    fresh = root.parent / "new-root" / "canvas"
    assert files.write(fresh, "a.html", b"a") == fresh / "a.html"
    with pytest.raises(Refused):
        files.delete(root, "site")
    with pytest.raises(Refused):
        files.delete(root, "")
    os.symlink(root.parent / "canvas-evil" / "secret.html", root / "link.html")
    assert files.delete(root, "link.html") is True  # the link goes, not its target
    assert (root.parent / "canvas-evil" / "secret.html").read_text() == SECRET


def test_write_refuses_escapes_and_limits(root: Path) -> None:
    os.symlink(root.parent / "canvas-evil", root / "evil")
    (root / "plain.txt").write_text("x")
    os.symlink(root.parent / "canvas-evil" / "secret.html", root / "link.html")
    for rel in ("evil/new.html", "../canvas-evil/new.html", "plain.txt/new.html", "", "/"):
        with pytest.raises(Refused):
            files.write(root, rel, b"pwned")
    with pytest.raises(Refused, match="link.html: is a symlink"):
        files.write(root, "link.html", b"pwned")  # the last component is not followed
    with pytest.raises(Refused, match="plain.txt: not a directory"):
        files.write(root, "plain.txt/new.html", b"x")
    with pytest.raises(Refused, match="evil: is a symlink"):
        files.write(root, "evil/new.html", b"x")
    with pytest.raises(Refused, match="too large"):
        files.write(root, "big.bin", b"x" * (files.MAX_WRITE_BYTES + 1))
    files.write(root, "max.bin", b"x" * files.MAX_WRITE_BYTES)
    assert sorted(p.name for p in (root.parent / "canvas-evil").iterdir()) == ["secret.html"]
    assert (root.parent / "canvas-evil" / "secret.html").read_text() == SECRET
    assert files.delete(root, "missing/x.html") is False
    assert not (root / "missing").exists()


async def test_canvas_tool_stays_out_of_a_sibling_with_the_same_prefix(home: Path) -> None:
    made = make_instance(home, "main")
    root = made.instance.canvas_root
    root.mkdir(parents=True, exist_ok=True)
    evil = root.parent / (root.name + "-evil")
    evil.mkdir()
    (evil / "secret.html").write_text(SECRET)
    os.symlink(evil, root / "evil")
    ctx = ToolContext(
        agent_id="main",
        session_key="agent:main:main",
        run_id="run-1",
        workspace=made.instance.workspace,
        instance=made.instance,
        config=made.config,
        env=made.env,
        logger=logging.getLogger("test.tool"),
    )
    tool = CanvasTool()

    async def run(**arguments: Any) -> Any:
        return await tool.run(ctx, tool.parse(arguments))

    for path in (f"../{evil.name}/secret.html", "evil/secret.html"):
        with pytest.raises(ToolError):
            await run(action="read", path=path)
        with pytest.raises(ToolError):
            await run(action="write", path=path.replace("secret", "new"), content="pwned")
        with pytest.raises(ToolError):
            await run(action="delete", path=path)
    assert sorted(p.name for p in evil.iterdir()) == ["secret.html"]
    assert (evil / "secret.html").read_text() == SECRET
    written = await run(action="write", path="ok/page.html", content="fine")
    assert written["path"] == "ok/page.html" and (root / "ok" / "page.html").exists()
    assert await run(action="read", path="ok/page.html") == "fine"
