"""Student accounts: activation with an invitation token, and the university address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def university_email(student_no: str, domain: str) -> str:
    return f"{student_no}@connect.{domain}"


class ActivationRefused(Exception):
    """The activation cannot go ahead; ``status`` is the HTTP status, the message the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Activation:
    student_no: str
    university_email: str
    personal_email: str
    activated_at: datetime


def check_activation(student: dict[str, Any] | None, now: datetime, domain: str) -> Activation:
    """The activation a student record found by its token hash allows, or why not.

    A token is single use (``used_at``), expires (``expires_at``) and is replaced
    by a re-invitation (the old hash is no longer on any record, so it finds none).
    """
    if student is None:
        raise ActivationRefused(
            400,
            "this activation link is not valid; it may have been replaced by a newer "
            "invitation: use the link in the latest invitation e-mail",
        )
    invitation = student.get("invitation") or {}
    if invitation.get("used_at") is not None or student.get("status") == "active":
        raise ActivationRefused(409, "this activation link has already been used")
    expires_at = invitation.get("expires_at")
    if not isinstance(expires_at, datetime) or now >= expires_at:
        raise ActivationRefused(
            410, "this activation link has expired; ask the Academic Registry for a new invitation"
        )
    return Activation(
        student_no=str(student["_id"]),
        university_email=university_email(str(student["_id"]), domain),
        personal_email=str(student["personal_email"]),
        activated_at=now,
    )


def personal_identifiers(student: dict[str, Any]) -> list[str]:
    """What a password must not contain (see ``passwords.password_problems``)."""
    keys = ("_id", "jupas_app_no", "surname", "given_names", "personal_email")
    return [str(student[k]) for k in keys if student.get(k)]
