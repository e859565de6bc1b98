"""The registration form: field formats (drafts) and what a submission needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from opr_shared.events.catalogue import (
    ChineseName,
    DocumentType,
    EmailAddress,
    EmergencyContact,
    Gender,
    PersonName,
    PhoneNumber,
    PostalAddress,
    Residency,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from registration.domain.hkid import normalise_hkid

TRAVEL_DOCUMENTS = (
    DocumentType.PASSPORT,
    DocumentType.DOCUMENT_OF_IDENTITY,
    DocumentType.EXIT_ENTRY_PERMIT,
)


def _upper_compact(value: object) -> object:
    return value.replace(" ", "").upper() if isinstance(value, str) else value


def _hkid(value: str) -> str:
    return normalise_hkid(value)


def _travel_document(value: DocumentType) -> DocumentType:
    if value not in TRAVEL_DOCUMENTS:
        names = ", ".join(t.value for t in TRAVEL_DOCUMENTS)
        raise ValueError(f"a travel document is one of: {names}")
    return value


HkidNumber = Annotated[str, BeforeValidator(_upper_compact), AfterValidator(_hkid)]
Nationality = Annotated[
    str, BeforeValidator(_upper_compact), StringConstraints(pattern=r"^[A-Z]{3}$")
]
TravelDocumentNumber = Annotated[
    str, BeforeValidator(_upper_compact), StringConstraints(pattern=r"^[A-Z0-9]{5,20}$")
]
TravelDocumentType = Annotated[DocumentType, AfterValidator(_travel_document)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class FormFields(BaseModel):
    """The fields of the registration form; in a draft every one may be left out."""

    model_config = ConfigDict(extra="forbid")

    surname: PersonName | None = Field(default=None, description="Legal surname.")
    given_names: PersonName | None = Field(default=None, description="Legal given names.")
    chinese_name: ChineseName | None = Field(default=None, description="Name in Chinese.")
    gender: Gender | None = None
    date_of_birth: date | None = None
    nationality: Nationality | None = Field(
        default=None, description="ISO 3166-1 alpha-3 code, e.g. CHN."
    )
    residency: Residency | None = Field(
        default=None, description="Decides the identity documents required."
    )
    hkid_number: HkidNumber | None = Field(
        default=None, description="HKID number, e.g. A123456(3); HK residents."
    )
    travel_document_type: TravelDocumentType | None = Field(
        default=None,
        description="passport, document_of_identity or exit_entry_permit; "
        "non-permanent residents and non-local students.",
    )
    travel_document_number: TravelDocumentNumber | None = None
    dependant_visa: bool | None = Field(
        default=None, description="Non-permanent residents staying on a dependant visa."
    )
    mobile: PhoneNumber | None = None
    personal_email: EmailAddress | None = None
    correspondence_address: PostalAddress | None = None
    emergency_contact: EmergencyContact | None = None
    particulars_changed: bool | None = Field(
        default=None,
        description="True when a particular on record (name, date of birth) is wrong and "
        "corrected here; a supporting document is then required.",
    )
    change_reason: Reason | None = Field(
        default=None, description="Why the particulars on record are corrected."
    )
    declaration: bool | None = Field(
        default=None, description="The student declares the information true and complete."
    )


# Particulars on record that the student may correct (with a supporting document).
CORRECTABLE = ("surname", "given_names", "chinese_name", "date_of_birth")
REQUIRED = (
    "surname",
    "given_names",
    "gender",
    "date_of_birth",
    "nationality",
    "residency",
    "mobile",
    "personal_email",
    "correspondence_address",
    "emergency_contact",
)


@dataclass(frozen=True)
class Problem:
    """Why a submission is refused: the field and a reason the student can act on."""

    field: str
    reason: str


def effective_form(prefill: dict[str, Any] | None, draft: dict[str, Any] | None) -> dict[str, Any]:
    """The form as the student sees it: particulars on record, overlaid by the draft."""
    fields = FormFields.model_fields
    form: dict[str, Any] = {k: v for k, v in (prefill or {}).items() if k in fields}
    form.update(draft or {})
    return form


def _same_name(a: Any, b: Any) -> bool:
    def key(v: Any) -> str:
        return " ".join(str(v or "").split()).casefold()

    return key(a) == key(b)


def changed_particulars(form: dict[str, Any], prefill: dict[str, Any] | None) -> list[str]:
    """The particulars on record that the form changes."""
    if not prefill:
        return []
    changed = []
    for name in CORRECTABLE:
        if name == "date_of_birth":
            if str(form.get(name) or "") != str(prefill.get(name) or ""):
                changed.append(name)
        elif not _same_name(form.get(name), prefill.get(name)):
            changed.append(name)
    return changed


def submission_problems(form: dict[str, Any], prefill: dict[str, Any] | None) -> list[Problem]:
    """Everything that keeps ``form`` (JSON values) from being submitted; empty when it can."""
    problems = [Problem(f, "this field is required") for f in REQUIRED if form.get(f) in (None, "")]
    residency = form.get("residency")
    if residency in (Residency.HK_PERMANENT, Residency.HK_NON_PERMANENT) and not form.get(
        "hkid_number"
    ):
        problems.append(Problem("hkid_number", "Hong Kong residents give their HKID number"))
    if residency in (Residency.HK_NON_PERMANENT, Residency.NON_LOCAL):
        for name in ("travel_document_type", "travel_document_number"):
            if not form.get(name):
                problems.append(
                    Problem(
                        name,
                        "non-permanent residents and non-local students give their passport, "
                        "document of identity or exit-entry permit",
                    )
                )
    if form.get("declaration") is not True:
        problems.append(
            Problem("declaration", "you must declare the information true and complete")
        )
    changed = changed_particulars(form, prefill)
    if changed and form.get("particulars_changed") is not True:
        problems.append(
            Problem(
                "particulars_changed",
                f"you changed particulars on record ({', '.join(changed)}): confirm that they "
                "are out of date and give a reason; a supporting document (e.g. deed poll or "
                "updated identity document) must then be uploaded",
            )
        )
    if form.get("particulars_changed") is True and not form.get("change_reason"):
        problems.append(
            Problem("change_reason", "give the reason the particulars on record are corrected")
        )
    return problems
