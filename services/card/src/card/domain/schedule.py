"""The collection schedule: venue, days, time windows and their capacity.

The card office gives local (Hong Kong) times; slots are kept in UTC. A slot's id
is its local date and start time, e.g. ``2026-08-20-1000``, so republishing the
schedule updates the same slots instead of creating new ones.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

HONG_KONG = timezone(timedelta(hours=8), "HKT")  # no daylight saving time


class ScheduleRefused(ValueError):
    """The schedule is inconsistent; the message says why."""


class BookingsWouldBeLost(ScheduleRefused):
    """The schedule drops a booked slot or cuts it below its bookings."""


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    capacity: int


@dataclass(frozen=True)
class Day:
    date: date
    windows: list[Window]


@dataclass(frozen=True)
class SlotPlan:
    slot_id: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    capacity: int


def slot_id_of(day: date, start: time) -> str:
    return f"{day.isoformat()}-{start.strftime('%H%M')}"


def plan_slots(venue: str, days: list[Day]) -> list[SlotPlan]:
    """Every slot of the schedule, in time order; refuses overlaps and empty windows."""
    if not days:
        raise ScheduleRefused("a schedule needs at least one day")
    seen_days: set[date] = set()
    slots: list[SlotPlan] = []
    for day in days:
        if day.date in seen_days:
            raise ScheduleRefused(f"{day.date} is listed twice")
        seen_days.add(day.date)
        if not day.windows:
            raise ScheduleRefused(f"{day.date} has no time windows")
        ordered = sorted(day.windows, key=lambda w: w.start)
        for window in ordered:
            if window.end <= window.start:
                raise ScheduleRefused(
                    f"{day.date} {window.start:%H:%M}: the window must end after it starts"
                )
            if window.capacity < 1:
                raise ScheduleRefused(f"{day.date} {window.start:%H:%M}: capacity must be >= 1")
        for earlier, later in itertools.pairwise(ordered):
            if later.start < earlier.end:
                raise ScheduleRefused(
                    f"{day.date}: windows {earlier.start:%H:%M}-{earlier.end:%H:%M} and "
                    f"{later.start:%H:%M}-{later.end:%H:%M} overlap"
                )
        for window in ordered:
            slots.append(
                SlotPlan(
                    slot_id=slot_id_of(day.date, window.start),
                    venue=venue,
                    starts_at=_utc(day.date, window.start),
                    ends_at=_utc(day.date, window.end),
                    capacity=window.capacity,
                )
            )
    return sorted(slots, key=lambda s: s.starts_at)


def check_bookings_kept(planned: list[SlotPlan], booked: dict[str, int]) -> None:
    """Refuse a schedule that drops a booked slot or cuts its capacity below its bookings."""
    capacity = {slot.slot_id: slot.capacity for slot in planned}
    problems = []
    for slot_id, count in sorted(booked.items()):
        if count == 0:
            continue
        if slot_id not in capacity:
            problems.append(f"slot {slot_id} has {count} booking(s) and cannot be removed")
        elif capacity[slot_id] < count:
            problems.append(
                f"slot {slot_id} has {count} booking(s): capacity {capacity[slot_id]} is too small"
            )
    if problems:
        raise BookingsWouldBeLost("; ".join(problems))


def _utc(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=HONG_KONG).astimezone(UTC)
