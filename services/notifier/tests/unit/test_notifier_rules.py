"""Who gets which message, when a message may be rendered, and reminder progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from notifier.domain import messages as m
from notifier.domain.messages import House, can_render, compose, recipients
from notifier.domain.notification import dedupe_key, reminder_cause, retry_delay
from notifier.domain.progress import apply_item, apply_status, new_progress, owed, reminder_date

HOUSE = House(portal_url="https://portal.example", enquiry_email="ask@example.com")
CONTACT = {
    "surname": "CHAN",
    "given_names": "Tai Man",
    "chinese_name": "陳大文",
    "personal_email": "tm@example.com",
    "university_email": "tmchan@connect.uni.hk",
    "intake_year": 2026,
}
T0 = datetime(2026, 8, 1, tzinfo=UTC)


def test_both_means_university_first_then_personal_without_duplicates() -> None:
    assert recipients(m.REGISTRATION_COMPLETED, {"personal_email": "p@example.com"}, CONTACT) == [
        "tmchan@connect.uni.hk",
        "p@example.com",
    ]
    same = {"personal_email": "TMCHAN@connect.uni.hk"}
    assert recipients(m.CARD_READY, same, CONTACT) == ["tmchan@connect.uni.hk"]


def test_personal_only_messages_skip_the_university_address() -> None:
    assert recipients(m.REGISTRATION_WITHDRAWN, {}, CONTACT) == ["tm@example.com"]


def test_before_activation_both_means_the_personal_address() -> None:
    contact = {**CONTACT, "university_email": None}
    assert recipients(m.DOCUMENT_REJECTED, {}, contact) == ["tm@example.com"]


def test_without_a_contact_there_is_nobody_to_write_to() -> None:
    assert recipients(m.PHOTO_REJECTED, {}, None) == []
    assert not can_render(m.PHOTO_REJECTED, {"reasons": ["x"]}, None)
    assert not can_render(m.ACCOUNT_ACTIVATED, {}, {"university_email": "a@connect.u.hk"})
    # The invitation and the form carry the student's names themselves.
    assert can_render(m.INVITATION, {"surname": "CHAN"}, None)


def test_compose_takes_names_from_the_contact_and_dates_from_the_intake() -> None:
    intake = {
        "registration_deadline": datetime(2026, 8, 14, 9, 0, tzinfo=UTC),
        "term_start": "2026-09-01",
    }
    context = compose(m.PHOTO_REJECTED, {"reasons": ["blurred"]}, CONTACT, intake, HOUSE)
    assert context["surname"] == "CHAN"
    assert context["chinese_name"] == "陳大文"
    assert context["term_start"] == "01/09/2026"
    assert context["registration_deadline"] == "14/08/2026 17:00 (HKT)"
    assert context["portal_url"] == "https://portal.example"
    unknown = compose(m.PHOTO_REJECTED, {"reasons": ["blurred"]}, CONTACT, None, HOUSE)
    assert unknown["term_start"] is None


def test_compose_prefers_the_names_an_event_carries() -> None:
    facts = {"surname": "WONG", "given_names": "Mei", "chinese_name": None}
    context = compose(m.FORM_RECEIVED, facts, CONTACT, None, HOUSE)
    assert (context["surname"], context["chinese_name"]) == ("WONG", None)


def test_one_notification_per_cause_and_template() -> None:
    assert dedupe_key(reminder_cause("20261234", "2026-08-07"), "deadline_reminder") == (
        dedupe_key(reminder_cause("20261234", "2026-08-07"), "deadline_reminder")
    )
    assert reminder_cause("20261234", "2026-08-07") != reminder_cause("20261234", "2026-08-11")


def test_back_off_grows_to_a_cap() -> None:
    assert [retry_delay(n, 10).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


def _outstanding(*items: tuple[str, bool, str]) -> list[dict[str, object]]:
    return [{"item": k, "label": k.title(), "compulsory": c, "state": s} for k, c, s in items]


def test_owed_items_follow_status_changes_and_uploads() -> None:
    p = apply_status(
        new_progress("20261234"),
        intake_year=2026,
        status="in_progress",
        outstanding=_outstanding(
            ("registration_form", True, "missing"),
            ("passport", True, "missing"),
            ("parent_consent_form", False, "missing"),
        ),
        at=T0,
    )
    assert [i["item"] for i in owed(p)] == ["passport", "registration_form"]
    assert p["needs_reminder"]
    p = apply_item(p, "registration_form", "done", T0 + timedelta(hours=1))
    p = apply_item(p, "passport", "uploaded", T0 + timedelta(hours=2))
    assert owed(p) == []
    assert not p["needs_reminder"]
    p = apply_item(p, "passport", "rejected", T0 + timedelta(hours=3))
    assert [i["item"] for i in owed(p)] == ["passport"]


def test_an_older_observation_never_overwrites_a_newer_one() -> None:
    p = apply_item(new_progress("20261234"), "passport", "uploaded", T0 + timedelta(hours=2))
    # The status change recorded before the upload arrives after it.
    p = apply_status(
        p,
        intake_year=2026,
        status="in_progress",
        outstanding=_outstanding(("passport", True, "missing")),
        at=T0,
    )
    assert p["items"]["passport"]["state"] == "uploaded"
    assert p["items"]["passport"]["compulsory"] is True
    assert not p["needs_reminder"]


def test_items_left_off_a_newer_list_are_done_and_other_statuses_need_no_reminder() -> None:
    p = apply_status(
        new_progress("20261234"),
        intake_year=2026,
        status="in_progress",
        outstanding=_outstanding(("passport", True, "missing")),
        at=T0,
    )
    p = apply_status(p, intake_year=2026, status="completed", outstanding=[], at=T0 + timedelta(1))
    assert p["items"]["passport"]["state"] == "done"
    assert not p["needs_reminder"]


def test_reminder_days_count_back_from_the_deadline_in_hong_kong() -> None:
    deadline = datetime(2026, 8, 14, 9, 0, tzinfo=UTC)  # 17:00 in Hong Kong
    assert reminder_date(deadline, datetime(2026, 8, 6, 12, tzinfo=UTC)) is None
    assert reminder_date(deadline, datetime(2026, 8, 6, 16, 30, tzinfo=UTC)) == date(2026, 8, 7)
    assert reminder_date(deadline, datetime(2026, 8, 12, 0, tzinfo=UTC)) == date(2026, 8, 11)
    assert reminder_date(deadline, datetime(2026, 8, 14, 8, tzinfo=UTC)) == date(2026, 8, 13)
    assert reminder_date(deadline, deadline) is None
