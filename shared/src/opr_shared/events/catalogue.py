"""The event catalogue: every payload the services publish, one pydantic model each.

Producers build these models and wrap them in an :class:`~opr_shared.events.envelope.Envelope`;
consumers turn a received envelope back into the model with :func:`parse_payload`.
Every model carries an example, which is also the golden message of the contract
tests, and its JSON schema is snapshotted under ``opr_shared/contracts/schemas``.

Evolution rules (checked by ``opr_shared.contracts``): a published
``(event_type, schema_version)`` only ever gains optional fields. Anything else
(removing, renaming, retyping a field, changing a closed set of values) is a new
``schema_version`` with its own model, kept beside the old one in :data:`CATALOGUE`.

The envelope ``subject`` (and Kafka key) is the student number, except for
:class:`IntakeScheduled`, whose subject is ``intake:<year>`` (see :func:`subject_of`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from opr_shared.events.envelope import SERVICES, Envelope, EventPayload


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""A timestamp that must carry a timezone; it is normalised to UTC."""

StudentNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{8,10}$")]
JupasAppNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
ChineseName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
EmailAddress = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
UniversityEmail = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@connect\.[^@\s]+\.[^@\s]+$")
]


def _compact_phone(value: object) -> object:
    return value.replace(" ", "").replace("-", "") if isinstance(value, str) else value


PhoneNumber = Annotated[
    str, StringConstraints(pattern=r"^\+?[0-9]{7,15}$"), BeforeValidator(_compact_phone)
]
"""A phone number, digits with an optional leading +; spaces and hyphens are dropped."""

ProgrammeCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)
]
IntakeYear = Annotated[int, Field(ge=2000, le=2100)]
Version = Annotated[int, Field(ge=1)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
MediaType = Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
StaffId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
CardNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{8,16}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class AdmissionRoute(StrEnum):
    """How the student was admitted: through JUPAS, or any other route."""

    JUPAS = "JUPAS"
    NON_JUPAS = "NON_JUPAS"


class StudyLevel(StrEnum):
    """Level of the programme the student is admitted to."""

    UNDERGRADUATE = "undergraduate"
    POSTGRADUATE = "postgraduate"


class Residency(StrEnum):
    """Residency status, which decides the identity documents required."""

    HK_PERMANENT = "hk_permanent"
    HK_NON_PERMANENT = "hk_non_permanent"
    NON_LOCAL = "non_local"


class RegistrationStatus(StrEnum):
    """The registration status the student sees."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    WITHDRAWN = "withdrawn"


class DocumentType(StrEnum):
    """Kinds of document a student uploads (the card photo is handled separately)."""

    HK_PERMANENT_ID_CARD = "hk_permanent_id_card"
    HK_ID_CARD = "hk_id_card"
    PASSPORT = "passport"
    DOCUMENT_OF_IDENTITY = "document_of_identity"
    EXIT_ENTRY_PERMIT = "exit_entry_permit"
    STUDENT_VISA = "student_visa"
    DEPENDANT_VISA = "dependant_visa"
    DEED_POLL = "deed_poll"
    SUPPORTING_DOCUMENT = "supporting_document"
    PARENT_CONSENT_FORM = "parent_consent_form"
    TUITION_RECEIPT = "tuition_receipt"


class Gender(StrEnum):
    """Gender as declared on the registration form."""

    FEMALE = "female"
    MALE = "male"
    UNDISCLOSED = "undisclosed"


class OutstandingState(StrEnum):
    """Where a checklist item that is not yet done stands."""

    MISSING = "missing"
    UPLOADED = "uploaded"
    REJECTED = "rejected"


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OutstandingItem(_Value):
    """One checklist item not yet verified."""

    item: Code = Field(
        description="Checklist key: a document type, or 'registration_form' or 'photo'."
    )
    label: ShortText = Field(description="English label of the item, as shown to the student.")
    compulsory: bool = Field(
        description="True if registration cannot complete without it; false if supplementary."
    )
    due_by: date | None = Field(
        default=None, description="Last day to provide it, if it has its own due date."
    )
    state: OutstandingState = Field(
        description="Whether it is missing, awaiting review or rejected."
    )


class PostalAddress(_Value):
    """A correspondence address."""

    lines: list[ShortText] = Field(
        min_length=1, max_length=4, description="Address lines, most specific first."
    )
    district: ShortText | None = Field(default=None, description="District, e.g. Sai Kung.")
    country_or_region: ShortText = Field(description="Country or region, e.g. Hong Kong.")


class EmergencyContact(_Value):
    """Whom to call in an emergency."""

    name: PersonName = Field(description="Full name of the contact person.")
    relationship: ShortText = Field(description="Relationship to the student, e.g. Mother.")
    phone: PhoneNumber = Field(description="Phone number, digits with an optional leading +.")


_PARTICULARS_EXAMPLE: JsonDict = {
    "student_no": "20251234",
    "jupas_app_no": "12345678",
    "surname": "CHAN",
    "given_names": "Tai Man Peter",
    "chinese_name": "陳大文",
    "date_of_birth": "2007-10-02",
    "personal_email": "peter.chan@example.com",
    "mobile": "+85291234567",
    "programme_code": "JS5101",
    "programme_name": "Bachelor of Engineering",
    "intake_year": 2025,
    "admission_route": "JUPAS",
    "study_level": "undergraduate",
}


class StudentParticulars(EventPayload):
    """The particulars of an admitted student as held on the roster (not an event itself)."""

    student_no: StudentNo = Field(description="University student number.")
    jupas_app_no: JupasAppNo | None = Field(
        default=None, description="JUPAS application number; absent for non-JUPAS entrants."
    )
    surname: PersonName = Field(description="Surname / last name, as on the admission record.")
    given_names: PersonName = Field(description="Given names / first name, e.g. 'Tai Man Peter'.")
    chinese_name: ChineseName | None = Field(default=None, description="Name in Chinese, if any.")
    date_of_birth: date = Field(description="Date of birth.")
    personal_email: EmailAddress = Field(description="Personal email address given at admission.")
    mobile: PhoneNumber = Field(description="Mobile phone number, digits with optional leading +.")
    programme_code: ProgrammeCode = Field(description="Code of the admitted programme.")
    programme_name: ShortText = Field(description="English name of the admitted programme.")
    intake_year: IntakeYear = Field(description="Year of the intake, e.g. 2025.")
    admission_route: AdmissionRoute = Field(description="JUPAS or non-JUPAS admission.")
    study_level: StudyLevel = Field(
        default=StudyLevel.UNDERGRADUATE, description="Undergraduate or postgraduate."
    )


class StudentAdmitted(StudentParticulars):
    """A student was added to the admitted-student roster.

    Produced by identity when a roster import creates a new student record.
    Consumed by registration (opens the registration and prefills the form),
    documents (knows who may upload), notifier (recipient details) and card
    (name and programme printed on the card).
    """

    event_type: ClassVar[str] = "StudentAdmitted"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "identity"

    model_config = ConfigDict(json_schema_extra={"examples": [_PARTICULARS_EXAMPLE]})


class StudentParticularsUpdated(StudentParticulars):
    """An admitted student's particulars were corrected by a re-imported roster row.

    Produced by identity when a roster import changes an existing record
    (re-importing an unchanged row produces nothing). Carries the full corrected
    particulars, not only the changes. Consumed by registration (prefilled form),
    documents, notifier and card (printed name and programme).
    """

    event_type: ClassVar[str] = "StudentParticularsUpdated"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "identity"

    changed_fields: list[Code] = Field(
        min_length=1, description="Names of the particulars that changed, e.g. ['surname']."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PARTICULARS_EXAMPLE,
                    "mobile": "+85298765432",
                    "changed_fields": ["mobile"],
                }
            ]
        }
    )


class InvitationIssued(EventPayload):
    """An invitation to program registration was issued to a student.

    Produced by identity when the registry sends invitations (a student may be
    invited again: ``invitation_no`` counts). Consumed by notifier, which emails
    "Invitation to Program Registration" with the activation link and deadlines.
    """

    event_type: ClassVar[str] = "InvitationIssued"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "identity"

    student_no: StudentNo = Field(description="University student number.")
    personal_email: EmailAddress = Field(description="Where the invitation is sent.")
    surname: PersonName = Field(description="Surname, for the greeting.")
    given_names: PersonName = Field(description="Given names, for the greeting.")
    chinese_name: ChineseName | None = Field(
        default=None, description="Name in Chinese, for the Chinese greeting."
    )
    activation_url: str = Field(
        pattern=r"^https?://\S+$",
        max_length=2000,
        description="Single-use account activation link; it carries a secret token.",
    )
    activation_expires_at: UtcDatetime = Field(description="When the activation link expires.")
    intake_year: IntakeYear = Field(description="Year of the intake.")
    registration_deadline: UtcDatetime | None = Field(
        default=None, description="Registration deadline, if the intake calendar is known."
    )
    term_start: date | None = Field(
        default=None, description="First day of term, if the intake calendar is known."
    )
    invitation_no: int = Field(ge=1, description="1 for the first invitation, 2 for the next...")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20251234",
                    "personal_email": "peter.chan@example.com",
                    "surname": "CHAN",
                    "given_names": "Tai Man Peter",
                    "chinese_name": "陳大文",
                    "activation_url": "https://reg.example.edu.hk/activate?token=q3Yx9Tz0",
                    "activation_expires_at": "2025-08-15T15:59:59Z",
                    "intake_year": 2025,
                    "registration_deadline": "2025-08-15T09:00:00Z",
                    "term_start": "2025-09-01",
                    "invitation_no": 1,
                }
            ]
        }
    )


class AccountActivated(EventPayload):
    """A student activated their university account.

    Produced by identity when a student sets a password with a valid activation
    link. Consumed by registration and card (the university email on record) and
    notifier (later emails also go to the university address).
    """

    event_type: ClassVar[str] = "AccountActivated"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "identity"

    student_no: StudentNo = Field(description="University student number.")
    university_email: UniversityEmail = Field(
        description="The new university address, <user>@connect.<domain>."
    )
    personal_email: EmailAddress = Field(description="Personal email address on record.")
    activated_at: UtcDatetime = Field(description="When the account was activated.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20251234",
                    "university_email": "tmpchan@connect.example.edu.hk",
                    "personal_email": "peter.chan@example.com",
                    "activated_at": "2025-08-02T03:15:00Z",
                }
            ]
        }
    )


class IntakeScheduled(EventPayload):
    """The calendar of an intake was set or changed.

    Produced by registration when the registry sets an intake's deadline, term
    start and age cut-off (again on every change; the latest wins). The envelope
    subject is ``intake:<year>``. Consumed by identity (deadlines in invitations)
    and notifier (deadlines in emails).
    """

    event_type: ClassVar[str] = "IntakeScheduled"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "registration"

    intake_year: IntakeYear = Field(description="Year of the intake.")
    registration_deadline: UtcDatetime = Field(
        description="After this moment, students without the compulsory steps are withdrawn."
    )
    term_start: date = Field(
        description="First day of term; last day for consent forms and photo re-submission."
    )
    age_cutoff: date = Field(
        description="Date on which 'under 18' is judged, normally 1 September of the intake year."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "intake_year": 2025,
                    "registration_deadline": "2025-08-15T09:00:00Z",
                    "term_start": "2025-09-01",
                    "age_cutoff": "2025-09-01",
                }
            ]
        }
    )


_OUTSTANDING_CONSENT: JsonDict = {
    "item": "parent_consent_form",
    "label": "Parent/guardian consent form",
    "compulsory": False,
    "due_by": "2025-09-01",
    "state": "missing",
}


class FormSubmitted(EventPayload):
    """A student submitted the registration form (once only).

    Produced by registration when the student submits the form. Consumed by
    documents (which documents to expect), notifier (confirmation email) and
    downstream systems (the student information system takes the particulars).
    Carries identity numbers: consumers must mask them in logs.
    """

    event_type: ClassVar[str] = "FormSubmitted"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "registration"

    student_no: StudentNo = Field(description="University student number.")
    intake_year: IntakeYear = Field(description="Year of the intake.")
    submitted_at: UtcDatetime = Field(description="When the form was submitted.")
    surname: PersonName = Field(description="Legal surname, as on the identity document.")
    given_names: PersonName = Field(description="Legal given names, as on the identity document.")
    chinese_name: ChineseName | None = Field(default=None, description="Name in Chinese, if any.")
    gender: Gender = Field(description="Gender as declared.")
    date_of_birth: date = Field(description="Date of birth.")
    nationality: str = Field(
        pattern=r"^[A-Z]{3}$", description="Nationality, ISO 3166-1 alpha-3 code, e.g. CHN."
    )
    residency: Residency = Field(description="Residency status; decides the documents required.")
    hkid_number: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{1,2}[0-9]{6}\([0-9A]\)$",
        description="HKID number in the form A123456(7), check digit validated; HK residents.",
    )
    travel_document_number: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9]{5,20}$",
        description="Passport or travel document number; non-permanent and non-local students.",
    )
    mobile: PhoneNumber = Field(description="Mobile phone number, digits with optional leading +.")
    personal_email: EmailAddress = Field(description="Personal email address.")
    correspondence_address: PostalAddress = Field(description="Correspondence address.")
    emergency_contact: EmergencyContact = Field(description="Emergency contact.")
    particulars_changed: bool = Field(
        description="True if the student corrected particulars prefilled from the roster."
    )
    change_reason: ShortText | None = Field(
        default=None, description="The student's explanation of the corrected particulars."
    )
    required_documents: list[DocumentType] = Field(
        description="Documents this student must upload, from residency, age, route and changes."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20251234",
                    "intake_year": 2025,
                    "submitted_at": "2025-08-03T06:30:00Z",
                    "surname": "CHAN",
                    "given_names": "Tai Man Peter",
                    "chinese_name": "陳大文",
                    "gender": "male",
                    "date_of_birth": "2007-10-02",
                    "nationality": "CHN",
                    "residency": "hk_permanent",
                    "hkid_number": "A123456(3)",
                    "travel_document_number": None,
                    "mobile": "+85291234567",
                    "personal_email": "peter.chan@example.com",
                    "correspondence_address": {
                        "lines": ["Flat 12A, Block 3", "1 Clear Water Bay Road"],
                        "district": "Sai Kung",
                        "country_or_region": "Hong Kong",
                    },
                    "emergency_contact": {
                        "name": "CHAN Siu Ming",
                        "relationship": "Father",
                        "phone": "+85261234567",
                    },
                    "particulars_changed": False,
                    "change_reason": None,
                    "required_documents": ["hk_permanent_id_card", "parent_consent_form"],
                }
            ]
        }
    )


class RegistrationStatusChanged(EventPayload):
    """A student's registration status moved.

    Produced by registration on every status transition, including the first
    (``from_status`` absent). Completion, incompletion and withdrawal also get
    their own events below. Consumed by notifier (portal inbox), card (eligibility)
    and downstream systems.
    """

    event_type: ClassVar[str] = "RegistrationStatusChanged"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "registration"

    student_no: StudentNo = Field(description="University student number.")
    intake_year: IntakeYear = Field(description="Year of the intake.")
    from_status: RegistrationStatus | None = Field(
        default=None, description="Status before the change; absent when the registration opens."
    )
    to_status: RegistrationStatus = Field(description="Status after the change.")
    reason: Code = Field(
        description="Why it changed: a short code such as all_verified or deadline_passed."
    )
    outstanding: list[OutstandingItem] = Field(
        description="Checklist items not yet verified after the change."
    )
    changed_at: UtcDatetime = Field(description="When the status changed.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20251234",
                    "intake_year": 2025,
                    "from_status": "in_progress",
                    "to_status": "completed",
                    "reason": "all_verified",
                    "outstanding": [_OUTSTANDING_CONSENT],
                    "changed_at": "2025-08-06T02:00:00Z",
                }
            ]
        }
    )


class RegistrationCompleted(EventPayload):
    """A student's registration was completed: every required step is verified.

    Produced by registration when the Academic Registry's verification of the last
    compulsory item completes the checklist. Consumed by notifier (email
    "Acknowledgement of Program Registration to the University" to the university
    and personal addresses, listing what is outstanding), card (a card may be
    issued) and downstream systems.
    """

    event_type: ClassVar[str] = "RegistrationCompleted"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "registration"

    student_no: StudentNo = Field(description="University student number.")
    intake_year: IntakeYear = Field(description="Year of the intake.")
    university_email: UniversityEmail | None = Field(
        default=None, description="University address, if the account has been activated."
    )
    personal_email: EmailAddress = Field(description="Personal email address.")
    outstanding: list[OutstandingItem] = Field(
        description="Supplementary items still due, listed in the acknowledgement."
    )
    completed_at: UtcDatetime = Field(description="When the registration was completed.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20251234",
                    "intake_year": 2025,
                    "university_email": "tmpchan@connect.example.edu.hk",
                    "personal_email": "peter.chan@example.com",
                    "outstanding": [_OUTSTANDING_CONSENT],
                    "completed_at": "2025-08-06T02:00:00Z",
                }
            ]
        }
    )


class RegistrationIncomplete(EventPayload):
    """A student is registered but supplementary documents are outstanding.

    Produced by registration when the deadline passes with the compulsory steps
    done and supplementary items missing. Consumed by notifier (email "Follow-up
    Action: Program Registration to the University"), card and downstream systems.
    """

    event_type: ClassVar[str] = "RegistrationIncomplete"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "registration"

    student_no: StudentNo = Field(description="University student number.")
    intake_year: IntakeYear = Field(description="Year of the intake.")
    university_email: UniversityEmail | None = Field(
        default=None, description="University address, if the account has been activated."
    )
    personal_email: EmailAddress = Field(description="Personal email address.")
    outstanding: list[OutstandingItem] = Field(
        min_length=1, description="Supplementary items still outstanding."
    )
    follow_up_by: date = Field(description="Date by which the outstanding items must be provided.")
    recorded_at: UtcDatetime = Field(description="When the incomplete status was recorded.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20251234",
                    "intake_year": 2025,
                    "university_email": "tmpchan@connect.example.edu.hk",
                    "personal_email": "peter.chan@example.com",
                    "outstanding": [_OUTSTANDING_CONSENT],
                    "follow_up_by": "2025-09-01",
                    "recorded_at": "2025-08-15T09:00:05Z",
                }
            ]
        }
    )


class RegistrationWithdrawn(EventPayload):
    """A student's registration was withdrawn: the deadline passed with compulsory steps undone.

    Produced by registration when the registry applies an intake's deadline.
    Consumed by notifier (email to the personal address), card (no card) and
    downstream systems.
    """

    event_type: ClassVar[str] = "RegistrationWithdrawn"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "registration"

    student_no: StudentNo = Field(description="University student number.")
    intake_year: IntakeYear = Field(description="Year of the intake.")
    personal_email: EmailAddress = Field(description="Personal email address.")
    missing: list[OutstandingItem] = Field(
        min_length=1, description="Compulsory items not done by the deadline."
    )
    withdrawn_at: UtcDatetime = Field(description="When the registration was withdrawn.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "student_no": "20259876",
                    "intake_year": 2025,
                    "personal_email": "mei.wong@example.com",
                    "missing": [
                        {
                            "item": "registration_form",
                            "label": "Registration form",
                            "compulsory": True,
                            "due_by": None,
                            "state": "missing",
                        }
                    ],
                    "withdrawn_at": "2025-08-15T09:00:05Z",
                }
            ]
        }
    )


class DocumentUploaded(EventPayload):
    """A student uploaded a document (a new version of it).

    Produced by documents when an upload passes the content checks and is stored.
    Each upload of the same type is a new version; the latest is the one reviewed.
    Consumed by registration (checklist item becomes 'uploaded') and notifier.
    """

    event_type: ClassVar[str] = "DocumentUploaded"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "documents"

    document_id: uuid.UUID = Field(description="Id of this uploaded version.")
    student_no: StudentNo = Field(description="University student number.")
    doc_type: DocumentType = Field(description="Kind of document.")
    version: Version = Field(description="Version of this document type for the student, from 1.")
    content_type: MediaType = Field(description="Media type sniffed from the content.")
    size_bytes: int = Field(gt=0, description="Size of the file in bytes.")
    sha256: Sha256Hex = Field(description="SHA-256 of the file, lower-case hex.")
    uploaded_at: UtcDatetime = Field(description="When the upload was stored.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "document_id": "3f2b8c1e-5a4d-4e8f-9b6a-1c2d3e4f5a6b",
                    "student_no": "20251234",
                    "doc_type": "hk_permanent_id_card",
                    "version": 1,
                    "content_type": "application/pdf",
                    "size_bytes": 284913,
                    "sha256": "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592",
                    "uploaded_at": "2025-08-03T06:40:00Z",
                }
            ]
        }
    )


class DocumentVerified(EventPayload):
    """A registry officer verified an uploaded document.

    Produced by documents when an officer accepts a document version. Consumed by
    registration (checklist item done; may complete the registration) and notifier.
    """

    event_type: ClassVar[str] = "DocumentVerified"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "documents"

    document_id: uuid.UUID = Field(description="Id of the verified version.")
    student_no: StudentNo = Field(description="University student number.")
    doc_type: DocumentType = Field(description="Kind of document.")
    version: Version = Field(description="Version that was verified.")
    expiry_date: date | None = Field(
        default=None, description="Expiry date read from the document, if it has one."
    )
    verified_by: StaffId = Field(description="Staff user id of the officer.")
    verified_at: UtcDatetime = Field(description="When it was verified.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "document_id": "3f2b8c1e-5a4d-4e8f-9b6a-1c2d3e4f5a6b",
                    "student_no": "20251234",
                    "doc_type": "hk_permanent_id_card",
                    "version": 1,
                    "expiry_date": None,
                    "verified_by": "officer.lam",
                    "verified_at": "2025-08-05T01:20:00Z",
                }
            ]
        }
    )


class DocumentRejected(EventPayload):
    """A registry officer rejected an uploaded document.

    Produced by documents when an officer rejects a document version with a reason.
    Consumed by registration (checklist item 'rejected') and notifier (email asking
    for a new upload).
    """

    event_type: ClassVar[str] = "DocumentRejected"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "documents"

    document_id: uuid.UUID = Field(description="Id of the rejected version.")
    student_no: StudentNo = Field(description="University student number.")
    doc_type: DocumentType = Field(description="Kind of document.")
    version: Version = Field(description="Version that was rejected.")
    reason: ShortText = Field(description="Why it was rejected, shown to the student.")
    rejected_by: StaffId = Field(description="Staff user id of the officer.")
    rejected_at: UtcDatetime = Field(description="When it was rejected.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "document_id": "7a1c2e3d-4b5f-4a6e-8d7c-9b0a1f2e3d4c",
                    "student_no": "20251234",
                    "doc_type": "passport",
                    "version": 2,
                    "reason": "The passport expires before 1 September 2025.",
                    "rejected_by": "officer.lam",
                    "rejected_at": "2025-08-05T01:25:00Z",
                }
            ]
        }
    )


class PhotoSubmitted(EventPayload):
    """A student submitted a student-card photo that passed the automatic checks.

    Produced by documents when an uploaded photo meets the published specification
    and awaits the card office's review. Consumed by registration (checklist)
    and notifier.
    """

    event_type: ClassVar[str] = "PhotoSubmitted"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "documents"

    photo_id: uuid.UUID = Field(description="Id of this photo version.")
    student_no: StudentNo = Field(description="University student number.")
    version: Version = Field(description="Version of the student's photo, from 1.")
    width: int = Field(gt=0, description="Width in pixels.")
    height: int = Field(gt=0, description="Height in pixels.")
    content_type: MediaType = Field(description="Media type sniffed from the content.")
    size_bytes: int = Field(gt=0, description="Size of the file in bytes.")
    sha256: Sha256Hex = Field(description="SHA-256 of the file, lower-case hex.")
    submitted_at: UtcDatetime = Field(description="When the photo was stored.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "photo_id": "c4d5e6f7-0819-4a2b-9c3d-4e5f6a7b8c9d",
                    "student_no": "20251234",
                    "version": 1,
                    "width": 480,
                    "height": 640,
                    "content_type": "image/jpeg",
                    "size_bytes": 65210,
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "submitted_at": "2025-08-03T06:45:00Z",
                }
            ]
        }
    )


# A 1x1 grey baseline JPEG (142 bytes): enough to show the shape of the field.
_EXAMPLE_CARD_JPEG = (
    "/9j/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
    "AQEBAQEBAQH/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAAAAAAAAAAAAAAAAAA"
    "AAD/2gAIAQEAAAA/AD//2Q=="
)


class PhotoApproved(EventPayload):
    """The card office approved a student's photo for the student card.

    Produced by documents when card office staff approve a photo. It carries the
    approved image, normalised for printing (JPEG, a few tens of KB, at most about
    100 KB), so the card service never reads the documents bucket. Consumed by
    registration (checklist), card (issues the card, or reissues it if one was
    already issued) and notifier.
    """

    event_type: ClassVar[str] = "PhotoApproved"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "documents"

    photo_id: uuid.UUID = Field(description="Id of the approved photo version.")
    student_no: StudentNo = Field(description="University student number.")
    approved_by: StaffId = Field(description="Staff user id of the card office officer.")
    approved_at: UtcDatetime = Field(description="When it was approved.")
    card_image_jpeg_base64: str = Field(
        min_length=4,
        max_length=140_000,
        pattern=r"^[A-Za-z0-9+/]+={0,2}$",
        description="The card image as standard base64 of a JPEG; a few tens of KB.",
    )
    card_image_sha256: Sha256Hex = Field(description="SHA-256 of the decoded JPEG, lower-case hex.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "photo_id": "c4d5e6f7-0819-4a2b-9c3d-4e5f6a7b8c9d",
                    "student_no": "20251234",
                    "approved_by": "card.ho",
                    "approved_at": "2025-08-04T02:10:00Z",
                    "card_image_jpeg_base64": _EXAMPLE_CARD_JPEG,
                    "card_image_sha256": (
                        "69b576f1cbc34b1ba1201f7bbe7da37e72729954e68853cee7d8d27f08213062"
                    ),
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _image_matches_digest(self) -> Self:
        image = self.card_image()
        if not image.startswith(b"\xff\xd8"):
            raise ValueError("card_image_jpeg_base64 is not a JPEG")
        if hashlib.sha256(image).hexdigest() != self.card_image_sha256:
            raise ValueError("card_image_sha256 does not match the image")
        return self

    def card_image(self) -> bytes:
        """The decoded JPEG bytes."""
        try:
            return base64.b64decode(self.card_image_jpeg_base64, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"card_image_jpeg_base64 is not valid base64: {exc}") from exc


class PhotoRejected(EventPayload):
    """A student's photo was rejected, by the automatic checks or by the card office.

    Produced by documents when an upload fails the published photo specification
    (``rejected_by`` is ``system``) or card office staff reject it. The student may
    submit another photo until the term start. Consumed by registration
    (checklist) and notifier (email asking for a new photo).
    """

    event_type: ClassVar[str] = "PhotoRejected"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "documents"

    photo_id: uuid.UUID = Field(description="Id of the rejected photo version.")
    student_no: StudentNo = Field(description="University student number.")
    reasons: list[ShortText] = Field(
        min_length=1, description="Each reason it was rejected, shown to the student."
    )
    rejected_by: StaffId = Field(description="Staff user id, or 'system' for automatic checks.")
    rejected_at: UtcDatetime = Field(description="When it was rejected.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "photo_id": "d5e6f7a8-192a-4b3c-8d4e-5f6a7b8c9d0e",
                    "student_no": "20251234",
                    "reasons": ["The face must be centred and fill most of the frame."],
                    "rejected_by": "card.ho",
                    "rejected_at": "2025-08-04T02:05:00Z",
                }
            ]
        }
    )


class CardIssued(EventPayload):
    """A student card was issued.

    Produced by card when a student becomes eligible (required documents received
    and photo approved), or when a newly approved photo leads to a reissue, which
    invalidates ``replaces_card_no``. Consumed by registration and downstream
    systems (library, access control); the notifier mails the collection slot.
    """

    event_type: ClassVar[str] = "CardIssued"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "card"

    card_no: CardNo = Field(description="Card number; digits, the last one a check digit.")
    student_no: StudentNo = Field(description="University student number.")
    surname: PersonName = Field(description="Surname printed on the card.")
    given_names: PersonName = Field(description="Given names printed on the card.")
    chinese_name: ChineseName | None = Field(
        default=None, description="Chinese name printed on the card, if any."
    )
    programme_code: ProgrammeCode = Field(description="Programme code printed on the card.")
    programme_name: ShortText = Field(description="Programme name printed on the card.")
    issued_at: UtcDatetime = Field(description="When the card was issued.")
    expires_on: date = Field(description="Last day the card is valid.")
    replaces_card_no: CardNo | None = Field(
        default=None, description="The card this one replaces (now invalid), on a reissue."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "card_no": "2025000017",
                    "student_no": "20251234",
                    "surname": "CHAN",
                    "given_names": "Tai Man Peter",
                    "chinese_name": "陳大文",
                    "programme_code": "JS5101",
                    "programme_name": "Bachelor of Engineering",
                    "issued_at": "2025-08-06T02:05:00Z",
                    "expires_on": "2029-08-31",
                    "replaces_card_no": None,
                }
            ]
        }
    )


class CardReadyForCollection(EventPayload):
    """An issued card was given a collection slot.

    Produced by card when it allocates (or the student books) a slot in the
    collection schedule. Consumed by registration and notifier (email with the
    venue, time and what to bring) and downstream systems.
    """

    event_type: ClassVar[str] = "CardReadyForCollection"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "card"

    card_no: CardNo = Field(description="Card number.")
    student_no: StudentNo = Field(description="University student number.")
    slot_id: str = Field(
        min_length=1, max_length=64, description="Id of the slot in the collection schedule."
    )
    venue: ShortText = Field(description="Where to collect the card.")
    starts_at: UtcDatetime = Field(description="Start of the collection window.")
    ends_at: UtcDatetime = Field(description="End of the collection window.")
    bring: list[ShortText] = Field(description="What the student must bring to collect it.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "card_no": "2025000017",
                    "student_no": "20251234",
                    "slot_id": "2025-08-20-1000",
                    "venue": "Student Card Office, Room 1101, Academic Building",
                    "starts_at": "2025-08-20T02:00:00Z",
                    "ends_at": "2025-08-20T03:00:00Z",
                    "bring": ["Hong Kong Identity Card or passport"],
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CardCollected(EventPayload):
    """A student collected their card.

    Produced by card when card office staff mark the card collected. Consumed by
    registration and downstream systems.
    """

    event_type: ClassVar[str] = "CardCollected"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "card"

    card_no: CardNo = Field(description="Card number.")
    student_no: StudentNo = Field(description="University student number.")
    collected_at: UtcDatetime = Field(description="When it was handed over.")
    collected_by: StaffId = Field(description="Staff user id of who handed it over.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "card_no": "2025000017",
                    "student_no": "20251234",
                    "collected_at": "2025-08-20T02:17:00Z",
                    "collected_by": "card.ho",
                }
            ]
        }
    )


class CardCancelled(EventPayload):
    """A student card stopped being valid without a replacement.

    Produced by card when the student's registration is withdrawn after the card
    was issued (collected or not); any collection booking is released. Consumed by
    downstream systems (library, building access), which refuse the card; no
    service of the platform consumes it.
    """

    event_type: ClassVar[str] = "CardCancelled"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "card"

    card_no: CardNo = Field(description="Number of the card that is no longer valid.")
    student_no: StudentNo = Field(description="University student number.")
    reason: Literal["registration_withdrawn"] = Field(description="Why the card was cancelled.")
    cancelled_at: UtcDatetime = Field(description="When the card stopped being valid.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "card_no": "2025000017",
                    "student_no": "20251234",
                    "reason": "registration_withdrawn",
                    "cancelled_at": "2025-08-16T01:00:00Z",
                }
            ]
        }
    )


class NotificationSent(EventPayload):
    """A notification was delivered to the mail server.

    Produced by notifier after an email for some event has been accepted by SMTP.
    Consumed by downstream systems for audit; no service consumes it. Like every
    notifier audit event it names the template, never an email address.
    """

    event_type: ClassVar[str] = "NotificationSent"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "notifier"

    notification_id: uuid.UUID = Field(description="Id of the notification in the delivery log.")
    student_no: StudentNo = Field(description="University student number.")
    template: Code = Field(description="Template name, e.g. registration_completed.")
    channel: Literal["email"] = Field(default="email", description="Delivery channel.")
    recipient_count: int = Field(ge=1, description="Number of addresses it was sent to.")
    cause_event_id: uuid.UUID = Field(description="event_id of the event that caused it.")
    sent_at: UtcDatetime = Field(description="When the mail server accepted it.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "notification_id": "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b",
                    "student_no": "20251234",
                    "template": "registration_completed",
                    "channel": "email",
                    "recipient_count": 2,
                    "cause_event_id": "0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e",
                    "sent_at": "2025-08-06T02:00:12Z",
                }
            ]
        }
    )


class NotificationFailed(EventPayload):
    """A notification could not be delivered and was given up (dead-lettered).

    Produced by notifier when delivery keeps failing after its retries; staff may
    resend it. Consumed by downstream systems for audit; no service consumes it.
    """

    event_type: ClassVar[str] = "NotificationFailed"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "notifier"

    notification_id: uuid.UUID = Field(description="Id of the notification in the delivery log.")
    student_no: StudentNo = Field(description="University student number.")
    template: Code = Field(description="Template name, e.g. registration_completed.")
    error: str = Field(
        min_length=1, max_length=2000, description="Last delivery error, without addresses."
    )
    attempts: int = Field(ge=1, description="Number of delivery attempts made.")
    cause_event_id: uuid.UUID = Field(description="event_id of the event that caused it.")
    failed_at: UtcDatetime = Field(description="When it was given up.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "notification_id": "f2a3b4c5-d6e7-4f8a-9b0c-1d2e3f4a5b6c",
                    "student_no": "20251234",
                    "template": "invitation",
                    "error": "SMTP 451 4.3.0 temporary failure",
                    "attempts": 5,
                    "cause_event_id": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                    "failed_at": "2025-08-01T04:00:00Z",
                }
            ]
        }
    )


_EVENTS: tuple[type[EventPayload], ...] = (
    StudentAdmitted,
    StudentParticularsUpdated,
    InvitationIssued,
    AccountActivated,
    IntakeScheduled,
    FormSubmitted,
    RegistrationStatusChanged,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationWithdrawn,
    DocumentUploaded,
    DocumentVerified,
    DocumentRejected,
    PhotoSubmitted,
    PhotoApproved,
    PhotoRejected,
    CardIssued,
    CardReadyForCollection,
    CardCollected,
    CardCancelled,
    NotificationSent,
    NotificationFailed,
)

CATALOGUE: dict[tuple[str, int], type[EventPayload]] = {
    (cls.event_type, cls.schema_version): cls for cls in _EVENTS
}
"""Every published payload, keyed by ``(event_type, schema_version)``."""

_REGISTRATION_OUTCOME = {"notifier", "card"}
_DOCUMENT_REVIEW = {"registration", "notifier"}
_PHOTO_REVIEW = {"registration", "card", "notifier"}
_CARD_PROGRESS = {"registration", "notifier"}

CONSUMERS: dict[str, set[str]] = {
    "StudentAdmitted": {"registration", "documents", "notifier", "card"},
    "StudentParticularsUpdated": {"registration", "documents", "notifier", "card"},
    "InvitationIssued": {"notifier"},
    "AccountActivated": {"registration", "notifier", "card"},
    "IntakeScheduled": {"identity", "notifier"},
    "FormSubmitted": {"documents", "notifier"},
    "RegistrationStatusChanged": set(_REGISTRATION_OUTCOME),
    "RegistrationCompleted": set(_REGISTRATION_OUTCOME),
    "RegistrationIncomplete": set(_REGISTRATION_OUTCOME),
    "RegistrationWithdrawn": set(_REGISTRATION_OUTCOME),
    "DocumentUploaded": set(_DOCUMENT_REVIEW),
    "DocumentVerified": set(_DOCUMENT_REVIEW),
    "DocumentRejected": set(_DOCUMENT_REVIEW),
    # The card office needs only the approved photo; the notifier mails the card's
    # collection slot, not its issue or hand-over.
    "PhotoSubmitted": {"registration", "notifier"},
    "PhotoApproved": set(_PHOTO_REVIEW),
    "PhotoRejected": {"registration", "notifier"},
    "CardIssued": {"registration"},
    "CardReadyForCollection": set(_CARD_PROGRESS),
    "CardCollected": {"registration"},
    "CardCancelled": set(),
    "NotificationSent": set(),
    "NotificationFailed": set(),
}
"""Which of the five services consume each event type (downstream teams not listed)."""


class UnknownEvent(LookupError):
    """The envelope names an event type, version or producer the catalogue does not know."""


def payload_class(event_type: str, version: int) -> type[EventPayload]:
    """The payload model of ``(event_type, version)``; raises :class:`UnknownEvent`."""
    try:
        return CATALOGUE[(event_type, version)]
    except KeyError:
        known = sorted(v for t, v in CATALOGUE if t == event_type)
        hint = f" (known versions: {known})" if known else ""
        raise UnknownEvent(f"unknown event {event_type!r} version {version}{hint}") from None


def parse_payload(envelope: Envelope) -> EventPayload:
    """Validate an envelope's payload against its catalogue model.

    Raises :class:`UnknownEvent` for an unknown type, version or a producer that
    does not own the type, and ``pydantic.ValidationError`` for a bad payload.
    Unknown payload fields are ignored.
    """
    cls = payload_class(envelope.event_type, envelope.schema_version)
    if envelope.producer != cls.producer:
        raise UnknownEvent(
            f"{envelope.event_type} is produced by {cls.producer!r}, not by {envelope.producer!r}"
        )
    return cls.model_validate(envelope.payload)


def events_by_producer() -> dict[str, list[type[EventPayload]]]:
    """Payload models grouped by producing service, every service present."""
    grouped: dict[str, list[type[EventPayload]]] = {service: [] for service in SERVICES}
    for cls in CATALOGUE.values():
        grouped[cls.producer].append(cls)
    return grouped


def consumed_by(service: str) -> set[str]:
    """The event types a service consumes, per :data:`CONSUMERS`."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return {event_type for event_type, services in CONSUMERS.items() if service in services}


def intake_subject(intake_year: int) -> str:
    """Envelope subject (and Kafka key) of intake-wide events."""
    return f"intake:{intake_year}"


def subject_of(payload: EventPayload) -> str:
    """The envelope subject of a payload: its student number, or ``intake:<year>``."""
    if isinstance(payload, IntakeScheduled):
        return intake_subject(payload.intake_year)
    student_no = getattr(payload, "student_no", None)
    if not isinstance(student_no, str):
        raise TypeError(f"{type(payload).__name__} has no subject")
    return student_no


def example_payload(cls: type[EventPayload]) -> EventPayload:
    """The first example of a payload model, validated."""
    extra = cls.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, Mapping) else None
    if not isinstance(examples, list) or not examples:
        raise ValueError(f"{cls.__name__} has no example")
    return cls.model_validate(examples[0])


__all__ = [
    "CATALOGUE",
    "CONSUMERS",
    "AccountActivated",
    "AdmissionRoute",
    "CardCollected",
    "CardIssued",
    "CardReadyForCollection",
    "DocumentRejected",
    "DocumentType",
    "DocumentUploaded",
    "DocumentVerified",
    "EmailAddress",
    "EmergencyContact",
    "FormSubmitted",
    "Gender",
    "IntakeScheduled",
    "InvitationIssued",
    "NotificationFailed",
    "NotificationSent",
    "OutstandingItem",
    "OutstandingState",
    "PhoneNumber",
    "PhotoApproved",
    "PhotoRejected",
    "PhotoSubmitted",
    "PostalAddress",
    "RegistrationCompleted",
    "RegistrationIncomplete",
    "RegistrationStatus",
    "RegistrationStatusChanged",
    "RegistrationWithdrawn",
    "Residency",
    "StudentAdmitted",
    "StudentNo",
    "StudentParticulars",
    "StudentParticularsUpdated",
    "StudyLevel",
    "UniversityEmail",
    "UnknownEvent",
    "UtcDatetime",
    "consumed_by",
    "events_by_producer",
    "example_payload",
    "intake_subject",
    "parse_payload",
    "payload_class",
    "subject_of",
]
