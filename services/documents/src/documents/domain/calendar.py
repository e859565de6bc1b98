"""Hong Kong's general holidays, for counting the working days an item waits.

The review target is five working days (SPEC: documents). A general holiday is no
working day for the registry, so a scan uploaded before Lunar New Year is not
flagged overdue for the days the office was closed. The dates come from the
``holidays`` package's Hong Kong calendar (lunar and substitute days included):
its public and optional categories together.

The years the service works in are kept in ``hong_kong_holidays.txt`` beside this
module (a year and its dates as MMDD on each line), written from that calendar by
``python -m documents.domain.calendar`` (its output is the file): importing
the package loads every country's calendar, 9 MB more in the service, for a
few dozen dates a year. Other years are asked of the package itself. A unit test
compares every kept year with the package, so an update that moves a date fails
until the table is written again.
"""

from __future__ import annotations

import sys
from datetime import date
from functools import cache, lru_cache
from importlib.resources import files

KEPT_YEARS = range(2020, 2041)
TABLE = "hong_kong_holidays.txt"


def computed(year: int) -> frozenset[date]:
    """The year's general holidays from the ``holidays`` package: its ``public``
    category holds only the statutory holidays (the days every employer must give);
    the general holidays, when government and university offices close, add its
    ``optional`` ones (Good Friday, the day following it, Easter Monday...)."""
    import holidays

    return frozenset(holidays.country_holidays("HK", years=year, categories=("public", "optional")))


@cache
def kept() -> dict[int, str]:
    """The kept table: each year's dates as MMDD, space-separated."""
    table = files(__package__).joinpath(TABLE).read_text(encoding="ascii")
    return {
        int(year): days for year, _, days in (line.partition(" ") for line in table.splitlines())
    }


@lru_cache(maxsize=32)
def hong_kong_holidays(year: int) -> frozenset[date]:
    days = kept().get(year)
    if days is None:
        return computed(year)
    return frozenset(date(year, int(day[:2]), int(day[2:])) for day in days.split())


def holidays_between(first: date, last: date) -> frozenset[date]:
    """Every general holiday from ``first``'s year to ``last``'s."""
    found: frozenset[date] = frozenset()
    for year in range(first.year, last.year + 1):
        found |= hong_kong_holidays(year)
    return found


def table_text() -> str:
    """The kept table for ``KEPT_YEARS``, as the package computes it."""
    return "".join(
        f"{year} " + " ".join(f"{d.month:02d}{d.day:02d}" for d in sorted(computed(year))) + "\n"
        for year in KEPT_YEARS
    )


if __name__ == "__main__":
    sys.stdout.write(table_text())
