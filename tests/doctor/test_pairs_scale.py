"""The host check looks only at pairs that can clash, and finds exactly what a look
at every pair finds (crowded hosts built from real config files, read by the real
registry)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from moltbot.doctor import checks
from moltbot.doctor.diagnose import member_for
from moltbot.instance.registry import discover


def crowded_host(home: Path, seed: int, count: int = 40) -> None:
    """``count`` instances, many of them stepping on each other in every way doctor knows."""
    rng = random.Random(seed)
    for n in range(count):
        state = home / f".clawdbot-p{n}"
        (state / "logs").mkdir(parents=True)
        port = 20_000 + 120 * rng.randrange(count) + rng.choice((0, 0, 0, 1, 15, 30, 60, 110))
        workspace = rng.choice(
            [
                home / f"clawd-p{n}",
                home / f"clawd-p{rng.randrange(count)}",  # shared
                home / f"clawd-p{rng.randrange(count)}" / "inner",  # nested
                home / f".clawdbot-p{rng.randrange(count)}" / "ws",  # inside a state dir
            ]
        )
        config: dict = {
            "gateway": {"mode": "local", "port": port, "auth": {"token": "t" * 32}},
            "agents": {"defaults": {"workspace": str(workspace)}},
        }
        roll = rng.random()
        if roll < 0.15:
            config["browser"] = {"cdpUrl": f"http://127.0.0.1:{20_000 + 120 * rng.randrange(9)}"}
        elif roll < 0.3:
            pinned = 20_000 + 120 * rng.randrange(count) + rng.choice((2, 4, 20))
            config["browser"] = {"profiles": {"work": {"cdpPort": pinned, "color": "#FF4500"}}}
        (state / "moltbot.json").write_text(json.dumps(config))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pairs_in_reach_find_what_every_pair_finds(home: Path, env, seed: int) -> None:
    crowded_host(home, seed)
    known = discover(home, env)
    members = [member_for(k, env, None, {}) for k in known]
    assert len(members) == 40
    every = [
        finding.as_dict()
        for a, b in itertools.combinations(members, 2)
        for finding in checks.check_pair(a, b, members)
    ]
    assert len(every) > 20  # the host is crowded: the comparison means something
    assert [f.as_dict() for f in checks.check_pairs(members)] == every
    reached = len(checks._pairs_in_reach(members))
    assert reached < len(members) * (len(members) - 1) // 2


def test_a_spread_out_host_checks_few_pairs(home: Path, env) -> None:
    for n in range(60):
        state = home / f".clawdbot-p{n}"
        state.mkdir()
        config = {"gateway": {"mode": "local", "port": 20_000 + 120 * n, "auth": {"token": "t"}}}
        (state / "moltbot.json").write_text(json.dumps(config))
    members = [member_for(k, env, None, {}) for k in discover(home, env)]
    assert checks.check_pairs(members) == []
    assert len(checks._pairs_in_reach(members)) < 2 * len(members)  # neighbours only
