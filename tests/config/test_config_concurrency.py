"""Config writes under real concurrency and real crashes.

- 8 processes each run 50 ``moltbot config set`` commands of distinct keys on
  one file (the CLI is invoked in-process 50 times per worker, so the test pays
  8 interpreter start-ups, not 400): the file stays valid and holds all 400.
- A writer killed with SIGKILL at random moments leaves the old or the new file,
  never a torn one, and never a stale lock.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import json5

from moltbot.config import keypath
from moltbot.config.store import read_config, update_config

WORKERS = 8
SETS_PER_WORKER = 50

CLI_WORKER = """
import sys, time
from pathlib import Path
from moltbot.cli.main import cli

worker, count, go = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
failures = 0
for n in range(count):
    try:
        cli.main(["--profile", "conc", "config", "set", "--force", f"test.w{worker}.k{n}",
                  str(n * worker)],
                 prog_name="moltbot")
    except SystemExit as exc:
        if exc.code:
            failures += 1
sys.exit(1 if failures else 0)
"""


def start_workers(count: int, sets: int, go: Path) -> list[subprocess.Popen[str]]:
    """Workers that are imported and waiting; they start when ``go`` exists."""
    workers = []
    for i in range(count):
        log = (go.parent / f"worker-{i}.err").open("w")  # unknown-key warnings go here
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", CLI_WORKER, str(i), str(sets), str(go)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        )
        log.close()
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    return workers


def finish(workers: list[subprocess.Popen[str]], go: Path) -> None:
    try:
        for i, worker in enumerate(workers):
            worker.communicate(timeout=120)
            assert worker.returncode == 0, (go.parent / f"worker-{i}.err").read_text()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_eight_processes_fifty_sets_each(home: Path) -> None:
    go = home / "go"
    workers = start_workers(WORKERS, SETS_PER_WORKER, go)
    go.touch()
    finish(workers, go)

    path = home / ".clawdbot-conc" / "moltbot.json"
    snapshot = read_config(path, {})  # "test" is not a schema section: unknown keys warn
    tools = snapshot.data["test"]
    assert {f"w{i}" for i in range(WORKERS)} == set(tools)
    for i in range(WORKERS):
        assert tools[f"w{i}"] == {f"k{n}": n * i for n in range(SETS_PER_WORKER)}
    assert sum(len(v) for v in tools.values()) == WORKERS * SETS_PER_WORKER
    backup = json.loads(path.with_name("moltbot.json.bak").read_text())
    assert sum(len(v) for v in backup["test"].values()) == WORKERS * SETS_PER_WORKER - 1
    assert not list(path.parent.glob(".*.tmp"))


def test_concurrent_sets_on_a_hand_edited_file_keep_its_comments(home: Path) -> None:
    path = home / ".clawdbot-conc" / "moltbot.json"
    path.parent.mkdir(mode=0o700)
    path.write_text("// hand-written\n{\n  gateway: { port: 20000 }, // base\n  test: {},\n}\n")
    go = home / "go"
    workers = start_workers(3, 6, go)
    go.touch()
    finish(workers, go)
    text = path.read_text()
    assert text.startswith("// hand-written\n{\n  gateway: { port: 20000 }, // base\n")
    tools = json5.loads(text)["test"]
    assert tools == {f"w{i}": {f"k{n}": n * i for n in range(6)} for i in range(3)}


# -- kill -9 ---------------------------------------------------------------------------------

BLOB = 1_000_000


def _writer(path: str) -> None:  # runs in a forked child until killed
    target = Path(path)
    seq = json.loads(target.read_text())["tools"]["seq"]
    while True:
        seq += 1

        def change(data: dict, seq: int = seq) -> None:
            keypath.set_(data, ["tools"], {"seq": seq, "blob": "x" * BLOB + str(seq)})

        update_config(target, change, {})


def _check_whole(path: Path) -> int:
    data = json.loads(path.read_text())  # a torn file does not parse ...
    tools = data["tools"]
    assert tools["blob"] == "x" * BLOB + str(tools["seq"])  # ... or is inconsistent
    return int(tools["seq"])


def test_kill_9_during_writes_leaves_old_or_new_never_torn(home: Path) -> None:
    path = home / ".clawdbot-crash" / "moltbot.json"
    update_config(path, lambda d: d.update(tools={"seq": 0, "blob": "x" * BLOB + "0"}), {})
    context = multiprocessing.get_context("fork")
    rng = random.Random(1234)
    last_seq, mid_write, trials = 0, 0, 0
    deadline = time.monotonic() + 25
    while trials < 60 and time.monotonic() < deadline and (trials < 15 or mid_write < 3):
        trials += 1
        writer = context.Process(target=_writer, args=(str(path),), daemon=True)
        writer.start()
        time.sleep(rng.uniform(0.02, 0.15))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(5)
        assert writer.exitcode == -signal.SIGKILL
        if list(path.parent.glob(".moltbot.json.*.tmp")):
            mid_write += 1  # killed between creating a temp file and renaming it
        seq = _check_whole(path)
        assert seq >= last_seq
        last_seq = seq
        if path.with_name("moltbot.json.bak").exists():
            _check_whole(path.with_name("moltbot.json.bak"))
    assert last_seq > 0, "the writer never completed a write"
    assert mid_write >= 1, f"no kill landed inside a write in {trials} trials"
    # The lock died with its holder: a new writer gets it at once.
    started = time.monotonic()
    update_config(path, lambda d: d.update(tools={"seq": -1, "blob": ""}), {})
    assert time.monotonic() - started < 2
    assert read_config(path, {}).data["tools"]["seq"] == -1
    assert not list(path.parent.glob(".*.tmp"))
