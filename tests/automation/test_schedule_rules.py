"""Pure rules: schedule parsing, cron validation, the HEARTBEAT_OK contract, active hours,
job input normalization."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from tests.automation.cron_helpers import ms

from moltbot.automation.heartbeat_rules import effectively_empty, strip_token, within_active_hours
from moltbot.automation.jobs import JobInput, JobPatch, apply_patch, create_job, normalize_input
from moltbot.automation.schedule import (
    ScheduleError,
    check_cron,
    cron_next_ms,
    every_next_ms,
    parse_at_ms,
    parse_duration_ms,
)
from moltbot.errors import UsageError


def test_durations_and_one_shot_times() -> None:
    assert parse_duration_ms("10m") == 600_000
    assert parse_duration_ms("1.5h") == 5_400_000
    assert parse_duration_ms("30", default_unit="m") == 1_800_000
    assert parse_duration_ms("0m") is None and parse_duration_ms("soon") is None
    assert parse_at_ms("2026-01-01T10:00", 0) == ms("2026-01-01 10:00")  # zone-less is UTC
    assert parse_at_ms("2026-01-01T10:00+01:00", 0) == ms("2026-01-01 09:00")
    assert parse_at_ms("+20m", 1_000) == 1_201_000 and parse_at_ms("20m", 1_000) == 1_201_000
    assert parse_at_ms("1767261600000", 0) == 1767261600000
    assert parse_at_ms("next tuesday", 0) is None


def test_cron_validation_names_the_problem() -> None:
    check_cron("0 7 * * 1-5", "Europe/Berlin")
    check_cron("*/10 0 7 * * *")  # six fields: seconds first
    with pytest.raises(ScheduleError, match="expected 5 fields"):
        check_cron("0 7 * *")
    with pytest.raises(ScheduleError, match="invalid cron"):
        check_cron("61 * * * *")
    for zone in ("Mars/Olympus", "../../etc/passwd", "Europe/"):
        with pytest.raises(ScheduleError, match="unknown time zone"):
            check_cron("0 7 * * *", zone)


def test_cron_next_follows_the_zones_wall_clock() -> None:
    berlin = "Europe/Berlin"
    now = ms("2026-03-28 12:00", berlin)
    first = cron_next_ms("0 7 * * *", berlin, now)
    second = cron_next_ms("0 7 * * *", berlin, first)
    assert first == ms("2026-03-29 07:00", berlin)  # the DST day: 07:00 CEST
    assert second - first == 24 * 3_600_000
    assert cron_next_ms("0 7 * * *", berlin, ms("2026-03-27 07:00", berlin)) == ms(
        "2026-03-28 07:00", berlin
    )


def test_every_grid_is_fixed() -> None:
    assert every_next_ms(1_000, 500, 0) == 500
    assert every_next_ms(1_000, 500, 500) == 1_500
    assert every_next_ms(1_000, 500, 2_499) == 2_500


def test_heartbeat_ok_contract() -> None:
    assert strip_token("HEARTBEAT_OK", 300) == (True, "")
    assert strip_token("**HEARTBEAT_OK**", 300)[0] is True
    assert strip_token("All quiet. HEARTBEAT_OK", 300) == (True, "All quiet.")
    assert strip_token("HEARTBEAT_OK.", 0) == (True, ".")  # punctuation alone is no reply
    long = "x" * 301
    assert strip_token(f"HEARTBEAT_OK {long}", 300) == (False, long)
    assert strip_token("Your flight is delayed by 2 hours.", 300) == (
        False,
        "Your flight is delayed by 2 hours.",
    )
    assert strip_token("see HEARTBEAT_OK docs inside", 300)[0] is False  # not at an edge


def test_empty_checklists() -> None:
    template = "# Heartbeat\n\n<!-- A checklist.\n- check the inbox\n-->\n"
    assert effectively_empty(template)
    assert effectively_empty("## Tasks\n- [ ]\n* \n")
    assert not effectively_empty("# Tasks\n- check the inbox\n")
    assert not effectively_empty(None)  # a missing file is not empty


def test_active_hours_wrap_midnight_in_the_given_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    assert within_active_hours("08:00", "22:00", ms("2026-01-10 09:00", "Asia/Tokyo"), tokyo)
    assert not within_active_hours("08:00", "22:00", ms("2026-01-10 23:00", "Asia/Tokyo"), tokyo)
    assert within_active_hours("22:00", "06:00", ms("2026-01-10 23:30", "Asia/Tokyo"), tokyo)
    assert not within_active_hours("22:00", "06:00", ms("2026-01-10 12:00", "Asia/Tokyo"), tokyo)
    assert within_active_hours("00:00", "24:00", ms("2026-01-10 23:59", "Asia/Tokyo"), tokyo)


def test_inputs_are_normalized_like_upstream() -> None:
    raw = normalize_input(
        {
            "job": {
                "name": "n",
                "agentId": "  ",
                "enabled": "false",
                "schedule": {"at": "2026-01-01T10:00Z"},
                "payload": {"kind": "agentTurn", "message": "m", "provider": "telegram"},
            }
        },
        defaults=True,
        now_ms=0,
    )
    data = JobInput.model_validate(raw)
    assert data.schedule.kind == "at" and data.schedule.atMs == ms("2026-01-01 10:00")
    assert data.sessionTarget == "isolated" and data.wakeMode == "next-heartbeat"
    assert data.enabled is False and data.agentId is None
    assert data.payload.channel == "telegram"


def test_main_and_isolated_targets_must_match_their_payload() -> None:
    bad = JobInput.model_validate(
        {
            "name": "x",
            "schedule": {"kind": "every", "everyMs": 1000},
            "sessionTarget": "main",
            "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "hi"},
        }
    )
    with pytest.raises(UsageError, match="systemEvent"):
        create_job(bad, 0)


def test_patch_merges_payload_fields_and_switching_kind_needs_the_text() -> None:
    data = JobInput.model_validate(
        {
            "name": "x",
            "schedule": {"kind": "every", "everyMs": 1000},
            "sessionTarget": "isolated",
            "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "hi", "to": "42", "channel": "telegram"},
        }
    )
    job = create_job(data, 0)
    patched = apply_patch(
        job, JobPatch.model_validate({"payload": {"kind": "agentTurn", "message": "bye"}}), 5
    )
    assert patched.payload.message == "bye" and patched.payload.to == "42"
    assert patched.updatedAtMs == 5
    with pytest.raises(UsageError, match="needs text"):
        apply_patch(job, JobPatch.model_validate({"payload": {"kind": "systemEvent"}}), 5)
    cleared = apply_patch(job, JobPatch.model_validate({"agentId": None}), 5)
    assert cleared.agentId is None
