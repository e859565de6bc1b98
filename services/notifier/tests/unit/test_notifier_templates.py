# ruff: noqa: RUF001 - full-width punctuation is correct in Chinese text
"""Every template renders in both languages, in both bodies, with every field."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtplib.email import flatten_message
from jinja2 import UndefinedError
from notifier.domain.notification import new_notification, rendered
from notifier.domain.samples import SAMPLES, sample_context
from notifier.domain.templates import SUBJECTS, TEMPLATES, UnknownTemplate, render
from notifier.handlers.delivery import redact, to_email
from notifier.smtp import data_payload

CJK = re.compile(r"[\u4e00-\u9fff]")


def _values(value: Any) -> list[str]:
    """Every leaf string of a sample value (lists and item dicts included)."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [leaf for v in value for leaf in _values(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _values(v)]
    return []


def test_every_milestone_has_a_template() -> None:
    assert (
        set(TEMPLATES)
        == set(SAMPLES)
        == {
            "invitation",
            "account_activated",
            "form_received",
            "document_rejected",
            "photo_rejected",
            "registration_completed",
            "registration_incomplete",
            "registration_withdrawn",
            "card_ready",
            "deadline_reminder",
        }
    )


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_is_bilingual_with_every_field(template: str) -> None:
    context = sample_context(template)
    message = render(template, context)
    assert message.subject == SUBJECTS[template]
    assert CJK.search(message.subject)
    assert re.search(r"[A-Za-z]{4}", message.subject)
    for body in (message.text, message.html):
        assert "Dear Tai Man Peter CHAN," in body
        assert "陳大文 同學：" in body
        assert "Academic Registry" in body
        assert "教務處" in body
        for leaf in _values(context):
            assert leaf in body, f"{template}: {leaf!r} missing"
        # English first, then Traditional Chinese.
        assert body.index("Dear") < body.index("同學")
    assert message.html.lstrip().startswith("<!doctype html>")
    assert "<" not in message.text.replace("<address>", "")


def test_official_titles() -> None:
    assert SUBJECTS["invitation"].startswith("Invitation to Program Registration")
    assert SUBJECTS["registration_completed"].startswith(
        "Acknowledgement of Program Registration to the University"
    )
    assert SUBJECTS["registration_incomplete"].startswith(
        "Follow-up Action: Program Registration to the University"
    )


def test_html_is_escaped_text_is_not() -> None:
    context = {**sample_context("document_rejected"), "reason": "<script>x</script>"}
    message = render("document_rejected", context)
    assert "<script>x</script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "<script>x</script>" in message.text


def test_missing_field_is_an_error_not_a_blank() -> None:
    context = sample_context("invitation")
    del context["activation_url"]
    with pytest.raises(UndefinedError):
        render("invitation", context)


def test_unknown_template() -> None:
    with pytest.raises(UnknownTemplate):
        render("nope", {})


def test_without_chinese_name_the_chinese_greeting_uses_the_english_one() -> None:
    message = render("card_ready", {**sample_context("card_ready"), "chinese_name": None})
    assert "Tai Man Peter CHAN 同學：" in message.text


def test_optional_dates_fall_back_to_words() -> None:
    invitation = render(
        "invitation", {**sample_context("invitation"), "registration_deadline": None}
    )
    assert "shown in the registration system" in invitation.text
    photo = render("photo_rejected", {**sample_context("photo_rejected"), "term_start": None})
    assert "no later than the term start." in photo.text
    done = render(
        "registration_completed", {**sample_context("registration_completed"), "outstanding": []}
    )
    assert "Nothing is outstanding." in done.text


def _sendable() -> dict[str, Any]:
    doc = new_notification(
        template="registration_completed",
        student_no="20261234",
        cause_event_id=uuid.uuid4(),
        facts={},
        given_addresses={},
        at=datetime.now(UTC),
    )
    message = render("registration_completed", sample_context("registration_completed"))
    doc.update(rendered(doc, message, ["u@connect.x.hk", "p@example.com"], datetime.now(UTC)))
    return doc


def test_email_has_both_parts_a_stable_message_id_and_travels_as_7bit() -> None:
    doc = _sendable()
    first, second = to_email(doc, "Registry <r@x.hk>"), to_email(doc, "Registry <r@x.hk>")
    assert first == second
    assert max(first) < 128  # no 8-bit data: any relay takes it
    parsed = message_from_bytes(first, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == f"<{doc['_id']}@notifier.registration>"
    assert parsed["X-Notification-Id"] == doc["_id"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert str(parsed["Subject"]) == SUBJECTS["registration_completed"]
    assert parsed["To"].addresses[0].addr_spec == "u@connect.x.hk"
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert "家長／監護人同意書" in body.get_content()
    assert not parsed.defects
    assert all(not part.defects for part in parsed.walk())


@pytest.mark.parametrize("template", sorted(SAMPLES))
def test_every_message_reads_back_as_the_email_package_would_have_written_it(
    template: str,
) -> None:
    doc = _sendable()
    message = render(template, sample_context(template))
    doc.update(rendered(doc, message, ["u@connect.x.hk", "p@example.com"], datetime.now(UTC)))
    sender = '"Academic Registry, 註冊處" <registry@x.hk>'
    raw = to_email(doc, sender)
    assert max(raw) < 128
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    ours = message_from_bytes(raw, policy=policy.default)
    built = EmailMessage()
    built["From"] = sender
    built["To"] = ", ".join(doc["recipients"])
    built["Subject"] = doc["subject"]
    built.set_content(doc["text"], cte="quoted-printable")
    built.add_alternative(doc["html"], subtype="html", cte="quoted-printable")
    theirs = message_from_bytes(
        flatten_message(built, utf8=False, cte_type="7bit"), policy=policy.default
    )
    assert isinstance(ours, EmailMessage)
    assert isinstance(theirs, EmailMessage)
    assert str(ours["Subject"]) == message.subject
    assert ours["From"].addresses == theirs["From"].addresses
    assert ours["To"].addresses == theirs["To"].addresses
    for kind in ("plain", "html"):
        mine, reference = ours.get_body((kind,)), theirs.get_body((kind,))
        assert mine is not None
        assert reference is not None
        assert mine.get_content() == reference.get_content()
        assert mine.get_content_charset() == "utf-8"
    assert all(not part.defects for part in ours.walk())


def test_a_header_value_with_a_line_break_is_refused() -> None:
    doc = {**_sendable(), "subject": "Hello\r\nBcc: someone@example.com"}
    with pytest.raises(ValueError, match="line break"):
        to_email(doc, "Registry <r@x.hk>")


def test_a_notification_needs_a_recipient() -> None:
    doc = _sendable()
    with pytest.raises(ValueError, match="recipient"):
        rendered(doc, render("card_ready", sample_context("card_ready")), [], datetime.now(UTC))


def test_data_payload_stuffs_leading_dots_and_ends_with_a_line_break() -> None:
    assert data_payload(b"a\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n"


def test_errors_lose_their_addresses() -> None:
    error = "SMTPRecipientRefused: (550, 'no such user', 'p@example.com'); <u@connect.x.hk>"
    assert "@" not in redact(error)
    assert "550" in redact(error)
