"""Hong Kong's general holidays, for counting the working days an item waits.

The review target is five working days (SPEC: documents). A general holiday is no
working day for the registry, so a scan uploaded before Lunar New Year is not
flagged overdue for the days the office was closed. The dates come from the
``holidays`` package's Hong Kong calendar (lunar and substitute days included).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays


@lru_cache(maxsize=32)
def hong_kong_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("HK", years=year))


def holidays_between(first: date, last: date) -> frozenset[date]:
    """Every general holiday from ``first``'s year to ``last``'s."""
    found: frozenset[date] = frozenset()
    for year in range(first.year, last.year + 1):
        found |= hong_kong_holidays(year)
    return found
