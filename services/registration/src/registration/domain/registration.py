"""The registration record of one admitted student: the aggregate.

It keeps *facts* (what each event said, keyed by document id/version or photo
id) and derives the checklist and status from them, so the same set of facts
gives the same checklist whatever order they arrived in. A verified document
version or approved photo stays verified (a later verdict on the same version
does not undo it), which keeps every item, and so the status, monotone.

Status (SPEC §3): In Progress -> Completed when every compulsory item is
verified; when the deadline is applied, In Progress -> Withdrawn if a compulsory
item is missing or rejected, else -> Incomplete (compulsory items uploaded count
as done); Incomplete -> Completed once the compulsory items are verified.
Completed and Withdrawn are final: a move out of them is refused (a no-op).

Every method returns the public events the change causes; it never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from opr_shared.events.catalogue import (
    AccountActivated,
    AdmissionRoute,
    CardCollected,
    CardIssued,
    CardReadyForCollection,
    DocumentRejected,
    DocumentType,
    DocumentUploaded,
    DocumentVerified,
    FormSubmitted,
    PhotoApproved,
    PhotoRejected,
    PhotoSubmitted,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationStatus,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    Residency,
    StudentAdmitted,
    StudentParticulars,
    StudentParticularsUpdated,
    StudyLevel,
)
from opr_shared.events.envelope import EventPayload

from registration.domain.checklist import (
    ACCOUNT,
    EXPIRING,
    FORM,
    PHOTO,
    RANK,
    ItemState,
    ItemStatus,
    Profile,
    Requirement,
    is_under_18,
    required_documents,
    requirements,
)
from registration.domain.form import FormFields, Problem, effective_form, submission_problems
from registration.domain.intake import Intake


class Status(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    WITHDRAWN = "withdrawn"


FINAL = frozenset({Status.COMPLETED, Status.WITHDRAWN})

PREFILLED = (
    "surname",
    "given_names",
    "chinese_name",
    "date_of_birth",
    "personal_email",
    "mobile",
)
RECORD = (
    "jupas_app_no",
    "programme_code",
    "programme_name",
    "intake_year",
    "admission_route",
    "study_level",
)


class AlreadySubmitted(Exception):
    """The form was submitted before; it is accepted once only."""

    def __init__(self, submitted_at: datetime) -> None:
        self.submitted_at = submitted_at
        super().__init__(
            f"the registration form was submitted on {submitted_at:%Y-%m-%d %H:%M} UTC and "
            "can be submitted only once; after submission, contact details are changed "
            "through the Student Information System"
        )


class FormRefused(Exception):
    """The form cannot be submitted as it stands."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))


class NotAdmitted(Exception):
    """No admitted student has this record yet (only events about them)."""


@dataclass(frozen=True)
class Cause:
    """What caused a change: an event type or a command, and its id if it has one."""

    kind: str
    ref: str | None = None


def new_registration(event: StudentAdmitted, at: datetime) -> dict[str, Any]:
    """The record a newly admitted student starts with: In Progress, form prefilled."""
    reg = Registration.stub(event.student_no, at)
    reg.admit(event, Intake(event.intake_year), at, Cause("StudentAdmitted"))
    return reg.doc


class Registration:
    """One student's registration; ``doc`` is its stored form (a MongoDB document)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    @classmethod
    def stub(cls, student_no: str, at: datetime) -> Registration:
        """A record holding facts about a student whose admission has not arrived yet."""
        return cls(
            {
                "_id": student_no,
                "status": None,
                "intake_year": None,
                "record": None,
                "prefill": None,
                "draft": {},
                "form": None,
                "submitted_at": None,
                "account": None,
                "documents": {},
                "photos": {},
                "card": None,
                "deadline_applied_at": None,
                "outstanding": [],
                "outstanding_items": [],
                "search_terms": [student_no],
                "created_at": at,
                "history": [],
            }
        )

    # -- reading ---------------------------------------------------------------

    @property
    def student_no(self) -> str:
        return str(self.doc["_id"])

    @property
    def status(self) -> Status | None:
        value = self.doc.get("status")
        return Status(value) if value else None

    @property
    def record(self) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.doc.get("record")
        return record

    @property
    def intake_year(self) -> int | None:
        year = self.doc.get("intake_year")
        return int(year) if year is not None else None

    @property
    def submitted(self) -> bool:
        return self.doc.get("form") is not None

    def form_view(self) -> dict[str, Any]:
        """The submitted form, or the prefilled form overlaid by the draft."""
        submitted: dict[str, Any] | None = self.doc.get("form")
        if submitted is not None:
            return submitted
        return effective_form(self.doc.get("prefill"), self.doc.get("draft"))

    def personal_email(self) -> str:
        form = self.form_view()
        email = form.get("personal_email") or (self.doc.get("prefill") or {}).get("personal_email")
        return str(email)

    def university_email(self) -> str | None:
        account = self.doc.get("account") or {}
        email = account.get("university_email")
        return str(email) if email else None

    def profile(self, intake: Intake) -> Profile:
        record = self.record or {}
        form = self.form_view()
        residency = Residency(form["residency"]) if form.get("residency") else None
        born = form.get("date_of_birth") or record.get("date_of_birth")
        if born is None:
            born = (self.doc.get("prefill") or {}).get("date_of_birth")
        under_18 = is_under_18(date.fromisoformat(str(born)), intake.cutoff) if born else False
        return Profile(
            residency=residency,
            under_18=under_18,
            route=AdmissionRoute(record.get("admission_route") or AdmissionRoute.JUPAS),
            study_level=StudyLevel(record.get("study_level") or StudyLevel.UNDERGRADUATE),
            particulars_changed=form.get("particulars_changed") is True,
            dependant_visa=residency is Residency.HK_NON_PERMANENT
            and form.get("dependant_visa") is True,
        )

    def requirements(self, intake: Intake) -> list[Requirement]:
        return requirements(self.profile(intake))

    def checklist(self, intake: Intake) -> list[ItemStatus]:
        """Every item the student must complete and where it stands."""
        return [self._item(r, intake) for r in self.requirements(intake)]

    def _item(self, r: Requirement, intake: Intake) -> ItemStatus:
        due = intake.due_by(r.compulsory)
        if r.item == ACCOUNT:
            done = self.doc.get("account") is not None
            return ItemStatus(r, ItemState.VERIFIED if done else ItemState.MISSING, due)
        if r.item == FORM:
            return ItemStatus(r, ItemState.VERIFIED if self.submitted else ItemState.MISSING, due)
        if r.item == PHOTO:
            state, reason, ref = self._photo_state()
            return ItemStatus(r, state, due, reason, ref)
        best = ItemStatus(r, ItemState.MISSING, due)
        for doc_type in r.accepts:
            state, reason, ref = self._document_state(doc_type, intake)
            if RANK[state] > RANK[best.state]:
                best = ItemStatus(r, state, due, reason, ref)
        return best

    def _document_state(
        self, doc_type: DocumentType, intake: Intake
    ) -> tuple[ItemState, str | None, str | None]:
        versions: dict[str, dict[str, Any]] = self.doc["documents"].get(doc_type.value, {})
        if not versions:
            return ItemState.MISSING, None, None
        judged = {
            int(v): self._version_state(doc_type, facts, intake) for v, facts in versions.items()
        }
        verified = [v for v, (state, _) in judged.items() if state is ItemState.VERIFIED]
        version = max(verified) if verified else max(judged)
        state, reason = judged[version]
        return state, reason, f"{doc_type.value} v{version}"

    @staticmethod
    def _version_state(
        doc_type: DocumentType, facts: dict[str, Any], intake: Intake
    ) -> tuple[ItemState, str | None]:
        if facts.get("verified_at") is not None:
            expiry = facts.get("expiry_date")
            cutoff = intake.validity_cutoff
            if doc_type in EXPIRING and expiry and date.fromisoformat(expiry) <= cutoff:
                return ItemState.REJECTED, (
                    f"the document expires on {expiry}, on or before {cutoff.day} {cutoff:%B %Y}: "
                    "a renewed document is required"
                )
            return ItemState.VERIFIED, None
        if facts.get("rejected_at") is not None:
            return ItemState.REJECTED, facts.get("reason")
        return ItemState.UPLOADED, None

    def _photo_state(self) -> tuple[ItemState, str | None, str | None]:
        photos: dict[str, dict[str, Any]] = self.doc["photos"]
        if not photos:
            return ItemState.MISSING, None, None
        approved = [pid for pid, p in photos.items() if p.get("approved_at") is not None]
        if approved:
            return ItemState.VERIFIED, None, f"photo {min(approved)}"

        def seen(item: tuple[str, dict[str, Any]]) -> tuple[datetime, str]:
            pid, p = item
            return (p.get("submitted_at") or p["rejected_at"], pid)

        pid, latest = max(photos.items(), key=seen)
        if latest.get("rejected_at") is not None:
            return ItemState.REJECTED, "; ".join(latest.get("reasons") or []), f"photo {pid}"
        return ItemState.UPLOADED, None, f"photo {pid}"

    # -- the roster ------------------------------------------------------------

    def admit(
        self, event: StudentParticulars, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        """Open the registration of an admitted student (a replay changes nothing)."""
        if self.record is not None:
            return []
        data = event.model_dump(mode="json")
        self.doc["record"] = {k: data[k] for k in RECORD} | {"date_of_birth": data["date_of_birth"]}
        self.doc["prefill"] = {k: data[k] for k in PREFILLED}
        self.doc["intake_year"] = event.intake_year
        self.doc["status"] = Status.IN_PROGRESS.value
        self._log(at, cause, "registration opened", to_status=Status.IN_PROGRESS)
        items = self.checklist(intake)
        events: list[EventPayload] = [
            RegistrationStatusChanged(
                student_no=self.student_no,
                intake_year=event.intake_year,
                from_status=None,
                to_status=RegistrationStatus.IN_PROGRESS,
                reason="registration_opened",
                outstanding=[i.outstanding() for i in items if i.state is not ItemState.VERIFIED],
                changed_at=at,
            )
        ]
        if intake.closed and self.doc.get("deadline_applied_at") is None:
            # Admitted after the intake was closed: the deadline has passed for them too.
            self.doc["deadline_applied_at"] = at
        return events + self._settle(intake, at, cause)

    def correct_particulars(
        self, event: StudentParticularsUpdated, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        """The roster corrected the particulars: the record and prefill follow."""
        if self.record is None:
            return self.admit(event, intake, at, cause)
        data = event.model_dump(mode="json")
        self.doc["record"] = {k: data[k] for k in RECORD} | {"date_of_birth": data["date_of_birth"]}
        self.doc["prefill"] = {k: data[k] for k in PREFILLED}
        self.doc["intake_year"] = event.intake_year
        self._log(at, cause, "particulars on record corrected: " + ", ".join(event.changed_fields))
        return self._settle(intake, at, cause)

    # -- the form --------------------------------------------------------------

    def save_draft(self, fields: FormFields, intake: Intake, at: datetime) -> None:
        """Merge the given fields into the draft; refused once the form is submitted."""
        self._require_admitted()
        if self.submitted:
            raise AlreadySubmitted(self.doc["submitted_at"])
        given = fields.model_dump(mode="json", exclude_unset=True)
        self.doc["draft"] = {**(self.doc.get("draft") or {}), **given}
        self._log(at, Cause("save_draft"), "draft saved: " + ", ".join(sorted(given)))
        self._refresh(intake)

    def submit(self, fields: FormFields | None, intake: Intake, at: datetime) -> list[EventPayload]:
        """Submit the form (once only): validates everything, publishes FormSubmitted."""
        self._require_admitted()
        if self.submitted:
            raise AlreadySubmitted(self.doc["submitted_at"])
        draft = {**(self.doc.get("draft") or {})}
        if fields is not None:
            draft.update(fields.model_dump(mode="json", exclude_unset=True))
        prefill = self.doc.get("prefill")
        form = effective_form(prefill, draft)
        problems = submission_problems(form, prefill)
        if problems:
            raise FormRefused(problems)
        self.doc["draft"] = draft
        self.doc["form"] = form
        self.doc["submitted_at"] = at
        reqs = self.requirements(intake)
        submitted = FormSubmitted(
            student_no=self.student_no,
            intake_year=self.intake_year or intake.year,
            submitted_at=at,
            surname=form["surname"],
            given_names=form["given_names"],
            chinese_name=form.get("chinese_name"),
            gender=form["gender"],
            date_of_birth=form["date_of_birth"],
            nationality=form["nationality"],
            residency=form["residency"],
            hkid_number=form.get("hkid_number"),
            travel_document_number=form.get("travel_document_number"),
            mobile=form["mobile"],
            personal_email=form["personal_email"],
            correspondence_address=form["correspondence_address"],
            emergency_contact=form["emergency_contact"],
            particulars_changed=form.get("particulars_changed") is True,
            change_reason=form.get("change_reason"),
            required_documents=required_documents(
                reqs,
                DocumentType(form["travel_document_type"])
                if form.get("travel_document_type")
                else None,
            ),
        )
        cause = Cause("submit_form")
        self._log(at, cause, "registration form submitted")
        return [submitted, *self._settle(intake, at, cause)]

    # -- progress from the other services --------------------------------------

    def account_activated(
        self, event: AccountActivated, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        self.doc["account"] = {
            "university_email": event.university_email,
            "activated_at": event.activated_at,
        }
        self._log(at, cause, "university account activated")
        return self._settle(intake, at, cause)

    def _version(self, doc_type: DocumentType, version: int) -> dict[str, Any]:
        by_type: dict[str, dict[str, Any]] = self.doc["documents"].setdefault(doc_type.value, {})
        facts: dict[str, Any] = by_type.setdefault(str(version), {})
        return facts

    def document_uploaded(
        self, event: DocumentUploaded, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        facts = self._version(event.doc_type, event.version)
        facts["document_id"] = str(event.document_id)
        facts["uploaded_at"] = event.uploaded_at
        self._log(at, cause, f"{event.doc_type.value} v{event.version} uploaded")
        return self._settle(intake, at, cause)

    def document_verified(
        self, event: DocumentVerified, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        facts = self._version(event.doc_type, event.version)
        facts["document_id"] = str(event.document_id)
        # The first verification of a version stands (verified is final).
        if facts.get("verified_at") is None or event.verified_at < facts["verified_at"]:
            facts["verified_at"] = event.verified_at
            facts["verified_by"] = event.verified_by
            facts["expiry_date"] = event.expiry_date.isoformat() if event.expiry_date else None
        self._log(at, cause, f"{event.doc_type.value} v{event.version} verified")
        return self._settle(intake, at, cause)

    def document_rejected(
        self, event: DocumentRejected, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        facts = self._version(event.doc_type, event.version)
        facts["document_id"] = str(event.document_id)
        # The latest rejection of a version gives the reason shown.
        latest = (event.rejected_at, event.reason)
        if facts.get("rejected_at") is None or latest > (facts["rejected_at"], facts["reason"]):
            facts["rejected_at"], facts["reason"] = latest
        self._log(at, cause, f"{event.doc_type.value} v{event.version} rejected: {event.reason}")
        return self._settle(intake, at, cause)

    def _photo(self, photo_id: str) -> dict[str, Any]:
        facts: dict[str, Any] = self.doc["photos"].setdefault(photo_id, {})
        return facts

    def photo_submitted(
        self, event: PhotoSubmitted, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        facts = self._photo(str(event.photo_id))
        facts["version"] = event.version
        facts["submitted_at"] = event.submitted_at
        self._log(at, cause, f"photo v{event.version} submitted")
        return self._settle(intake, at, cause)

    def photo_approved(
        self, event: PhotoApproved, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        facts = self._photo(str(event.photo_id))
        if facts.get("approved_at") is None or event.approved_at < facts["approved_at"]:
            facts["approved_at"] = event.approved_at
        self._log(at, cause, "photo approved")
        return self._settle(intake, at, cause)

    def photo_rejected(
        self, event: PhotoRejected, intake: Intake, at: datetime, cause: Cause
    ) -> list[EventPayload]:
        facts = self._photo(str(event.photo_id))
        latest = (event.rejected_at, list(event.reasons))
        if facts.get("rejected_at") is None or latest > (facts["rejected_at"], facts["reasons"]):
            facts["rejected_at"], facts["reasons"] = latest
        self._log(at, cause, "photo rejected: " + "; ".join(event.reasons))
        return self._settle(intake, at, cause)

    def card_progress(
        self,
        event: CardIssued | CardReadyForCollection | CardCollected,
        at: datetime,
        cause: Cause,
    ) -> None:
        """The card office's progress is kept for the staff view; it changes no status."""
        card: dict[str, Any] = self.doc.get("card") or {}
        if isinstance(event, CardIssued):
            card.setdefault("issued", {})[event.card_no] = event.issued_at
            detail = f"card {event.card_no} issued"
        elif isinstance(event, CardReadyForCollection):
            card.setdefault("slots", {})[event.card_no] = {
                "venue": event.venue,
                "starts_at": event.starts_at,
            }
            detail = f"card {event.card_no} ready for collection at {event.venue}"
        else:
            card.setdefault("collected", {})[event.card_no] = event.collected_at
            detail = f"card {event.card_no} collected"
        self.doc["card"] = card
        self._log(at, cause, detail)

    # -- the deadline ----------------------------------------------------------

    def apply_deadline(self, intake: Intake, at: datetime) -> list[EventPayload]:
        """The intake's deadline has passed: withdraw, or register as incomplete.

        Applying it again changes nothing.
        """
        if self.record is None or self.doc.get("deadline_applied_at") is not None:
            return []
        self.doc["deadline_applied_at"] = at
        cause = Cause("close_intake", str(intake.year))
        self._log(at, cause, "registration deadline applied")
        return self._settle(intake, at, cause)

    # -- status ----------------------------------------------------------------

    def _settle(self, intake: Intake, at: datetime, cause: Cause) -> list[EventPayload]:
        """Move the status as the facts now require; refresh what staff search by."""
        items = self._refresh(intake)
        status = self.status
        if status is None or status in FINAL:
            return []
        compulsory = [i for i in items if i.compulsory]
        if all(i.state is ItemState.VERIFIED for i in compulsory):
            return self._move(Status.COMPLETED, "all_verified", items, intake, at, cause)
        if status is Status.IN_PROGRESS and self.doc.get("deadline_applied_at") is not None:
            if any(i.state in (ItemState.MISSING, ItemState.REJECTED) for i in compulsory):
                return self._move(Status.WITHDRAWN, "deadline_passed", items, intake, at, cause)
            return self._move(
                Status.INCOMPLETE, "deadline_passed_items_outstanding", items, intake, at, cause
            )
        return []

    def _move(
        self,
        to: Status,
        reason: str,
        items: list[ItemStatus],
        intake: Intake,
        at: datetime,
        cause: Cause,
    ) -> list[EventPayload]:
        before = self.status
        self.doc["status"] = to.value
        self._log(at, cause, f"status {before} -> {to}: {reason}", before, to)
        outstanding = [i.outstanding() for i in items if i.state is not ItemState.VERIFIED]
        year = self.intake_year or intake.year
        changed = RegistrationStatusChanged(
            student_no=self.student_no,
            intake_year=year,
            from_status=RegistrationStatus(before.value) if before else None,
            to_status=RegistrationStatus(to.value),
            reason=reason,
            outstanding=outstanding,
            changed_at=at,
        )
        specific: EventPayload
        if to is Status.COMPLETED:
            specific = RegistrationCompleted(
                student_no=self.student_no,
                intake_year=year,
                university_email=self.university_email(),
                personal_email=self.personal_email(),
                outstanding=outstanding,
                completed_at=at,
            )
        elif to is Status.INCOMPLETE:
            specific = RegistrationIncomplete(
                student_no=self.student_no,
                intake_year=year,
                university_email=self.university_email(),
                personal_email=self.personal_email(),
                outstanding=outstanding,
                follow_up_by=intake.term_start or intake.deadline_day or at.date(),
                recorded_at=at,
            )
        else:
            specific = RegistrationWithdrawn(
                student_no=self.student_no,
                intake_year=year,
                personal_email=self.personal_email(),
                missing=[
                    i.outstanding()
                    for i in items
                    if i.compulsory and i.state in (ItemState.MISSING, ItemState.REJECTED)
                ],
                withdrawn_at=at,
            )
        return [changed, specific]

    # -- bookkeeping -----------------------------------------------------------

    def _require_admitted(self) -> None:
        if self.record is None:
            raise NotAdmitted(self.student_no)

    def _refresh(self, intake: Intake) -> list[ItemStatus]:
        items = self.checklist(intake)
        outstanding = [i for i in items if i.state is not ItemState.VERIFIED]
        self.doc["outstanding"] = [i.outstanding().model_dump(mode="json") for i in outstanding]
        self.doc["outstanding_items"] = [i.item for i in outstanding]
        self.doc["search_terms"] = self._search_terms()
        return items

    def _search_terms(self) -> list[str]:
        form = self.form_view()
        record = self.record or {}
        words = [
            self.student_no,
            record.get("jupas_app_no"),
            record.get("programme_code"),
            form.get("chinese_name"),
            form.get("personal_email"),
            (self.doc.get("prefill") or {}).get("personal_email"),
            self.university_email(),
        ]
        for name in ("surname", "given_names"):
            words += str(form.get(name) or "").split()
        return sorted({str(w).casefold() for w in words if w})

    def _log(
        self,
        at: datetime,
        cause: Cause,
        detail: str,
        from_status: Status | None = None,
        to_status: Status | None = None,
    ) -> None:
        entry: dict[str, Any] = {"at": at, "cause": cause.kind, "detail": detail}
        if cause.ref is not None:
            entry["ref"] = cause.ref
        if to_status is not None:
            entry["from_status"] = from_status.value if from_status else None
            entry["to_status"] = to_status.value
        self.doc["history"].append(entry)
