"""The session index when writes fail: group commit under injected and real faults.

Updates that arrive together share one index write (a batch). When that write fails,
every caller of the batch gets the error, callers of later batches are still served,
nothing acknowledged is lost, and the next write succeeds.
"""

import asyncio
import errno
import os
import stat
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from moltbot.sessions.store import SessionStore


class HeldReplace:
    """``os.replace`` onto ``target`` once armed: the first one waits at a gate inside the
    writer thread until the test releases it, then fails with ``error`` (or goes through)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
        self.armed = False
        self.error: BaseException | None = None
        self.entered = threading.Event()
        self.released = threading.Event()
        self.calls = 0
        real = os.replace

        def replace(src, dst, **kwargs):
            if self.armed and Path(os.fsdecode(dst)) == target:
                self.calls += 1
                if self.calls == 1:
                    self.entered.set()
                    self.released.wait(60)
                    if self.error is not None:
                        raise self.error
            real(src, dst, **kwargs)

        monkeypatch.setattr(os, "replace", replace)

    def arm(self, error: BaseException | None = None) -> None:
        self.armed, self.error = True, error

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 60), "no index write started"

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def held(monkeypatch, tmp_path):
    gate = HeldReplace(monkeypatch, tmp_path / "sessions.json")
    yield gate
    gate.release()  # never leave a writer thread parked


async def settle(*tasks):
    """Each task's result or exception. A caller still waiting after a minute was
    stranded (its answer will never come): that fails the test instead of hanging it."""
    async with asyncio.timeout(60):
        return await asyncio.gather(*tasks, return_exceptions=True)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


async def test_a_failed_index_write_fails_its_whole_batch_and_only_that_batch(tmp_path, held):
    store = SessionStore(tmp_path)
    await store.ensure("agent:main:main", label="kept")
    held.arm(OSError(errno.ENOSPC, "No space left on device (injected)"))
    first = [
        asyncio.create_task(store.touch("agent:main:main", label=f"first-{i}")) for i in range(3)
    ]
    await held.wait_entered()
    later = asyncio.create_task(store.touch("agent:main:main", label="later"))
    await asyncio.sleep(0)  # `later` queues behind the batch being written
    held.release()

    outcomes = await settle(*first, later)
    for failed in outcomes[:3]:  # the error itself, not a stand-in
        assert isinstance(failed, OSError) and failed.errno == errno.ENOSPC, failed
    assert outcomes[3].label == "later"
    assert held.calls == 2  # one write per batch
    assert (await SessionStore(tmp_path).get("agent:main:main")).label == "later"
    assert leftovers(tmp_path) == []


async def test_a_failed_write_keeps_what_was_acknowledged(tmp_path, held):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main", label="kept")
    held.arm(OSError(errno.EIO, "Input/output error (injected)"))
    failing = asyncio.create_task(store.ensure("agent:main:other"))
    await held.wait_entered()
    held.release()
    [outcome] = await settle(failing)
    assert isinstance(outcome, OSError) and outcome.errno == errno.EIO

    fresh = SessionStore(tmp_path)
    assert await fresh.all() == {"agent:main:main": entry}
    assert await store.get("agent:main:other") is None
    assert leftovers(tmp_path) == []
    again = await store.ensure("agent:main:other")  # the store is not stuck
    assert set(await SessionStore(tmp_path).all()) == {"agent:main:main", "agent:main:other"}
    assert again.session_id


@pytest.mark.parametrize("fails", [False, True], ids=["written", "failed"])
async def test_a_caller_that_gives_up_does_not_strand_its_batch(tmp_path, held, fails):
    store = SessionStore(tmp_path)
    for key in ("a", "b", "c"):
        await store.ensure(f"agent:main:{key}")
    held.arm(OSError(errno.ENOSPC, "No space left on device (injected)") if fails else None)
    callers = [
        asyncio.create_task(store.touch(f"agent:main:{key}", label=key)) for key in ("a", "b", "c")
    ]
    await held.wait_entered()
    callers[0].cancel()  # e.g. its client hung up while the batch was being written
    held.release()

    outcomes = await settle(*callers)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    for key, outcome in zip(("b", "c"), outcomes[1:], strict=True):
        if fails:
            assert isinstance(outcome, OSError) and outcome.errno == errno.ENOSPC, outcome
        else:
            assert outcome.label == key
    on_disk = await SessionStore(tmp_path).all()
    expected = None if fails else "c"
    assert on_disk["agent:main:c"].label == expected


async def test_a_cancelled_index_write_fails_its_callers_with_an_error(tmp_path, held):
    """The writer task is cancelled mid-batch (the loop is shutting down): its callers get
    an OSError, never a CancelledError they did not ask for, and the store still works."""
    store = SessionStore(tmp_path)
    await store.ensure("agent:main:main", label="kept")
    held.arm()
    before = asyncio.all_tasks()
    callers = [
        asyncio.create_task(store.touch("agent:main:main", label=f"lost-{i}")) for i in range(2)
    ]
    await held.wait_entered()
    [writer] = asyncio.all_tasks() - before - set(callers)
    writer.cancel()
    outcomes = await settle(*callers)
    for outcome in outcomes:
        assert type(outcome) is OSError and "cancelled" in str(outcome), outcome
    assert not any(caller.cancelled() for caller in callers)
    held.release()  # the parked thread finishes its rename; the lock is released

    assert (await store.touch("agent:main:main", label="after")).label == "after"
    assert (await SessionStore(tmp_path).get("agent:main:main")).label == "after"


async def test_one_failing_update_leaves_the_rest_of_its_batch_written(tmp_path):
    store = SessionStore(tmp_path)
    for key in ("a", "b", "c"):
        await store.ensure(f"agent:main:{key}")
    outcomes = await settle(
        store.touch("agent:main:a", label="A"),
        store.touch("agent:main:b", input_tokens="lots"),  # refused by the entry's schema
        store.touch("agent:main:c", label="C"),
    )
    assert outcomes[0].label == "A" and outcomes[2].label == "C"
    assert isinstance(outcomes[1], ValueError) and "input_tokens" in str(outcomes[1])
    on_disk = await SessionStore(tmp_path).all()
    assert (on_disk["agent:main:a"].label, on_disk["agent:main:c"].label) == ("A", "C")
    assert on_disk["agent:main:b"].input_tokens is None


async def test_an_index_that_is_a_directory_is_moved_aside_and_rebuilt(tmp_path):
    store = SessionStore(tmp_path)
    await store.ensure("agent:main:a")
    (tmp_path / "sessions.json").unlink()
    (tmp_path / "sessions.json").mkdir()
    fresh = SessionStore(tmp_path)
    outcomes = await settle(
        fresh.touch("agent:main:a", label="A"), fresh.update("agent:main:b", lambda _: None)
    )
    assert not any(isinstance(outcome, BaseException) for outcome in outcomes), outcomes
    assert (await SessionStore(tmp_path).get("agent:main:a")).label == "A"
    [aside] = tmp_path.glob("sessions.json.corrupt-*")
    assert aside.is_dir()


@pytest.mark.timeout(60)  # before the fix, reading the FIFO blocked the event loop for good
async def test_an_index_that_is_a_fifo_is_moved_aside_not_waited_on(tmp_path):
    store = SessionStore(tmp_path)
    await store.ensure("agent:main:main", label="kept")
    (tmp_path / "sessions.json").unlink()
    os.mkfifo(tmp_path / "sessions.json")
    rebuilt = await SessionStore(tmp_path).get("agent:main:main")
    assert rebuilt is not None  # from its transcript's header
    [aside] = tmp_path.glob("sessions.json.corrupt-*")
    assert stat.S_ISFIFO(aside.lstat().st_mode)
    assert (await store.touch("agent:main:main", label="after")).label == "after"
    assert (await SessionStore(tmp_path).get("agent:main:main")).label == "after"


FILE_SIZE_LIMITED = textwrap.dedent("""
    import asyncio, resource, signal, sys
    from pathlib import Path
    from moltbot.sessions.store import SessionStore

    async def main(directory):
        store = SessionStore(directory)
        await store.ensure("agent:main:main", label="small")
        # The kernel caps file sizes (as a full disk would): a write that crosses the cap is
        # cut short, the next one fails with EFBIG.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        cap = (directory / "sessions.json").stat().st_size + 100
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))
        try:
            await store.touch("agent:main:main", label="x" * 20000)
        except OSError as exc:
            print("refused", exc.errno)
        else:
            print("acknowledged")

    asyncio.run(main(Path(sys.argv[1])))
""")


async def test_an_index_write_cut_short_is_refused_not_acknowledged(tmp_path):
    """A short write (disk full, file size limit) must fail the update: acknowledging it
    would leave a truncated index, which the next reader moves aside as corrupt."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FILE_SIZE_LIMITED, str(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert out.decode().split() == ["refused", str(errno.EFBIG)]
    assert (await SessionStore(tmp_path).get("agent:main:main")).label == "small"
    assert not list(tmp_path.glob("sessions.json.corrupt-*"))
    assert leftovers(tmp_path) == []


async def test_an_index_that_is_not_utf8_is_rebuilt(tmp_path) -> None:  # noqa: ANN001
    from moltbot.sessions.store import SessionStore

    store = SessionStore(tmp_path / "sessions")
    await store.ensure("agent:main:main")
    store.index_path.write_bytes(b'{"agent:main:main": {"sessionId": "\xff\xfe"}}')
    fresh = SessionStore(tmp_path / "sessions")
    assert await fresh.get("agent:main:main") is not None  # rebuilt from the transcript
    assert list(store.index_path.parent.glob("sessions.json.corrupt-*"))
