"""Documents' collections and their indexes (every query path has one).

- ``owners``: one per admitted student (who may upload, intake year) and the
  per-student version counters (``versions.<doc_type>``, ``photo_version``).
- ``documents``: one per uploaded version; the file is in the bucket under
  ``object_key`` (chosen by the service).
- ``photos``: one per stored card photo version; while it waits for the card
  office, its card image too (``card_image``, made as the photo was checked),
  removed once the photo is approved, rejected or superseded.
- ``photo_checks``: automatic photo refusals (no file kept), for the record.
- ``content_links``: short-lived links for staff to open a file; only the
  SHA-256 of the link token is stored; expired rows are removed by a TTL index.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

OWNERS = "owners"
DOCUMENTS = "documents"
PHOTOS = "photos"
PHOTO_CHECKS = "photo_checks"
CONTENT_LINKS = "content_links"

#: A pending photo's card image (JPEG bytes), until the card office decides.
CARD_IMAGE = "card_image"
#: A projection leaving it out, for reads that list photos.
WITHOUT_CARD_IMAGE = {CARD_IMAGE: 0}

INDEXES: dict[str, list[IndexModel]] = {
    OWNERS: [IndexModel([("intake_year", ASCENDING)])],
    DOCUMENTS: [
        # Versions, and superseding the pending ones of a type.
        IndexModel(
            [("student_no", ASCENDING), ("doc_type", ASCENDING), ("version", ASCENDING)],
            unique=True,
        ),
        # The student's list, newest first.
        IndexModel([("student_no", ASCENDING), ("uploaded_at", DESCENDING)]),
        # The staff queue, oldest first.
        IndexModel([("status", ASCENDING), ("uploaded_at", ASCENDING)]),
    ],
    PHOTOS: [
        IndexModel([("student_no", ASCENDING), ("version", ASCENDING)], unique=True),
        IndexModel([("student_no", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("submitted_at", ASCENDING)]),
    ],
    PHOTO_CHECKS: [IndexModel([("student_no", ASCENDING), ("checked_at", DESCENDING)])],
    CONTENT_LINKS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
}
