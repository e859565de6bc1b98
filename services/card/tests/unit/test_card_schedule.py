"""The collection schedule: local times to UTC slots, consistency, kept bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from card.domain.schedule import (
    BookingsWouldBeLost,
    Day,
    ScheduleRefused,
    Window,
    check_bookings_kept,
    plan_slots,
)

VENUE = "Student Card Office"


def test_windows_become_utc_slots_named_by_local_date_and_start() -> None:
    slots = plan_slots(
        VENUE,
        [
            Day(date(2026, 8, 21), [Window(time(9), time(10), 5)]),
            Day(date(2026, 8, 20), [Window(time(14), time(15), 3), Window(time(10), time(11), 2)]),
        ],
    )
    assert [s.slot_id for s in slots] == ["2026-08-20-1000", "2026-08-20-1400", "2026-08-21-0900"]
    assert slots[0].starts_at == datetime(2026, 8, 20, 2, 0, tzinfo=UTC)
    assert slots[0].ends_at == datetime(2026, 8, 20, 3, 0, tzinfo=UTC)
    assert [s.capacity for s in slots] == [2, 3, 5]


@pytest.mark.parametrize(
    ("days", "reason"),
    [
        ([], "at least one day"),
        ([Day(date(2026, 8, 20), [])], "no time windows"),
        ([Day(date(2026, 8, 20), [Window(time(11), time(10), 1)])], "end after it starts"),
        ([Day(date(2026, 8, 20), [Window(time(10), time(11), 0)])], "capacity"),
        (
            [
                Day(
                    date(2026, 8, 20),
                    [Window(time(10), time(12), 1), Window(time(11), time(13), 1)],
                )
            ],
            "overlap",
        ),
        (
            [
                Day(date(2026, 8, 20), [Window(time(10), time(11), 1)]),
                Day(date(2026, 8, 20), [Window(time(12), time(13), 1)]),
            ],
            "listed twice",
        ),
    ],
)
def test_inconsistent_schedules_are_refused_with_a_reason(days: list[Day], reason: str) -> None:
    with pytest.raises(ScheduleRefused, match=reason):
        plan_slots(VENUE, days)


def test_a_new_schedule_may_not_drop_bookings() -> None:
    planned = plan_slots(VENUE, [Day(date(2026, 8, 20), [Window(time(10), time(11), 2)])])
    check_bookings_kept(planned, {"2026-08-20-1000": 2, "2026-08-19-1000": 0})
    with pytest.raises(BookingsWouldBeLost, match="capacity 2 is too small"):
        check_bookings_kept(planned, {"2026-08-20-1000": 3})
    with pytest.raises(BookingsWouldBeLost, match="2026-08-19-1000 has 1 booking"):
        check_bookings_kept(planned, {"2026-08-19-1000": 1})
