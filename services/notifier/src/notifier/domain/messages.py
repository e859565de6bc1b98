"""Which milestone gets which message, to whom, and what it says.

A milestone becomes a notification in two steps. When the event arrives, the
handler keeps its *facts* (display-ready values from the event) and the
addresses it carries. The message is rendered once the student's contact is
known: names for the greeting, the addresses the event lacks, the intake's
dates. Until then the notification waits as ``awaiting_contact``; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from notifier.domain.wording import day, when


class Audience(StrEnum):
    """Where a message goes."""

    PERSONAL = "personal"  # the personal address only
    BOTH = "both"  # the university address (once activated) and the personal one


@dataclass(frozen=True)
class Kind:
    """One kind of message: its template, its audience, whether the event names the student."""

    template: str
    audience: Audience
    event_has_names: bool = False


INVITATION = Kind("invitation", Audience.PERSONAL, event_has_names=True)
ACCOUNT_ACTIVATED = Kind("account_activated", Audience.BOTH)
FORM_RECEIVED = Kind("form_received", Audience.BOTH, event_has_names=True)
DOCUMENT_REJECTED = Kind("document_rejected", Audience.BOTH)
PHOTO_REJECTED = Kind("photo_rejected", Audience.BOTH)
REGISTRATION_COMPLETED = Kind("registration_completed", Audience.BOTH)
REGISTRATION_INCOMPLETE = Kind("registration_incomplete", Audience.BOTH)
REGISTRATION_WITHDRAWN = Kind("registration_withdrawn", Audience.PERSONAL)
CARD_READY = Kind("card_ready", Audience.BOTH)
DEADLINE_REMINDER = Kind("deadline_reminder", Audience.BOTH)

KINDS: dict[str, Kind] = {
    k.template: k
    for k in (
        INVITATION,
        ACCOUNT_ACTIVATED,
        FORM_RECEIVED,
        DOCUMENT_REJECTED,
        PHOTO_REJECTED,
        REGISTRATION_COMPLETED,
        REGISTRATION_INCOMPLETE,
        REGISTRATION_WITHDRAWN,
        CARD_READY,
        DEADLINE_REMINDER,
    )
}

NAME_FIELDS = ("surname", "given_names", "chinese_name")


@dataclass(frozen=True)
class House:
    """What every message may point to: the portal and the registry's enquiry address."""

    portal_url: str
    enquiry_email: str


def contact_ready(contact: dict[str, Any] | None) -> bool:
    """A contact can be written to once it has a name and a personal address."""
    return bool(contact and contact.get("surname") and contact.get("personal_email"))


def recipients(
    kind: Kind, given: Mapping[str, str | None], contact: dict[str, Any] | None
) -> list[str]:
    """The addresses of a message: what the event gave, completed from the contact."""
    contact = contact or {}
    personal = given.get("personal_email") or contact.get("personal_email")
    found: list[str | None] = [personal]
    if kind.audience is Audience.BOTH:
        found.insert(0, given.get("university_email") or contact.get("university_email"))
    unique: list[str] = []
    for address in found:
        if address and address.lower() not in {u.lower() for u in unique}:
            unique.append(address)
    return unique


def can_render(kind: Kind, facts: dict[str, Any], contact: dict[str, Any] | None) -> bool:
    has_names = kind.event_has_names and bool(facts.get("surname"))
    return has_names or contact_ready(contact)


#: The messages that show the intake's dates (the rest never look the intake up).
SHOW_INTAKE_DATES = frozenset({DOCUMENT_REJECTED, PHOTO_REJECTED})


def compose(
    kind: Kind,
    facts: dict[str, Any],
    contact: dict[str, Any] | None,
    intake: dict[str, Any] | None,
    house: House,
) -> dict[str, Any]:
    """The template context: the event's facts, the greeting, the intake's dates."""
    contact = contact or {}
    names = {f: facts.get(f) if kind.event_has_names else contact.get(f) for f in NAME_FIELDS}
    context: dict[str, Any] = {
        **names,
        "portal_url": house.portal_url,
        "enquiry_email": house.enquiry_email,
        **{k: v for k, v in facts.items() if k not in NAME_FIELDS},
    }
    if kind in SHOW_INTAKE_DATES:
        intake = intake or {}
        deadline = intake.get("registration_deadline")
        term_start = intake.get("term_start")
        context.setdefault("registration_deadline", when(deadline) if deadline else None)
        context.setdefault(
            "term_start", day(date.fromisoformat(term_start)) if term_start else None
        )
    return context
