"""Port arithmetic: derived ports, blocks, a named profile's default port and spacing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from moltbot.instance import ports


def test_derived_ports() -> None:
    assert ports.control_port(18789) == 18791
    assert ports.canvas_port(18789) == 18793
    cdp = ports.cdp_range(18791)
    assert (cdp.start, cdp[-1], len(cdp)) == (18800, 18899, 100)


def test_block_is_base_to_base_plus_110() -> None:
    assert ports.BLOCK_SIZE == 111
    assert ports.cdp_range(ports.control_port(18789))[-1] == 18789 + ports.BLOCK_SIZE - 1
    assert ports.blocks_overlap(18789, 18789 + 110)
    assert not ports.blocks_overlap(18789, 18789 + 111)
    assert ports.blocks_overlap(19000, 18890)


def test_fixed_profile_ports() -> None:
    assert ports.profile_default_port("default") == 18789
    assert ports.profile_default_port("dev") == 19001
    assert not ports.blocks_overlap(18789, 19001)


def test_named_profile_port_is_deterministic_and_in_range() -> None:
    first, last = ports.NAMED_FIRST, ports.NAMED_FIRST + ports.NAMED_STEP * (ports.NAMED_SLOTS - 1)
    for name in ("main", "rescue", "work", "x", "a" * 64):
        port = ports.profile_default_port(name)
        assert port == ports.profile_default_port(name)
        assert first <= port <= last
        assert (port - first) % ports.NAMED_STEP == 0
        # clear of the default and dev blocks, and below the ephemeral range
        assert not ports.blocks_overlap(port, 18789) and not ports.blocks_overlap(port, 19001)
        assert port + ports.BLOCK_SIZE <= 32768


def test_named_slots_are_whole_blocks_apart() -> None:
    assert ports.NAMED_STEP >= ports.BLOCK_SIZE
    assert ports.NAMED_FIRST >= 19001 + ports.BLOCK_SIZE


def test_choose_free_base_prefers_the_profile_slot() -> None:
    assert ports.choose_free_base("rescue", []) == ports.profile_default_port("rescue")
    assert ports.choose_free_base("default", [30000]) == 18789
    assert ports.choose_free_base("dev", []) == 19001


def test_choose_free_base_moves_to_the_next_clear_slot() -> None:
    own = ports.profile_default_port("rescue")
    chosen = ports.choose_free_base("rescue", [own - 50])
    assert chosen != own
    assert abs(chosen - (own - 50)) >= ports.BLOCK_SIZE
    # the next slot, wrapping around the slot table
    slot = (own - ports.NAMED_FIRST) // ports.NAMED_STEP
    following = ports.NAMED_FIRST + ports.NAMED_STEP * ((slot + 1) % ports.NAMED_SLOTS)
    assert chosen == following


def test_choose_free_base_avoids_used_ports() -> None:
    own = ports.profile_default_port("rescue")
    chosen = ports.choose_free_base("rescue", [], taken_ports=[own + 60])
    assert chosen != own and not own <= chosen <= own + 60


def test_choose_free_base_when_everything_is_taken_returns_its_own_slot() -> None:
    every = [ports.NAMED_FIRST + ports.NAMED_STEP * i for i in range(ports.NAMED_SLOTS)]
    assert ports.choose_free_base("x", every) == ports.profile_default_port("x")


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20),
    st.lists(st.integers(min_value=1024, max_value=40000), max_size=40),
)
def test_chosen_base_block_is_clear_of_every_known_block(profile: str, taken: list[int]) -> None:
    if profile in ("default", "dev"):
        return
    chosen = ports.choose_free_base(profile, taken)
    slots = [ports.NAMED_FIRST + ports.NAMED_STEP * i for i in range(ports.NAMED_SLOTS)]
    clear = [b for b in slots if all(not ports.blocks_overlap(b, t) for t in taken)]
    if clear:
        assert all(abs(chosen - t) >= ports.BLOCK_SIZE for t in taken)
        assert all(abs(chosen - t) >= ports.MIN_BASE_SPACING for t in taken)


def test_main_and_rescue_defaults_are_at_least_20_apart() -> None:
    main = ports.choose_free_base("main", [])
    rescue = ports.choose_free_base("rescue", [main])
    assert abs(main - rescue) >= ports.MIN_BASE_SPACING
    assert not ports.blocks_overlap(main, rescue)


def test_spacing_violations() -> None:
    assert ports.spacing_violations(18789, [18800, 18809, 18769, 18770]) == [18800, 18770]
    assert ports.spacing_violations(18789, []) == []
