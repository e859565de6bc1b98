"""The kept table of Hong Kong's general holidays: the package's dates, without the
package in the running service."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

from documents.domain import calendar


def test_the_kept_table_is_what_the_holidays_package_computes() -> None:
    # Fails when an update of the package moves a date: write the table again with
    # `python -m documents.domain.calendar` prints the table the file must hold.
    assert (Path(calendar.__file__).parent / calendar.TABLE).read_text() == calendar.table_text()
    for year in calendar.KEPT_YEARS:
        assert calendar.hong_kong_holidays(year) == calendar.computed(year), year


def test_general_holidays_include_the_days_that_are_not_statutory() -> None:
    easter = calendar.holidays_between(date(2027, 3, 1), date(2027, 4, 30))
    # Good Friday, the day following it and Easter Monday close the registry.
    assert {date(2027, 3, 26), date(2027, 3, 27), date(2027, 3, 29)} <= easter
    assert date(2027, 3, 30) not in easter


def test_a_year_beyond_the_table_is_asked_of_the_package() -> None:
    year = calendar.KEPT_YEARS[-1] + 10
    assert year not in calendar.kept()
    found = calendar.hong_kong_holidays(year)
    assert date(year, 1, 1) in found
    assert found == calendar.computed(year)


def test_kept_years_do_not_load_the_package() -> None:
    probe = (
        "import sys; from datetime import date; "
        "from documents.domain.calendar import holidays_between; "
        "assert date(2026, 12, 25) in holidays_between(date(2025, 1, 1), date(2026, 12, 31)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'holidays'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
