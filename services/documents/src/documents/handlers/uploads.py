"""Students upload documents and card photos.

The file is written to the bucket first, under a key the service chooses
(``documents/<student_no>/<document_id>``, ``photos/<student_no>/<photo_id>``),
then the record and its event are committed in one transaction. If that
transaction fails, the object is left unreferenced (never listed, never served)
until the sweep removes it (``handlers.orphans``).
"""

from __future__ import annotations

import uuid
import weakref
from datetime import UTC, datetime
from typing import Any

from opr_shared.events.catalogue import (
    DocumentType,
    DocumentUploaded,
    PhotoRejected,
    PhotoSubmitted,
)
from opr_shared.store.mongo import Document, Transaction, UnitOfWork, update_by_id
from opr_shared.store.objects import ObjectStore

from documents.domain.content import InspectedFile
from documents.domain.photo import PhotoProblem
from documents.domain.review import ReviewStatus
from documents.store import CARD_IMAGE, DOCUMENTS, OWNERS, PHOTO_CHECKS, PHOTOS

SYSTEM = "system"


class NotAdmitted(Exception):
    """The student is not (yet) known to this service as admitted."""


# Students found admitted, per database: an owner record is never removed, so a
# student found once need not be looked up again. The last this many are kept
# (those uploading now; one forgotten is looked up again if they come back).
KNOWN_ADMITTED = 2_000
_known_admitted: weakref.WeakKeyDictionary[UnitOfWork, dict[str, None]] = (
    weakref.WeakKeyDictionary()
)


async def ensure_admitted(uow: UnitOfWork, student_no: str) -> None:
    """Raise :class:`NotAdmitted` unless the student's admission has reached this
    service (their owner record exists).

    Asked for every upload twice (before its body is read, and again as it is
    stored) and for every upload turned away while the service is busy; a
    student found admitted is remembered instead of looked up each time.
    """
    known = _known_admitted.setdefault(uow, {})
    if student_no in known:
        return
    if await uow.db[OWNERS].find_one({"_id": student_no}, {"_id": 1}) is None:
        raise NotAdmitted(student_no)
    known[student_no] = None
    if len(known) > KNOWN_ADMITTED:
        del known[next(iter(known))]


async def _next_version(tx: Transaction, student_no: str, counter: str) -> int:
    # The counter on the owner row serialises concurrent uploads of one student:
    # two transactions incrementing it conflict and one is retried.
    owner = await update_by_id(
        tx.db[OWNERS],
        student_no,
        {"$inc": {counter: 1}},
        projection={"versions": 1, "photo_version": 1},
        session=tx.session,
    )
    if owner is None:
        raise NotAdmitted(student_no)
    value: object = owner
    for part in counter.split("."):
        value = value[part] if isinstance(value, dict) else None
    if not isinstance(value, int):
        raise RuntimeError(f"version counter {counter} is not a number")
    return value


async def upload_document(
    uow: UnitOfWork,
    objects: ObjectStore,
    *,
    student_no: str,
    doc_type: DocumentType,
    data: bytes,
    inspected: InspectedFile,
    filename: str | None,
) -> tuple[Document, bool]:
    """Store a new version of one of the student's documents; answer the row and
    whether it is new.

    Idempotency key: the file's content. The same bytes sent again for a type
    whose latest version is still waiting for review (a retry after a lost
    answer, a double click) answer that version and change nothing. Otherwise
    every upload is a new version (the ``(student_no, doc_type, version)``
    index keeps versions unique). Side effects: one object in the bucket; a
    ``documents`` row (pending); earlier pending versions of the type become
    superseded (only the latest is reviewed); the owner's version counter;
    DocumentUploaded.
    """
    await ensure_admitted(uow, student_no)
    same = {
        "student_no": student_no,
        "doc_type": doc_type.value,
        "status": ReviewStatus.PENDING.value,
        "sha256": inspected.sha256,
    }
    pending = await uow.db[DOCUMENTS].find_one(same)
    if pending is not None:
        return pending, False
    document_id = uuid.uuid4()
    key = f"documents/{student_no}/{document_id}"
    await objects.put(key, data, inspected.content_type.value)
    now = datetime.now(UTC)
    # At the database's precision, so this answer and later reads agree.
    uploaded_at = now.replace(microsecond=now.microsecond // 1000 * 1000)

    async def work(tx: Transaction) -> tuple[Document, bool]:
        version = await _next_version(tx, student_no, f"versions.{doc_type.value}")
        # A concurrent copy committed first (the counter serialised the two).
        raced = await tx.db[DOCUMENTS].find_one(same, session=tx.session)
        if raced is not None:
            return raced, False
        await tx.db[DOCUMENTS].update_many(
            {"student_no": student_no, "doc_type": doc_type.value, "status": ReviewStatus.PENDING},
            {"$set": {"status": ReviewStatus.SUPERSEDED, "superseded_by": str(document_id)}},
            session=tx.session,
        )
        row: Document = {
            "_id": str(document_id),
            "student_no": student_no,
            "doc_type": doc_type.value,
            "version": version,
            "status": ReviewStatus.PENDING.value,
            "content_type": inspected.content_type.value,
            "size_bytes": inspected.size_bytes,
            "sha256": inspected.sha256,
            "pages": inspected.pages,
            "width": inspected.width,
            "height": inspected.height,
            "filename": filename,
            "object_key": key,
            "uploaded_at": uploaded_at,
        }
        await tx.db[DOCUMENTS].insert_one(row, session=tx.session)
        tx.publish(
            DocumentUploaded(
                document_id=document_id,
                student_no=student_no,
                doc_type=doc_type,
                version=version,
                content_type=inspected.content_type.value,
                size_bytes=inspected.size_bytes,
                sha256=inspected.sha256,
                uploaded_at=uploaded_at,
            ),
            subject=student_no,
        )
        return row, True

    return await uow.run(work)


async def submit_photo(
    uow: UnitOfWork,
    objects: ObjectStore,
    *,
    student_no: str,
    data: bytes,
    inspected: InspectedFile,
    width: int,
    height: int,
    filename: str | None,
    checks: dict[str, Any] | None = None,
    card_image: bytes | None = None,
) -> Document:
    """Store a card photo that passed the automatic checks, for the card office.

    ``card_image``, made as the photo was checked, is kept on the row for the
    approval (which otherwise reads the file back and makes it then).

    Idempotency key: none: every submission is a new version (unique
    ``(student_no, version)``). Side effects: one object in the bucket; a
    ``photos`` row (pending); an earlier pending photo becomes superseded; the
    owner's photo version counter; PhotoSubmitted.
    """
    await ensure_admitted(uow, student_no)
    photo_id = uuid.uuid4()
    key = f"photos/{student_no}/{photo_id}"
    await objects.put(key, data, inspected.content_type.value)
    submitted_at = datetime.now(UTC)

    async def work(tx: Transaction) -> Document:
        version = await _next_version(tx, student_no, "photo_version")
        await tx.db[PHOTOS].update_many(
            {"student_no": student_no, "status": ReviewStatus.PENDING},
            {
                "$set": {"status": ReviewStatus.SUPERSEDED, "superseded_by": str(photo_id)},
                "$unset": {CARD_IMAGE: ""},
            },
            session=tx.session,
        )
        row: Document = {
            "_id": str(photo_id),
            "student_no": student_no,
            "version": version,
            "status": ReviewStatus.PENDING.value,
            "content_type": inspected.content_type.value,
            "size_bytes": inspected.size_bytes,
            "sha256": inspected.sha256,
            "width": width,
            "height": height,
            "filename": filename,
            "object_key": key,
            "submitted_at": submitted_at,
        }
        if checks is not None:
            row["checks"] = checks
        if card_image is not None:
            row[CARD_IMAGE] = card_image
        await tx.db[PHOTOS].insert_one(row, session=tx.session)
        tx.publish(
            PhotoSubmitted(
                photo_id=photo_id,
                student_no=student_no,
                version=version,
                width=width,
                height=height,
                content_type=inspected.content_type.value,
                size_bytes=inspected.size_bytes,
                sha256=inspected.sha256,
                submitted_at=submitted_at,
            ),
            subject=student_no,
        )
        return row

    return await uow.run(work)


async def record_photo_refusal(
    uow: UnitOfWork, *, student_no: str, sha256: str, problems: tuple[PhotoProblem, ...]
) -> Document:
    """Record a photo the automatic checks refused; its file is not kept.

    Idempotency key: none (each attempt is its own row). Side effects: a
    ``photo_checks`` row; PhotoRejected (``rejected_by`` ``system``) only when
    the student has no photo awaiting review or approved, so a failed retry never
    contradicts a photo that is still valid.
    """
    await ensure_admitted(uow, student_no)
    check_id = uuid.uuid4()
    checked_at = datetime.now(UTC)

    async def work(tx: Transaction) -> Document:
        standing = await tx.db[PHOTOS].find_one(
            {
                "student_no": student_no,
                "status": {"$in": [ReviewStatus.PENDING.value, ReviewStatus.APPROVED.value]},
            },
            {"_id": 1},
            session=tx.session,
        )
        row: Document = {
            "_id": str(check_id),
            "student_no": student_no,
            "sha256": sha256,
            "reasons": [p.code for p in problems],
            "checked_at": checked_at,
            "published": standing is None,
        }
        await tx.db[PHOTO_CHECKS].insert_one(row, session=tx.session)
        if standing is None:
            tx.publish(
                PhotoRejected(
                    photo_id=check_id,
                    student_no=student_no,
                    reasons=[p.message for p in problems],
                    rejected_by=SYSTEM,
                    rejected_at=checked_at,
                ),
                subject=student_no,
            )
        return row

    return await uow.run(work)
