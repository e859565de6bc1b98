"""Review rules: what may be verified, states, and the working-day age of an item."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from documents.domain.calendar import holidays_between
from documents.domain.review import (
    ReviewRefused,
    check_verification,
    ensure_reviewable,
    local_status_cutoff,
    queue_age,
    working_days_between,
)
from opr_shared.events.catalogue import DocumentType


def test_the_cutoff_is_the_first_of_september_of_the_intake_year() -> None:
    assert local_status_cutoff(2027) == date(2027, 9, 1)


@pytest.mark.parametrize("expiry", [date(2027, 9, 1), date(2027, 8, 31), date(2025, 1, 1)])
def test_an_identity_document_expiring_on_or_before_the_cutoff_cannot_be_verified(
    expiry: date,
) -> None:
    with pytest.raises(ReviewRefused) as caught:
        check_verification(DocumentType.HK_ID_CARD, expiry, 2027)
    assert caught.value.status == 422
    assert "2027-09-01" in caught.value.reason


def test_an_identity_document_expiring_after_the_cutoff_is_verified() -> None:
    check_verification(DocumentType.PASSPORT, date(2027, 9, 2), 2027)
    check_verification(DocumentType.HK_ID_CARD, None, 2027)  # the card has no printed expiry


def test_a_passport_needs_its_expiry_date() -> None:
    with pytest.raises(ReviewRefused) as caught:
        check_verification(DocumentType.PASSPORT, None, 2027)
    assert caught.value.status == 422


def test_documents_that_establish_no_local_status_are_not_held_to_the_cutoff() -> None:
    check_verification(DocumentType.STUDENT_VISA, date(2027, 8, 1), 2027)
    check_verification(DocumentType.TUITION_RECEIPT, None, 2027)


def test_only_a_pending_version_is_reviewed() -> None:
    ensure_reviewable("pending", what="document")
    with pytest.raises(ReviewRefused, match="newer version") as superseded:
        ensure_reviewable("superseded", what="document")
    with pytest.raises(ReviewRefused, match="already reviewed") as verified:
        ensure_reviewable("verified", what="document")
    assert superseded.value.status == verified.value.status == 409


def test_working_days_skip_weekends_and_holidays() -> None:
    monday = date(2026, 8, 3)
    assert working_days_between(monday, monday) == 0
    assert working_days_between(monday, date(2026, 8, 7)) == 4  # Tue..Fri
    assert working_days_between(monday, date(2026, 8, 9)) == 4  # the weekend adds nothing
    assert working_days_between(monday, date(2026, 8, 10)) == 5
    assert working_days_between(monday, date(2026, 8, 31)) == 20
    assert working_days_between(date(2026, 8, 7), date(2026, 8, 10)) == 1  # Fri → Mon
    assert working_days_between(monday, date(2026, 8, 10), {date(2026, 8, 5)}) == 4
    assert working_days_between(monday, date(2026, 8, 31), {date(2026, 8, 15)}) == 20  # a Sat


def test_working_days_agree_with_counting_one_by_one() -> None:
    holidays = {date(2026, 9, 26), date(2026, 10, 1), date(2026, 10, 19)}
    start = date(2026, 9, 2)
    for span in range(0, 60):
        end = date.fromordinal(start.toordinal() + span)
        slow = sum(
            1
            for n in range(start.toordinal() + 1, end.toordinal() + 1)
            if date.fromordinal(n).weekday() < 5 and date.fromordinal(n) not in holidays
        )
        assert working_days_between(start, end, holidays) == slow, end


def test_an_item_is_overdue_after_five_working_days_in_hong_kong_time() -> None:
    # Monday 3 Aug 2026, 09:00 in Hong Kong.
    submitted = datetime(2026, 8, 3, 1, 0, tzinfo=UTC)
    on_time = queue_age(submitted, datetime(2026, 8, 10, 9, 0, tzinfo=UTC))  # next Monday
    late = queue_age(submitted, datetime(2026, 8, 11, 1, 0, tzinfo=UTC))  # next Tuesday
    assert (on_time.working_days, on_time.overdue) == (5, False)
    assert (late.working_days, late.overdue) == (6, True)
    assert late.hours == pytest.approx(192.0)
    # 23:30 UTC on Monday is already Tuesday in Hong Kong.
    assert queue_age(submitted, datetime(2026, 8, 3, 16, 30, tzinfo=UTC)).working_days == 1


def test_hong_kong_general_holidays_are_no_working_days() -> None:
    lunar_new_year = holidays_between(date(2027, 1, 1), date(2027, 12, 31))
    # The 2027 Lunar New Year holidays fall on Saturday 6, Monday 8 and Tuesday 9 February.
    assert {date(2027, 2, 6), date(2027, 2, 8), date(2027, 2, 9)} <= lunar_new_year
    assert date(2027, 2, 10) not in lunar_new_year
    # Christmas Day 2027 is a Saturday: the Monday after is the holiday.
    assert date(2027, 12, 27) in lunar_new_year
    # Uploaded on the Friday before; a week later only Wednesday to Friday counted.
    submitted = datetime(2027, 2, 5, 2, 0, tzinfo=UTC)
    week_later = datetime(2027, 2, 12, 2, 0, tzinfo=UTC)
    assert queue_age(submitted, week_later).working_days == 5
    assert queue_age(submitted, week_later, lunar_new_year).working_days == 3
    # Not overdue on Tuesday 16th with the holidays; two days over without them.
    tuesday = datetime(2027, 2, 16, 2, 0, tzinfo=UTC)
    assert queue_age(submitted, tuesday, lunar_new_year).overdue is False
    assert queue_age(submitted, tuesday).working_days == 7


def test_holidays_of_every_year_in_the_span() -> None:
    span = holidays_between(date(2026, 12, 1), date(2027, 1, 31))
    assert date(2026, 12, 25) in span
    assert date(2027, 1, 1) in span
    assert all(2026 <= d.year <= 2027 for d in span)
