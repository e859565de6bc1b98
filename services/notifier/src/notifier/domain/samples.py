# ruff: noqa: RUF001 - full-width punctuation is correct in Chinese text
"""Sample data for every template: the staff preview and the template tests use it."""

from __future__ import annotations

from typing import Any

_NAMES = {"surname": "CHAN", "given_names": "Tai Man Peter", "chinese_name": "陳大文"}
_HOUSE = {
    "portal_url": "https://reg.university.example/online-reg",
    "enquiry_email": "progreg@university.example",
}
_CONSENT = {
    "en": "Parent/guardian consent form",
    "zh": "家長／監護人同意書",
    "due_by": "01/09/2026",
}
_PASSPORT = {"en": "Passport", "zh": "護照", "due_by": ""}

SAMPLES: dict[str, dict[str, Any]] = {
    "invitation": {
        "activation_url": "https://reg.university.example/activate?token=SAMPLE-TOKEN",
        "expires_at": "15/08/2026 23:59 (HKT)",
        "registration_deadline": "14/08/2026 17:00 (HKT)",
        "term_start": "01/09/2026",
    },
    "account_activated": {
        "university_email": "tmpchan@connect.university.example",
        "activated_at": "02/08/2026 11:15 (HKT)",
    },
    "form_received": {
        "submitted_at": "03/08/2026 14:30 (HKT)",
        "required_documents": [
            {"en": "Hong Kong Permanent Identity Card", "zh": "香港永久性居民身份證"},
            {"en": "Parent/guardian consent form", "zh": "家長／監護人同意書"},
        ],
    },
    "document_rejected": {
        "document_en": "Passport",
        "document_zh": "護照",
        "reason": "The passport expires before 1 September 2026.",
        "rejected_at": "05/08/2026 09:25 (HKT)",
        "registration_deadline": "14/08/2026 17:00 (HKT)",
    },
    "photo_rejected": {
        "reasons": [
            "The face must be centred and fill most of the frame.",
            "The photo is blurred.",
        ],
        "rejected_at": "04/08/2026 10:05 (HKT)",
        "term_start": "01/09/2026",
    },
    "registration_completed": {
        "completed_at": "06/08/2026 10:00 (HKT)",
        "outstanding": [_CONSENT],
    },
    "registration_incomplete": {
        "outstanding": [_CONSENT],
        "follow_up_by": "01/09/2026",
    },
    "registration_withdrawn": {
        "missing": [{"en": "Registration form", "zh": "註冊表格", "due_by": ""}, _PASSPORT],
        "withdrawn_at": "14/08/2026 17:00 (HKT)",
    },
    "card_ready": {
        "venue": "Student Card Office, Room 1101, Academic Building",
        "collection_date": "20/08/2026",
        "window": "10:00 to 11:00 (HKT)",
        "bring": ["Hong Kong Identity Card or passport", "This e-mail"],
    },
    "deadline_reminder": {
        "registration_deadline": "14/08/2026 17:00 (HKT)",
        "missing": [{"en": "Registration form", "zh": "註冊表格", "due_by": ""}, _PASSPORT],
    },
}


def sample_context(template: str) -> dict[str, Any]:
    """Every field of ``template`` filled with realistic sample values."""
    return {**_NAMES, **_HOUSE, **SAMPLES[template]}
