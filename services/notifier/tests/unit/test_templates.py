"""Message templates render in both languages with every field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from jinja2 import UndefinedError
from notifier.domain.notification import dedupe_key, new_notification, retry_delay
from notifier.domain.templates import render
from notifier.handlers.delivery import to_email

CONTEXT = {
    "surname": "Chan",
    "given_names": "Tai Man",
    "chinese_name": "陳大文",
    "activation_url": "http://portal/activate?token=abc",
    "expires_at": "15/07/2026 09:00 UTC",
    "registration_deadline": "14/08/2026 17:00 UTC",
    "term_start": "01/09/2026",
}


def test_invitation_is_bilingual_with_every_field() -> None:
    rendered = render("invitation", CONTEXT)
    assert rendered.subject.startswith("Invitation to Program Registration")
    for body in (rendered.text, rendered.html):
        for value in CONTEXT.values():
            assert value in body
        assert "Registration deadline" in body
        assert "註冊截止日期" in body


def test_html_is_escaped() -> None:
    rendered = render("invitation", {**CONTEXT, "surname": "<script>x</script>"})
    assert "<script>x</script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<script>x</script>" in rendered.text


def test_missing_field_is_an_error_not_a_blank() -> None:
    context = dict(CONTEXT)
    del context["activation_url"]
    with pytest.raises(UndefinedError):
        render("invitation", context)


def test_without_deadline_the_student_is_pointed_to_the_system() -> None:
    rendered = render("invitation", {**CONTEXT, "registration_deadline": None})
    assert "shown in the registration system" in rendered.text


def test_one_notification_per_event_template_and_recipients() -> None:
    cause = uuid.uuid4()
    assert dedupe_key(cause, "invitation", ["A@x.hk", "b@x.hk"]) == dedupe_key(
        cause, "invitation", ["b@x.hk", "a@x.hk"]
    )
    assert dedupe_key(cause, "invitation", ["a@x.hk"]) != dedupe_key(
        uuid.uuid4(), "invitation", ["a@x.hk"]
    )


def test_email_has_both_parts_and_a_stable_message_id() -> None:
    doc = new_notification(
        template="invitation",
        student_no="20261234",
        recipients=["a@x.hk"],
        cause_event_id=uuid.uuid4(),
        context=CONTEXT,
        at=datetime.now(UTC),
    )
    first, second = to_email(doc, "Registry <r@x.hk>"), to_email(doc, "Registry <r@x.hk>")
    assert first["Message-ID"] == second["Message-ID"]
    assert doc["_id"] in first["Message-ID"]
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]


def test_back_off_grows_to_a_cap() -> None:
    assert [retry_delay(n, 10).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]
