"""The consumed events that make a student eligible for a card, or not.

Each handler records one fact on the card holder and then settles: the card is
issued in whichever handler completes the three facts (particulars, completed
registration, approved photo), so the arrival order does not matter. Every
handler runs in the consumer's transaction with the event's processed mark, so a
redelivered event changes nothing; a different event carrying the same fact is a
no-op of the aggregate, and a holder it leaves as stored is not written again
(the generic status event and the specific one both arrive for every change).
A new card's collection slot is booked just after, in a transaction of its own
(:class:`card.handlers.issuing.Issuing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from opr_shared.events.catalogue import (
    AccountActivated,
    PhotoApproved,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationStatus,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    StudentAdmitted,
    StudentParticulars,
    StudentParticularsUpdated,
)
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from card.domain.card import Particulars, Photo
from card.handlers.issuing import Issuing
from card.store import holders
from card.store.files import Bucket, photo_key


def particulars_of(event: StudentParticulars) -> Particulars:
    return Particulars(
        surname=event.surname,
        given_names=event.given_names,
        chinese_name=event.chinese_name,
        programme_code=event.programme_code,
        programme_name=event.programme_name,
        intake_year=event.intake_year,
        study_level=event.study_level.value,
    )


@dataclass
class Eligibility:
    """The handlers, with what they share: the issuing of cards and the bucket that
    keeps approved photos."""

    issuing: Issuing
    bucket: Bucket

    async def on_student_admitted(
        self, tx: Transaction, envelope: Envelope, event: StudentAdmitted
    ) -> None:
        """Idempotency key: event id (guard); student number (particulars already known
        are kept). Side effects: the card-holder record; a card (CardIssued) if the
        other facts arrived first (its slot offer follows, see Issuing)."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        holder.admit(particulars_of(event))
        await self.issuing.settle(tx, holder, [], datetime.now(UTC), stored=stored)

    async def on_student_particulars_updated(
        self, tx: Transaction, envelope: Envelope, event: StudentParticularsUpdated
    ) -> None:
        """Idempotency key: event id (guard); equal particulars change nothing. Side
        effects: the particulars printed on cards issued from now on (an issued card is
        not reprinted for a corrected name: the card office reissues on a new photo)."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        holder.correct_particulars(particulars_of(event))
        await self.issuing.settle(tx, holder, [], datetime.now(UTC), stored=stored)

    async def on_registration_completed(
        self, tx: Transaction, envelope: Envelope, event: RegistrationCompleted
    ) -> None:
        """Idempotency key: event id (guard); a completed or withdrawn registration
        ignores it. Side effects: registration marked completed; CardIssued if the
        particulars and an approved photo are known (CardReadyForCollection follows)."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        holder.complete_registration()
        await self.issuing.settle(tx, holder, [], datetime.now(UTC), stored=stored)

    async def on_registration_withdrawn(
        self, tx: Transaction, envelope: Envelope, event: RegistrationWithdrawn
    ) -> None:
        """Idempotency key: event id (guard); withdrawing twice changes nothing. Side
        effects: no card will ever be issued; an issued card is cancelled and its
        collection slot released (no event: the catalogue has no cancellation yet)."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        events = holder.withdraw()
        await self.issuing.settle(tx, holder, events, datetime.now(UTC), stored=stored)

    async def on_registration_incomplete(
        self, tx: Transaction, envelope: Envelope, event: RegistrationIncomplete
    ) -> None:
        """Idempotency key: event id (guard); only a pending registration changes. Side
        effects: registration marked incomplete (no card until a completion)."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        holder.mark_incomplete()
        await self.issuing.settle(tx, holder, [], datetime.now(UTC), stored=stored)

    async def on_registration_status_changed(
        self, tx: Transaction, envelope: Envelope, event: RegistrationStatusChanged
    ) -> None:
        """The generic status event carries the same facts as the specific ones; applying
        a fact twice is a no-op, so whichever of the two arrives first decides.
        Idempotency key: event id (guard) and the aggregate's transitions. Side effects:
        as on_registration_completed / on_registration_withdrawn."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        events = []
        if event.to_status is RegistrationStatus.COMPLETED:
            holder.complete_registration()
        elif event.to_status is RegistrationStatus.INCOMPLETE:
            holder.mark_incomplete()
        elif event.to_status is RegistrationStatus.WITHDRAWN:
            events = holder.withdraw()
        await self.issuing.settle(tx, holder, events, datetime.now(UTC), stored=stored)

    async def on_account_activated(
        self, tx: Transaction, envelope: Envelope, event: AccountActivated
    ) -> None:
        """Idempotency key: event id (guard); the same address changes nothing. Side
        effects: the university email on the card record (shown to the card office)."""
        holder, stored = await holders.load_for_change(tx, event.student_no)
        holder.activate_account(event.university_email)
        await self.issuing.settle(tx, holder, [], datetime.now(UTC), stored=stored)

    async def on_photo_approved(
        self, tx: Transaction, envelope: Envelope, event: PhotoApproved
    ) -> None:
        """Idempotency key: event id (guard); photo id (the same or an older approval
        changes nothing). Side effects: the image in the card bucket under its
        SHA-256 (rewriting it on a retry writes the same bytes); CardIssued (a
        reissue, with replaces_card_no, if a card exists for another photo); the
        reissued card keeps its slot (CardReadyForCollection again), a first card's
        offer follows."""
        key = photo_key(event.student_no, event.card_image_sha256)
        photo = Photo(
            photo_id=str(event.photo_id),
            sha256=event.card_image_sha256,
            approved_at=event.approved_at,
            key=key,
        )
        holder, stored = await holders.load_for_change(tx, event.student_no)
        if holder.approve_photo(photo):
            await self.bucket.put(key, event.card_image(), "image/jpeg")
        await self.issuing.settle(tx, holder, [], datetime.now(UTC), stored=stored)
