"""The checklist: which steps a student must complete, derived from the form and
the record, and where each stands given the facts received so far.

Item keys (``OutstandingItem.item``) and the documents that satisfy them:

=====================  ==========================================  ===========
key                    satisfied by                                 kind
=====================  ==========================================  ===========
university_account     AccountActivated                             compulsory
registration_form      the submitted form                           compulsory
identity_documents     (residency not yet given: placeholder)       compulsory
hk_permanent_id_card   hk_permanent_id_card                         compulsory
hk_id_card             hk_id_card                                   compulsory
travel_document        passport / document_of_identity /            compulsory
                       exit_entry_permit
dependant_visa         dependant_visa                               supplementary
student_visa           student_visa                                 supplementary
supporting_document    deed_poll / supporting_document              compulsory
tuition_receipt        tuition_receipt                              compulsory
parent_consent_form    parent_consent_form                          supplementary
photo                  PhotoApproved                                supplementary
=====================  ==========================================  ===========

Compulsory items are due by the registration deadline; supplementary ones by the
term start (consent forms and photo re-submission per the registry's FAQ; visas
are often issued close to term, so they follow the term start too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from opr_shared.events.catalogue import (
    AdmissionRoute,
    DocumentType,
    OutstandingItem,
    OutstandingState,
    Residency,
    StudyLevel,
)

from registration.domain.form import TRAVEL_DOCUMENTS

ACCOUNT = "university_account"
FORM = "registration_form"
IDENTITY_DOCUMENTS = "identity_documents"
TRAVEL_DOCUMENT = "travel_document"
SUPPORTING_DOCUMENT = "supporting_document"
PHOTO = "photo"

# Documents whose expiry on or before 1 September of the intake year means a
# renewed one is required.
EXPIRING = frozenset(
    {
        DocumentType.HK_PERMANENT_ID_CARD,
        DocumentType.HK_ID_CARD,
        *TRAVEL_DOCUMENTS,
        DocumentType.STUDENT_VISA,
        DocumentType.DEPENDANT_VISA,
    }
)


class ItemState(StrEnum):
    MISSING = "missing"
    UPLOADED = "uploaded"
    VERIFIED = "verified"
    REJECTED = "rejected"


# When several document types satisfy one item, the best of them counts.
RANK = {ItemState.MISSING: 0, ItemState.REJECTED: 1, ItemState.UPLOADED: 2, ItemState.VERIFIED: 3}


@dataclass(frozen=True)
class Requirement:
    item: str
    label: str
    label_zh: str
    compulsory: bool
    accepts: tuple[DocumentType, ...] = ()


@dataclass(frozen=True)
class Profile:
    """What decides the checklist."""

    residency: Residency | None
    under_18: bool
    route: AdmissionRoute
    study_level: StudyLevel = StudyLevel.UNDERGRADUATE
    particulars_changed: bool = False
    dependant_visa: bool = False


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def is_under_18(born: date, cutoff: date) -> bool:
    return age_on(born, cutoff) < 18


def _doc(t: DocumentType, label: str, label_zh: str, *, compulsory: bool) -> Requirement:
    return Requirement(t.value, label, label_zh, compulsory, (t,))


def requirements(p: Profile) -> list[Requirement]:
    """The checklist items of a student with profile ``p``, in display order."""
    items = [
        Requirement(ACCOUNT, "University account activated", "啟動大學帳戶", compulsory=True),
        Requirement(FORM, "Registration form submitted", "提交註冊表格", compulsory=True),
    ]
    travel = Requirement(
        TRAVEL_DOCUMENT,
        "Passport / Document of Identity / Exit-entry Permit",
        "護照 / 簽證身份書 / 往來港澳通行證",
        compulsory=True,
        accepts=TRAVEL_DOCUMENTS,
    )
    if p.residency is None:
        items.append(
            Requirement(
                IDENTITY_DOCUMENTS,
                "Identity documents for your residency status",
                "與居民身份相符的身份證明文件",
                compulsory=True,
            )
        )
    elif p.residency is Residency.HK_PERMANENT:
        items.append(
            _doc(
                DocumentType.HK_PERMANENT_ID_CARD,
                "Hong Kong Permanent Identity Card",
                "香港永久性居民身份證",
                compulsory=True,
            )
        )
    elif p.residency is Residency.HK_NON_PERMANENT:
        items.append(
            _doc(DocumentType.HK_ID_CARD, "Hong Kong Identity Card", "香港身份證", compulsory=True)
        )
        items.append(travel)
        if p.dependant_visa:
            items.append(
                _doc(DocumentType.DEPENDANT_VISA, "Dependant visa", "受養人簽證", compulsory=False)
            )
    else:
        items.append(travel)
        items.append(
            _doc(
                DocumentType.STUDENT_VISA,
                "Student visa / entry permit",
                "學生簽證 / 進入許可",
                compulsory=False,
            )
        )
    if p.particulars_changed:
        items.append(
            Requirement(
                SUPPORTING_DOCUMENT,
                "Supporting document for corrected particulars (e.g. deed poll)",
                "更正個人資料的證明文件, 例如改名契",
                compulsory=True,
                accepts=(DocumentType.DEED_POLL, DocumentType.SUPPORTING_DOCUMENT),
            )
        )
    local = p.residency in (Residency.HK_PERMANENT, Residency.HK_NON_PERMANENT)
    if local and p.route is AdmissionRoute.NON_JUPAS and p.study_level is StudyLevel.UNDERGRADUATE:
        items.append(
            _doc(
                DocumentType.TUITION_RECEIPT,
                "Tuition payment receipt",
                "學費繳費收據",
                compulsory=True,
            )
        )
    if p.under_18:
        items.append(
            _doc(
                DocumentType.PARENT_CONSENT_FORM,
                "Parent/guardian consent form",
                "家長/監護人同意書",
                compulsory=False,
            )
        )
    items.append(Requirement(PHOTO, "Student card photo", "學生證相片", compulsory=False))
    return items


def required_documents(reqs: list[Requirement], travel_type: DocumentType | None) -> list[str]:
    """Document types to expect, for FormSubmitted (one per document item)."""
    wanted: list[str] = []
    for r in reqs:
        if not r.accepts:
            continue
        if r.item == TRAVEL_DOCUMENT:
            wanted.append((travel_type or DocumentType.PASSPORT).value)
        elif r.item == SUPPORTING_DOCUMENT:
            wanted.append(DocumentType.SUPPORTING_DOCUMENT.value)
        else:
            wanted.append(r.accepts[0].value)
    return wanted


@dataclass(frozen=True)
class ItemStatus:
    """Where one checklist item stands."""

    requirement: Requirement
    state: ItemState
    due_by: date | None
    reason: str | None = None
    document: str | None = None  # type and version behind the state, e.g. passport v2

    @property
    def item(self) -> str:
        return self.requirement.item

    @property
    def compulsory(self) -> bool:
        return self.requirement.compulsory

    def outstanding(self) -> OutstandingItem:
        return OutstandingItem(
            item=self.item,
            label=self.requirement.label,
            compulsory=self.compulsory,
            due_by=self.due_by,
            state=OutstandingState(self.state.value),
        )
