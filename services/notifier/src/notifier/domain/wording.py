# ruff: noqa: RUF001 - full-width punctuation is correct in Chinese text
"""How dates and checklist items read in an e-mail, in English and Traditional Chinese."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

# Hong Kong keeps no daylight saving time: a fixed offset needs no time-zone database.
HONG_KONG = timezone(timedelta(hours=8), "HKT")

ITEM_LABELS: dict[str, tuple[str, str]] = {
    "registration_form": ("Registration form", "註冊表格"),
    "photo": ("Student card photo", "學生證相片"),
    "hk_permanent_id_card": ("Hong Kong Permanent Identity Card", "香港永久性居民身份證"),
    "hk_id_card": ("Hong Kong Identity Card", "香港身份證"),
    "passport": ("Passport", "護照"),
    "document_of_identity": ("Document of Identity", "簽證身份書"),
    "exit_entry_permit": ("Exit-entry Permit", "往來港澳通行證"),
    "student_visa": ("Student visa / entry permit", "學生簽證／進入許可"),
    "dependant_visa": ("Dependant visa", "受養人簽證"),
    "deed_poll": ("Deed poll", "改名契據"),
    "supporting_document": ("Supporting document", "證明文件"),
    "parent_consent_form": ("Parent/guardian consent form", "家長／監護人同意書"),
    "tuition_receipt": ("Tuition payment receipt", "學費繳款收據"),
}


def hk_date(moment: datetime) -> date:
    """The calendar day in Hong Kong at ``moment``."""
    return moment.astimezone(HONG_KONG).date()


def when(moment: datetime) -> str:
    """A moment as students read it: Hong Kong time, day first."""
    return moment.astimezone(HONG_KONG).strftime("%d/%m/%Y %H:%M") + " (HKT)"


def day(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def item_label(key: str, english: str | None = None) -> dict[str, str]:
    """Both labels of a checklist item; the producer's English label wins when given."""
    en, zh = ITEM_LABELS.get(key, (english or key.replace("_", " ").capitalize(), ""))
    return {"en": english or en, "zh": zh or english or en}


def outstanding_lines(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Outstanding checklist items (``item``, ``label``, ``due_by``) as e-mail lines."""
    lines = []
    for item in items:
        label = item_label(str(item["item"]), item.get("label"))
        due = item.get("due_by")
        if isinstance(due, str):
            due = date.fromisoformat(due)
        lines.append({**label, "due_by": day(due) if isinstance(due, date) else ""})
    return lines
