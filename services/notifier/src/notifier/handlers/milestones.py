"""One handler per consumed event: the contacts and calendar projections, the
checklist progress behind reminders, and one notification per milestone.

Every handler runs in the consumer's transaction, which also records the
event's id: a redelivered event, or a dead letter replayed after it was
handled, is a no-op, and a handler retried after a conflict starts from a
rolled-back transaction. So a message is queued without first looking for an
earlier copy; the notification's ``dedupe_key`` (cause event id + template,
unique index) is the second guard, refusing a copy should one ever be queued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opr_shared.events.catalogue import (
    AccountActivated,
    CardReadyForCollection,
    DocumentRejected,
    DocumentUploaded,
    DocumentVerified,
    FormSubmitted,
    IntakeScheduled,
    InvitationIssued,
    PhotoApproved,
    PhotoRejected,
    PhotoSubmitted,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    StudentAdmitted,
    StudentParticulars,
    StudentParticularsUpdated,
)
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from notifier.domain import messages as m
from notifier.domain.messages import House
from notifier.domain.progress import apply_item, apply_status, may_leave_summary, new_progress
from notifier.domain.wording import HONG_KONG, day, item_label, outstanding_lines, when
from notifier.handlers.queueing import Known, contact_of, queue, release_parked
from notifier.store import CONTACTS, INTAKES, PROGRESS


def _items(items: list[Any]) -> list[dict[str, Any]]:
    return [i.model_dump(mode="json") for i in items]


class Milestones:
    """The handlers, bound to what every message may point to (portal, enquiries)."""

    def __init__(self, house: House) -> None:
        self.house = house

    # --- contacts and calendar ------------------------------------------------

    async def on_student_admitted(
        self, tx: Transaction, envelope: Envelope, event: StudentAdmitted
    ) -> None:
        """Idempotency key: event id. Side effects: records the student's names,
        personal address and intake (unless newer particulars are on record) and
        releases notifications that waited for them."""
        await self._particulars(tx, envelope, event)

    async def on_student_particulars_updated(
        self, tx: Transaction, envelope: Envelope, event: StudentParticularsUpdated
    ) -> None:
        """Idempotency key: event id. Side effects: as on_student_admitted, with the
        corrected particulars; messages already rendered are not changed."""
        await self._particulars(tx, envelope, event)

    async def _particulars(
        self, tx: Transaction, envelope: Envelope, event: StudentParticulars
    ) -> None:
        at = envelope.occurred_at
        fields = {
            "surname": event.surname,
            "given_names": event.given_names,
            "chinese_name": event.chinese_name,
            "personal_email": event.personal_email,
            "intake_year": event.intake_year,
            "particulars_at": at,
        }
        contact = await contact_of(tx, event.student_no)
        # Only the newest particulars win, whatever order they arrive in.
        written = await tx.db[CONTACTS].update_one(
            {
                "_id": event.student_no,
                # Absent or not newer (one clause, so the lookup stays on _id).
                "particulars_at": {"$not": {"$gt": at}},
            },
            {"$set": fields},
            upsert=contact is None,
            session=tx.session,
        )
        if written.matched_count or written.upserted_id is not None:
            contact = {**(contact or {"_id": event.student_no}), **fields}
        await release_parked(tx, event.student_no, self.house, Known(contact))

    async def on_account_activated(
        self, tx: Transaction, envelope: Envelope, event: AccountActivated
    ) -> None:
        """Idempotency key: event id; (event id, template) for the message. Side
        effects: records the university address; queues "account activated" to
        both addresses; releases waiting notifications."""
        contact = await contact_of(tx, event.student_no)
        fields: dict[str, Any] = {"university_email": event.university_email}
        if contact is None:
            fields["personal_email"] = event.personal_email
        await tx.db[CONTACTS].update_one(
            {"_id": event.student_no}, {"$set": fields}, upsert=True, session=tx.session
        )
        known = Known({**(contact or {"_id": event.student_no}), **fields})
        await queue(
            tx,
            look_first=False,
            kind=m.ACCOUNT_ACTIVATED,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "university_email": event.university_email,
                "activated_at": when(event.activated_at),
            },
            given={
                "university_email": event.university_email,
                "personal_email": event.personal_email,
            },
            house=self.house,
            known=known,
        )
        await release_parked(tx, event.student_no, self.house, known)

    async def on_intake_scheduled(
        self, tx: Transaction, envelope: Envelope, event: IntakeScheduled
    ) -> None:
        """Idempotency key: event id. Side effects: records the intake's deadline and
        term start if newer than what is on record (used by reminders and by later
        messages; messages already rendered keep their dates)."""
        at = envelope.occurred_at
        selector = {
            "_id": event.intake_year,
            "scheduled_at": {"$not": {"$gt": at}},
        }
        exists = await tx.db[INTAKES].find_one(
            {"_id": event.intake_year}, {"_id": 1}, session=tx.session
        )
        await tx.db[INTAKES].update_one(
            selector,
            {
                "$set": {
                    "registration_deadline": event.registration_deadline,
                    "term_start": event.term_start.isoformat(),
                    "scheduled_at": at,
                }
            },
            upsert=exists is None,
            session=tx.session,
        )

    # --- checklist progress, for reminders ------------------------------------

    async def _progress_item(
        self, tx: Transaction, student_no: str, key: str, state: str, at: datetime
    ) -> None:
        if may_leave_summary(state):
            # One write where the student's progress exists and has nothing newer
            # on the item; otherwise (no progress yet, or an older observation
            # arriving late) read, apply and replace as below.
            item = f"items.{key}"
            written = await tx.db[PROGRESS].update_one(
                {"_id": student_no, f"{item}.as_of": {"$not": {"$gt": at}}},
                {"$set": {f"{item}.state": state, f"{item}.as_of": at}},
                session=tx.session,
            )
            if written.matched_count:
                return
        current = await tx.db[PROGRESS].find_one({"_id": student_no}, session=tx.session)
        updated = apply_item(current or new_progress(student_no), key, state, at)
        await tx.db[PROGRESS].replace_one(
            {"_id": student_no}, updated, upsert=True, session=tx.session
        )

    async def on_registration_status_changed(
        self, tx: Transaction, envelope: Envelope, event: RegistrationStatusChanged
    ) -> None:
        """Idempotency key: event id. Side effects: updates the student's checklist
        progress (status, outstanding items) used by deadline reminders."""
        current = await tx.db[PROGRESS].find_one({"_id": event.student_no}, session=tx.session)
        updated = apply_status(
            current or new_progress(event.student_no),
            intake_year=event.intake_year,
            status=event.to_status.value,
            outstanding=_items(event.outstanding),
            at=event.changed_at,
        )
        await tx.db[PROGRESS].replace_one(
            {"_id": event.student_no}, updated, upsert=True, session=tx.session
        )

    async def on_document_uploaded(
        self, tx: Transaction, envelope: Envelope, event: DocumentUploaded
    ) -> None:
        """Idempotency key: event id. Side effects: the item is no longer missing."""
        await self._progress_item(
            tx, event.student_no, event.doc_type.value, "uploaded", event.uploaded_at
        )

    async def on_document_verified(
        self, tx: Transaction, envelope: Envelope, event: DocumentVerified
    ) -> None:
        """Idempotency key: event id. Side effects: the item is done."""
        await self._progress_item(
            tx, event.student_no, event.doc_type.value, "done", event.verified_at
        )

    async def on_photo_submitted(
        self, tx: Transaction, envelope: Envelope, event: PhotoSubmitted
    ) -> None:
        """Idempotency key: event id. Side effects: the photo is no longer missing."""
        await self._progress_item(tx, event.student_no, "photo", "uploaded", event.submitted_at)

    async def on_photo_approved(
        self, tx: Transaction, envelope: Envelope, event: PhotoApproved
    ) -> None:
        """Idempotency key: event id. Side effects: the photo item is done."""
        await self._progress_item(tx, event.student_no, "photo", "done", event.approved_at)

    # --- milestones -------------------------------------------------------------

    async def on_invitation_issued(
        self, tx: Transaction, envelope: Envelope, event: InvitationIssued
    ) -> None:
        """Idempotency key: (event id, template). Side effects: queues the invitation
        to the personal address named in the event; delivery happens after commit."""
        await queue(
            tx,
            look_first=False,
            kind=m.INVITATION,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "surname": event.surname,
                "given_names": event.given_names,
                "chinese_name": event.chinese_name,
                "activation_url": event.activation_url,
                "expires_at": when(event.activation_expires_at),
                "registration_deadline": (
                    when(event.registration_deadline) if event.registration_deadline else None
                ),
                "term_start": day(event.term_start) if event.term_start else None,
            },
            given={"personal_email": event.personal_email},
            house=self.house,
        )

    async def on_form_submitted(
        self, tx: Transaction, envelope: Envelope, event: FormSubmitted
    ) -> None:
        """Idempotency key: (event id, template). Side effects: the form item is done;
        queues "form received" to the address on the form (and the university one).
        Identity numbers on the form are neither kept nor logged."""
        await self._progress_item(
            tx, event.student_no, "registration_form", "done", event.submitted_at
        )
        await queue(
            tx,
            look_first=False,
            kind=m.FORM_RECEIVED,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "surname": event.surname,
                "given_names": event.given_names,
                "chinese_name": event.chinese_name,
                "submitted_at": when(event.submitted_at),
                "required_documents": [item_label(d.value) for d in event.required_documents],
            },
            given={"personal_email": event.personal_email},
            house=self.house,
        )

    async def on_document_rejected(
        self, tx: Transaction, envelope: Envelope, event: DocumentRejected
    ) -> None:
        """Idempotency key: (event id, template). Side effects: the item is owed again;
        queues "document rejected" with the reason and how to upload again."""
        await self._progress_item(
            tx, event.student_no, event.doc_type.value, "rejected", event.rejected_at
        )
        label = item_label(event.doc_type.value)
        await queue(
            tx,
            look_first=False,
            kind=m.DOCUMENT_REJECTED,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "document_en": label["en"],
                "document_zh": label["zh"],
                "reason": event.reason,
                "rejected_at": when(event.rejected_at),
            },
            given={},
            house=self.house,
        )

    async def on_photo_rejected(
        self, tx: Transaction, envelope: Envelope, event: PhotoRejected
    ) -> None:
        """Idempotency key: (event id, template). Side effects: the photo is owed
        again; queues "photo rejected" with the reasons and the term start."""
        await self._progress_item(tx, event.student_no, "photo", "rejected", event.rejected_at)
        await queue(
            tx,
            look_first=False,
            kind=m.PHOTO_REJECTED,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={"reasons": list(event.reasons), "rejected_at": when(event.rejected_at)},
            given={},
            house=self.house,
        )

    async def on_registration_completed(
        self, tx: Transaction, envelope: Envelope, event: RegistrationCompleted
    ) -> None:
        """Idempotency key: (event id, template). Side effects: queues the
        acknowledgement to the university and personal addresses, listing what is
        outstanding."""
        await queue(
            tx,
            look_first=False,
            kind=m.REGISTRATION_COMPLETED,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "completed_at": when(event.completed_at),
                "outstanding": outstanding_lines(_items(event.outstanding)),
            },
            given={
                "university_email": event.university_email,
                "personal_email": event.personal_email,
            },
            house=self.house,
        )

    async def on_registration_incomplete(
        self, tx: Transaction, envelope: Envelope, event: RegistrationIncomplete
    ) -> None:
        """Idempotency key: (event id, template). Side effects: queues the follow-up
        action e-mail listing the supplementary items and their final date."""
        await queue(
            tx,
            look_first=False,
            kind=m.REGISTRATION_INCOMPLETE,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "outstanding": outstanding_lines(_items(event.outstanding)),
                "follow_up_by": day(event.follow_up_by),
            },
            given={
                "university_email": event.university_email,
                "personal_email": event.personal_email,
            },
            house=self.house,
        )

    async def on_registration_withdrawn(
        self, tx: Transaction, envelope: Envelope, event: RegistrationWithdrawn
    ) -> None:
        """Idempotency key: (event id, template). Side effects: queues the withdrawal
        notice, with the compulsory items not done, to the personal address."""
        await queue(
            tx,
            look_first=False,
            kind=m.REGISTRATION_WITHDRAWN,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "missing": outstanding_lines(_items(event.missing)),
                "withdrawn_at": when(event.withdrawn_at),
            },
            given={"personal_email": event.personal_email},
            house=self.house,
        )

    async def on_card_ready_for_collection(
        self, tx: Transaction, envelope: Envelope, event: CardReadyForCollection
    ) -> None:
        """Idempotency key: (event id, template); a re-booked slot is a new event and
        a new message. Side effects: queues "card ready" with the slot, venue and
        what to bring (not the card number: the student does not need it)."""
        starts = event.starts_at.astimezone(HONG_KONG)
        ends = event.ends_at.astimezone(HONG_KONG)
        await queue(
            tx,
            look_first=False,
            kind=m.CARD_READY,
            student_no=event.student_no,
            cause_id=envelope.event_id,
            facts={
                "venue": event.venue,
                "collection_date": day(starts.date()),
                "window": f"{starts:%H:%M} to {ends:%H:%M} (HKT)",
                "bring": list(event.bring),
            },
            given={},
            house=self.house,
        )
