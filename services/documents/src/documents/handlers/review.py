"""Staff review uploads: registry officers verify or reject documents, the card
office approves or rejects photos."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, date, datetime

from opr_shared.events.catalogue import (
    DocumentRejected,
    DocumentType,
    DocumentVerified,
    PhotoApproved,
    PhotoRejected,
)
from opr_shared.store.mongo import Document, Transaction, UnitOfWork
from opr_shared.store.objects import ObjectStore

from documents.domain.photo import PhotoSpec, card_image, card_image_fits
from documents.domain.review import (
    ReviewRefused,
    ReviewStatus,
    check_verification,
    ensure_reviewable,
)
from documents.offload import STAFF, off_loop
from documents.store import CARD_IMAGE, DOCUMENTS, OWNERS, PHOTOS


async def _pending(tx: Transaction, collection: str, item_id: uuid.UUID, what: str) -> Document:
    row = await tx.db[collection].find_one({"_id": str(item_id)}, session=tx.session)
    if row is None:
        raise ReviewRefused(404, f"No such {what}.")
    ensure_reviewable(row["status"], what=what)
    return row


async def verify_document(
    uow: UnitOfWork, *, document_id: uuid.UUID, expiry_date: date | None, staff_id: str
) -> Document:
    """Verify the latest pending version of a document.

    Idempotency key: the document id with its state (only ``pending`` moves; a
    repeated verify is a 409 and publishes nothing). Side effects: the row
    becomes ``verified`` with the expiry date and the officer; DocumentVerified.
    """
    verified_at = datetime.now(UTC)

    async def work(tx: Transaction) -> Document:
        row = await _pending(tx, DOCUMENTS, document_id, "document")
        owner = await tx.db[OWNERS].find_one(
            {"_id": row["student_no"]}, {"intake_year": 1}, session=tx.session
        )
        if owner is None:  # uploads need an owner; kept for safety
            raise ReviewRefused(409, "The student's admission record is missing.")
        doc_type = DocumentType(row["doc_type"])
        check_verification(doc_type, expiry_date, int(owner["intake_year"]))
        changes = {
            "status": ReviewStatus.VERIFIED.value,
            "expiry_date": expiry_date.isoformat() if expiry_date else None,
            "reviewed_by": staff_id,
            "reviewed_at": verified_at,
        }
        await tx.db[DOCUMENTS].update_one(
            {"_id": row["_id"], "status": ReviewStatus.PENDING.value},
            {"$set": changes},
            session=tx.session,
        )
        tx.publish(
            DocumentVerified(
                document_id=document_id,
                student_no=row["student_no"],
                doc_type=doc_type,
                version=row["version"],
                expiry_date=expiry_date,
                verified_by=staff_id,
                verified_at=verified_at,
            ),
            subject=row["student_no"],
        )
        return row | changes

    return await uow.run(work)


async def reject_document(
    uow: UnitOfWork, *, document_id: uuid.UUID, reason: str, staff_id: str
) -> Document:
    """Reject the latest pending version of a document with a reason for the student.

    Idempotency key: the document id with its state (a repeated reject is a 409).
    Side effects: the row becomes ``rejected`` with the reason; DocumentRejected.
    """
    rejected_at = datetime.now(UTC)

    async def work(tx: Transaction) -> Document:
        row = await _pending(tx, DOCUMENTS, document_id, "document")
        changes = {
            "status": ReviewStatus.REJECTED.value,
            "reason": reason,
            "reviewed_by": staff_id,
            "reviewed_at": rejected_at,
        }
        await tx.db[DOCUMENTS].update_one(
            {"_id": row["_id"], "status": ReviewStatus.PENDING.value},
            {"$set": changes},
            session=tx.session,
        )
        tx.publish(
            DocumentRejected(
                document_id=document_id,
                student_no=row["student_no"],
                doc_type=DocumentType(row["doc_type"]),
                version=row["version"],
                reason=reason,
                rejected_by=staff_id,
                rejected_at=rejected_at,
            ),
            subject=row["student_no"],
        )
        return row | changes

    return await uow.run(work)


async def approve_photo(
    uow: UnitOfWork,
    objects: ObjectStore,
    spec: PhotoSpec,
    *,
    photo_id: uuid.UUID,
    staff_id: str,
) -> Document:
    """Approve the student's pending photo for the card.

    Idempotency key: the photo id with its state (a repeated approve is a 409).
    Side effects: the row becomes ``approved``; PhotoApproved carrying the
    normalised card JPEG inline, so the card service never reads this bucket.

    The card image is the one made when the photo was checked; a row without
    one, or with one made to other card dimensions, has it made now from the file.
    """
    row = await uow.db[PHOTOS].find_one({"_id": str(photo_id)})
    if row is None:
        raise ReviewRefused(404, "No such photo.")
    ensure_reviewable(row["status"], what="photo")
    made: bytes | None = row.get(CARD_IMAGE)
    if made is not None and card_image_fits(made, spec):
        image = made
    else:
        original = await objects.get(row["object_key"])
        image = await off_loop(card_image, original, spec, priority=STAFF)
    digest = hashlib.sha256(image).hexdigest()
    approved_at = datetime.now(UTC)

    async def work(tx: Transaction) -> Document:
        current = await _pending(tx, PHOTOS, photo_id, "photo")
        changes = {
            "status": ReviewStatus.APPROVED.value,
            "reviewed_by": staff_id,
            "reviewed_at": approved_at,
            "card_image_sha256": digest,
            "card_image_bytes": len(image),
        }
        await tx.db[PHOTOS].update_one(
            {"_id": current["_id"], "status": ReviewStatus.PENDING.value},
            {"$set": changes, "$unset": {CARD_IMAGE: ""}},
            session=tx.session,
        )
        current.pop(CARD_IMAGE, None)
        tx.publish(
            PhotoApproved(
                photo_id=photo_id,
                student_no=current["student_no"],
                approved_by=staff_id,
                approved_at=approved_at,
                card_image_jpeg_base64=base64.b64encode(image).decode("ascii"),
                card_image_sha256=digest,
            ),
            subject=current["student_no"],
        )
        return current | changes

    return await uow.run(work)


async def reject_photo(
    uow: UnitOfWork, *, photo_id: uuid.UUID, reason: str, staff_id: str
) -> Document:
    """Reject the student's pending photo with a reason; they may submit another.

    Idempotency key: the photo id with its state (a repeated reject is a 409).
    Side effects: the row becomes ``rejected``; PhotoRejected.
    """
    rejected_at = datetime.now(UTC)

    async def work(tx: Transaction) -> Document:
        row = await _pending(tx, PHOTOS, photo_id, "photo")
        changes = {
            "status": ReviewStatus.REJECTED.value,
            "reason": reason,
            "reviewed_by": staff_id,
            "reviewed_at": rejected_at,
        }
        await tx.db[PHOTOS].update_one(
            {"_id": row["_id"], "status": ReviewStatus.PENDING.value},
            {"$set": changes, "$unset": {CARD_IMAGE: ""}},
            session=tx.session,
        )
        row.pop(CARD_IMAGE, None)
        tx.publish(
            PhotoRejected(
                photo_id=photo_id,
                student_no=row["student_no"],
                reasons=[reason],
                rejected_by=staff_id,
                rejected_at=rejected_at,
            ),
            subject=row["student_no"],
        )
        return row | changes

    return await uow.run(work)
