"""Mutation testing of the security- and data-critical modules (``make mutate``).

For each module in :data:`PLAN`, cosmic-ray plants one small bug at a time (a
flipped comparison, a dropped ``not``, ``and`` for ``or``, an emptied loop, a
swapped exception type, ...) and runs the tests that matter for that module; a
mutant that leaves them green "survived". Each module runs in its own copy of
the tree under ``build/mutation/<name>/`` (cosmic-ray edits files in place, and
the gateway subprocesses the tests start must import the mutated copy, so the
copy's ``src`` comes first on ``PYTHONPATH``).

    python mutation/run.py                  # every module, two at a time
    python mutation/run.py auth devices     # just these
    python mutation/run.py --survivors      # re-test last run's survivors only
    python mutation/run.py --report         # rewrite docs/mutation.md from the sessions

The score and the surviving mutants go to ``docs/mutation.md``. Survivors that
cannot be killed (the mutant behaves exactly like the original) are explained in
``mutation/equivalent.toml``, keyed by module, operator and the source line.
Not part of ``make test`` or CI: a full run takes about an hour on two cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
DOC = ROOT / "docs" / "mutation.md"
EQUIVALENT = ROOT / "mutation" / "equivalent.toml"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # path under src/moltbot
    tests: tuple[str, ...]  # fastest-killing first: pytest stops at the first failure


HANDSHAKE = "tests/gateway/test_handshake.py"
AUTH_GATEWAY = "tests/gateway/test_auth_gateway.py"
# Tests that fork eight writers for a minute are left to `make test`; the kill -9 one stays.
CONFIG_TESTS = (
    "tests/config/test_config_store.py",
    "tests/config/test_config_concurrency.py::test_kill_9_during_writes_leaves_old_or_new_never_torn",
)
SESSION_TESTS = ("tests/sessions/test_transcript.py", "tests/sessions/test_session_store.py")

PLAN = (
    Target("auth", "gateway/auth.py", ("tests/gateway/test_auth.py", AUTH_GATEWAY)),
    Target(
        "devices",
        "devices/identity.py",
        ("tests/devices/test_identity.py", AUTH_GATEWAY, HANDSHAKE),
    ),
    Target(
        "device-pairing",
        "devices/pairing.py",
        ("tests/devices/test_pairing.py", AUTH_GATEWAY, HANDSHAKE),
    ),
    Target("handshake", "gateway/handshake.py", (HANDSHAKE, AUTH_GATEWAY)),
    Target("access", "channels/access.py", ("tests/channels/test_channels_access.py",)),
    Target("pairing", "channels/pairing.py", ("tests/channels/test_channels_pairing.py",)),
    Target("ports", "instance/ports.py", ("tests/instance/test_instance_ports.py",)),
    Target("env", "instance/env.py", ("tests/instance/test_instance_env.py",)),
    Target(
        "resolve",
        "instance/resolve.py",
        ("tests/instance/test_instance_resolve.py", "tests/instance/test_instance_env.py"),
    ),
    Target("config-store", "config/store.py", CONFIG_TESTS),
    Target("transcript", "sessions/transcript.py", SESSION_TESTS),
    Target(
        "session-store",
        "sessions/store.py",
        (*SESSION_TESTS, "tests/sessions/test_session_store_faults.py"),
    ),
    Target("fs-tools", "agents/tools/fs.py", ("tests/agents/test_tools.py",)),
    Target("exec-policy", "agents/tools/exec.py", ("tests/agents/test_tools.py",)),
    Target(
        "canvas-files",
        "canvas/files.py",
        (
            "tests/canvas/test_canvas_files.py",
            "tests/canvas/test_canvas_host.py::test_path_traversal_and_symlinks_refused",
        ),
    ),
    Target("browser-guard", "browser/httpguard.py", ("tests/browser/test_browser_httpguard.py",)),
)

# The operators that plant a plausible bug. Left out, and why:
# - BitOr_*: nearly every ``|`` here is a type annotation (``str | None``), never evaluated;
# - the other binary-operator swaps (``+`` -> ``**``, ``>>``, ...) and comparison swaps that
#   are neither the boundary (``<`` -> ``<=``) nor the negation (``<`` -> ``>=``): they are
#   killed by the same tests as those, and multiply the run time by five;
# - NumberReplacer (``n`` -> ``n+1``, ``n-1``): limits, timeouts and file modes, where an
#   off-by-one changes no observable behaviour a test could assert without timing;
# - RemoveDecorator: ``@dataclass``/``@property``/``@staticmethod`` break at import.
KEPT_OPERATORS = (
    "core/ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|Lt_GtE|LtE_Lt|LtE_Gt|Gt_GtE"
    "|Gt_LtE|GtE_Gt|GtE_Lt|In_NotIn|NotIn_In|Is_IsNot|IsNot_Is)",
    "core/ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Mul|Mod_FloorDiv"
    "|BitAnd_BitOr)",
    "core/ReplaceUnaryOperator_(Delete_Not|USub_UAdd)",
    "core/AddNot",
    "core/ReplaceAndWithOr",
    "core/ReplaceOrWithAnd",
    "core/ReplaceTrueWithFalse",
    "core/ReplaceFalseWithTrue",
    "core/ExceptionReplacer",
    "core/ZeroIterationForLoop",
    "core/ReplaceContinueWithBreak",
    "core/ReplaceBreakWithContinue",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="modules run at once")
    parser.add_argument("--survivors", action="store_true", help="re-test last survivors")
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    args = parser.parse_args(argv)
    by_name = {t.name: t for t in PLAN}
    chosen = [by_name[n] for n in args.names if n in by_name] if args.names else list(PLAN)
    unknown = set(args.names) - {t.name for t in PLAN}
    if unknown:
        print(f"unknown targets: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if not args.report:
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for line in pool.map(lambda t: run_target(t, survivors=args.survivors), chosen):
                print(line, flush=True)
    write_report()
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


def source_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [p for p in out.split("\0") if p and not p.startswith(("build/", "docs/"))]


def copy_tree(dest: Path) -> None:
    """Refresh ``dest`` with the working tree (sources and tests, no caches)."""
    for sub in ("src", "tests", "mutation", "bench"):
        shutil.rmtree(dest / sub, ignore_errors=True)
    for rel in source_files():
        source = ROOT / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_text(target: Target, timeout: float) -> str:
    tests = " ".join(target.tests)
    command = (
        f"{BIN / 'python'} -m pytest -x -q -p no:cacheprovider --timeout=60 "
        f"-W ignore::pytest.PytestUnraisableExceptionWarning {tests}"
    )
    keep = "|".join(f"(?:{op})" for op in KEPT_OPERATORS)
    return (
        "[cosmic-ray]\n"
        f'module-path = "src/moltbot/{target.module}"\n'
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{json.dumps(f'(?!(?:{keep})$)')}]\n"
    )


def run_target(target: Target, *, survivors: bool) -> str:
    place = WORK / target.name
    place.mkdir(parents=True, exist_ok=True)
    session = place / "session.sqlite"
    copy_tree(place)
    env = {
        **os.environ,
        "PYTHONPATH": str(place / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    module = place / "src" / "moltbot" / target.module
    stamp = place / "module.sha256"
    log = (place / "run.log").open("a")

    def cr(*command: str) -> None:
        subprocess.run(command, cwd=place, env=env, stdout=log, stderr=log, check=True)

    started = time.monotonic()
    probe = subprocess.run(
        [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *target.tests],
        cwd=place,
        env=env,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        log.write(probe.stdout + probe.stderr)
        return f"{target.name}: the tests fail without any mutation; see {place}/run.log"
    timeout = 3 * (time.monotonic() - started) + 30
    (place / "cosmic-ray.toml").write_text(config_text(target, timeout))
    if survivors and session.exists() and stamp.read_text() == digest(module):
        with sqlite3.connect(session) as db:
            db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    else:
        session.unlink(missing_ok=True)
        stamp.write_text(digest(module))
        cr(str(BIN / "cosmic-ray"), "init", "cosmic-ray.toml", str(session))
        cr(str(BIN / "cr-filter-operators"), str(session), "cosmic-ray.toml")
    try:
        cr(str(BIN / "cosmic-ray"), "exec", "cosmic-ray.toml", str(session))
    finally:
        reap(place / "src")
    counts = tally(session)
    return (
        f"{target.name}: {counts['killed']}/{counts['tested']} killed, "
        f"{counts['survived']} survived ({time.monotonic() - started:.0f} s)"
    )


def reap(src: Path) -> None:
    """Kill gateways a timed-out test run left behind: cosmic-ray kills the test's process
    group, but each gateway runs in a session of its own. They are known by the copy's
    ``PYTHONPATH``."""
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("PYTHONPATH") == str(src) and proc.pid != os.getpid():
                proc.kill()
        except (psutil.Error, OSError):
            continue


def results(session: Path) -> list[dict[str, object]]:
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT m.module_path, m.operator_name, m.start_pos_row, m.occurrence, "
            "r.test_outcome, r.worker_outcome "
            "FROM mutation_specs m LEFT JOIN work_results r ON r.job_id = m.job_id"
        ).fetchall()
    keys = ("module", "operator", "line", "occurrence", "test", "worker")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def tally(session: Path) -> dict[str, int]:
    rows = [r for r in results(session) if r["worker"] != "SKIPPED"]
    killed = sum(r["test"] == "KILLED" for r in rows)
    survived = sum(r["test"] == "SURVIVED" for r in rows)
    return {"tested": killed + survived, "killed": killed, "survived": survived}


def load_equivalent() -> dict[tuple[str, str, str], str]:
    """``(target, operator, stripped source line) -> why it is equivalent``."""
    if not EQUIVALENT.exists():
        return {}
    data = tomllib.loads(EQUIVALENT.read_text(encoding="utf-8"))
    return {(e["target"], e["operator"], e["line"].strip()): e["why"] for e in data["mutant"]}


def write_report() -> None:
    equivalent = load_equivalent()
    table = []
    details = []
    totals = {"tested": 0, "killed": 0, "equivalent": 0, "open": 0}
    for target in PLAN:
        session = WORK / target.name / "session.sqlite"
        if not session.exists():
            table.append(f"| {target.name} | `{target.module}` | not run | | | |")
            continue
        source = (ROOT / "src" / "moltbot" / target.module).read_text().splitlines()
        counts = tally(session)
        explained, unexplained = [], []
        for row in results(session):
            if row["test"] != "SURVIVED" or row["worker"] == "SKIPPED":
                continue
            line_no = int(row["line"])  # type: ignore[arg-type]
            code = source[line_no - 1].strip() if line_no <= len(source) else "?"
            operator = str(row["operator"]).removeprefix("core/")
            why = equivalent.get((target.name, operator, code))
            entry = f"- line {line_no}, `{operator}`: `{code}`"
            (explained if why else unexplained).append(entry + (f" — {why}" if why else ""))
        tested, killed = counts["tested"], counts["killed"]
        score = f"{100 * killed / tested:.1f}%" if tested else "-"
        effective = f"{100 * (killed + len(explained)) / tested:.1f}%" if tested else "-"
        table.append(
            f"| {target.name} | `{target.module}` | {tested} | {killed} | {score} "
            f"| {len(explained)} equivalent, {len(unexplained)} open ({effective}) |"
        )
        totals["tested"] += tested
        totals["killed"] += killed
        totals["equivalent"] += len(explained)
        totals["open"] += len(unexplained)
        if explained or unexplained:
            details.append(f"### {target.name} (`src/moltbot/{target.module}`)\n")
            if unexplained:
                details.append("Not yet killed:\n")
                details.extend(unexplained)
                details.append("")
            if explained:
                details.append("Equivalent (no test can tell them apart from the original):\n")
                details.extend(explained)
                details.append("")
    tested, killed = totals["tested"], totals["killed"]
    overall = f"{100 * killed / tested:.1f}%" if tested else "-"
    lines = [
        "# Mutation testing",
        "",
        "`make mutate` (see `mutation/run.py`) plants one bug at a time in the security- and",
        "data-critical modules with [cosmic-ray](https://pypi.org/project/cosmic-ray/) and runs",
        "the tests that matter for each module; a mutant the tests do not notice *survived*.",
        "Every survivor is either killed by a test or explained below as equivalent (it",
        "behaves exactly like the original). This file is written by `mutation/run.py`;",
        "the explanations live in `mutation/equivalent.toml`.",
        "",
        "Operators planted: comparison boundaries and negations (`<`/`<=`, `==`/`!=`,",
        "`in`/`not in`, `is`/`is not`), `+`/`-`, `and`/`or`, an added or dropped `not`,",
        "`True`/`False`, `break`/`continue`, a loop that never runs, and a swapped",
        "exception type in `except`. Left out, and why: see `KEPT_OPERATORS` in `mutation/run.py`.",
        "",
        "| target | module | mutants | killed | score | survivors (killed + equivalent) |",
        "|---|---|---|---|---|---|",
        *table,
        "",
        f"Overall: {killed} of {tested} killed ({overall}); {totals['equivalent']} "
        f"equivalent survivors, {totals['open']} not yet killed.",
        "",
        "The score is killed / mutants; the last column adds the survivors explained as",
        "equivalent. Re-run after changing a module or its tests: line numbers and scores",
        "here are those of the last run of each target (`make mutate MUTATE_ARGS=--survivors`",
        "re-tests only the survivors while a module's source is unchanged).",
        "",
        "## Survivors",
        "",
        *(details or ["None."]),
    ]
    DOC.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
