from moltbot.agents.prompt import (
    PromptInputs,
    build_system_prompt,
    load_bootstrap,
    read_identity,
    trim,
)
from moltbot.instance.workspace import ensure_workspace


def test_identity_from_template_and_variants(tmp_path):
    ensure_workspace(tmp_path)
    identity = read_identity(tmp_path)
    assert identity.name == "Molty" and identity.emoji == "🦞"
    (tmp_path / "IDENTITY.md").write_text("# Identity\n- **Name:** Clawd\n- **Creature:** crab\n")
    identity = read_identity(tmp_path)
    assert identity.name == "Clawd" and identity.vibe == "crab"


def test_bootstrap_files_caps_and_markers(tmp_path):
    ensure_workspace(tmp_path)
    names = [f.name for f in load_bootstrap(tmp_path, 20_000)]
    assert names == [
        "AGENTS.md",
        "SOUL.md",
        "TOOLS.md",
        "IDENTITY.md",
        "USER.md",
        "HEARTBEAT.md",
        "BOOTSTRAP.md",
    ]
    (tmp_path / "BOOTSTRAP.md").unlink()
    (tmp_path / "USER.md").unlink()
    (tmp_path / "MEMORY.md").write_text("remember: " + "m" * 5000)
    files = {f.name: f for f in load_bootstrap(tmp_path, 1000)}
    assert "BOOTSTRAP.md" not in files
    assert files["USER.md"].content is None
    assert files["MEMORY.md"].truncated and len(files["MEMORY.md"].content) < 1100
    prompt = build_system_prompt(
        PromptInputs("main", tmp_path, "fake/m1", [("read", "Read a file.")])
    )
    assert "[MISSING] Expected at:" in prompt and "## MEMORY.md" in prompt
    assert "Your name is Molty" in prompt and "- read: Read a file." in prompt
    assert "model=fake/m1" in prompt and str(tmp_path) in prompt


def test_trim_keeps_head_and_tail():
    text = "A" * 700 + "B" * 300 + "C" * 200
    out, cut = trim(text, 1000, "X.md")
    assert cut and out.startswith("A" * 700) and out.endswith("C" * 200)
    assert "read X.md for full content" in out
    assert trim("short", 1000, "x") == ("short", False)
