"""The documents HTTP API (thin: parse, authorise, call a use case, answer)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opr_shared.auth import Principal, Role, current_principal, current_student, verifier_of
from opr_shared.events.catalogue import DocumentType
from opr_shared.runtime import ServiceRuntime
from opr_shared.store.objects import ObjectStore

from documents.api.body import read_upload
from documents.api.budget import UploadBudget
from documents.api.schemas import (
    Age,
    ContentLinkOut,
    DocumentOut,
    PhotoChecks,
    PhotoOut,
    QueueItem,
    QueueOut,
    RejectIn,
    VerifyIn,
)
from documents.domain.content import (
    DOCUMENT_TYPES,
    ContentLimits,
    UploadRefused,
    display_name,
    inspect_file,
)
from documents.domain.photo import PhotoSpec, inspect_photo
from documents.domain.review import ReviewRefused
from documents.handlers import links, queue, review, uploads
from documents.offload import off_loop
from documents.store import CONTENT_LINKS, DOCUMENTS, PHOTOS, WITHOUT_CARD_IMAGE

log = logging.getLogger(__name__)

DOCUMENT_REVIEWERS = frozenset({Role.REGISTRY_OFFICER, Role.ADMIN})
PHOTO_REVIEWERS = frozenset({Role.CARD_OFFICE, Role.ADMIN})
PHOTO_VIEWERS = frozenset({Role.CARD_OFFICE, Role.ADMIN, Role.REGISTRY_OFFICER})
STATUS_PATTERN = "^(pending|verified|approved|rejected|superseded)$"
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}

Student = Annotated[Principal, Depends(current_student)]
AnyUser = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class UploadRules:
    document_limits: ContentLimits
    photo_limits: ContentLimits
    photo_spec: PhotoSpec
    link_ttl: timedelta
    budget: UploadBudget


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _objects(request: Request) -> ObjectStore:
    objects = _runtime(request).objects
    if objects is None:
        raise RuntimeError("the documents service runs with a bucket")
    return objects


def _refused(exc: UploadRefused) -> HTTPException:
    return HTTPException(exc.status, {"code": exc.code.value, "message": exc.reason})


def _review_refused(exc: ReviewRefused) -> HTTPException:
    return HTTPException(exc.status, exc.reason)


#: When to try again after a 409 "not admitted yet": admissions reach this service
#: seconds after identity publishes them, later at the start of a large intake.
NOT_ADMITTED_RETRY_SECONDS = 3


def _not_admitted() -> HTTPException:
    return HTTPException(
        409,
        "Your admission record has not reached the documents service yet; try again shortly.",
        headers={"Retry-After": str(NOT_ADMITTED_RETRY_SECONDS)},
    )


def _require(principal: Principal, roles: frozenset[Role]) -> None:
    if principal.role not in roles:
        names = ", ".join(sorted(r.value for r in roles))
        raise HTTPException(403, f"this action needs one of these roles: {names}")


def _staff_id(principal: Principal) -> str:
    return principal.subject[:100]


async def admitted_student(request: Request, student: Student) -> Principal:
    """The signed-in student, once their admission has reached this service.

    Checked before an upload takes room or has a byte read: a student who comes
    before their admission is answered 409 (with Retry-After) for one lookup, not
    for reading and inspecting the file. The use cases check again as they
    store: the rule is theirs, this is only the early answer.
    """
    assert student.student_no is not None
    try:
        await uploads.ensure_admitted(_runtime(request).uow, student.student_no)
    except uploads.NotAdmitted:
        raise _not_admitted() from None
    return student


AdmittedStudent = Annotated[Principal, Depends(admitted_student)]


_optional_bearer = HTTPBearer(auto_error=False, description="Access token issued by identity")

MULTIPART_DOCUMENT = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["doc_type", "file"],
                    "properties": {
                        "doc_type": {"type": "string", "enum": [t.value for t in DocumentType]},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
MULTIPART_PHOTO = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


NOT_NOW: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The student's admission has not reached this service yet: "
        "nothing read or stored, retry after Retry-After."
    },
    503: {"description": "Too many files arriving at once: nothing stored, retry later."},
}


def build_router(rules: UploadRules) -> APIRouter:
    router = APIRouter()

    # Room for the upload's bytes, held until the answer is ready. The student is
    # signed in and known to be admitted first (the same dependency the route has,
    # resolved once): a stranger, or a student too early, waits for nothing.
    async def room_for_document(request: Request, _: AdmittedStudent) -> AsyncIterator[None]:
        async with rules.budget.held(request, rules.document_limits.max_bytes):
            yield

    async def room_for_photo(request: Request, _: AdmittedStudent) -> AsyncIterator[None]:
        async with rules.budget.held(request, rules.photo_limits.max_bytes):
            yield

    # -- students --------------------------------------------------------------

    @router.post(
        "/me/documents",
        status_code=201,
        response_model=DocumentOut,
        openapi_extra=MULTIPART_DOCUMENT,
        summary="Upload a document (a new version of its type)",
        responses={
            200: {
                "model": DocumentOut,
                "description": "The same file again while its version waits for review: "
                "that version, unchanged",
            },
            **NOT_NOW,
        },
        dependencies=[Depends(room_for_document)],
    )
    async def upload_my_document(
        request: Request, response: Response, student: Student
    ) -> DocumentOut:
        """A new version of the type (201), or, when the same file is sent again while
        the type's latest version is still waiting for review, that version (200)."""
        upload = await read_upload(request, max_bytes=rules.document_limits.max_bytes)
        raw_type = upload.fields.get("doc_type", "")
        try:
            doc_type = DocumentType(raw_type)
        except ValueError:
            allowed = ", ".join(t.value for t in DocumentType)
            raise HTTPException(
                422,
                {"code": "bad_doc_type", "message": f"doc_type must be one of: {allowed}."},
            ) from None
        try:
            filename = display_name(upload.filename)
            inspected = await off_loop(
                inspect_file, upload.data, allowed=DOCUMENT_TYPES, limits=rules.document_limits
            )
        except UploadRefused as exc:
            log.info("document refused", extra={"code": exc.code.value})
            raise _refused(exc) from exc
        assert student.student_no is not None
        try:
            row, created = await uploads.upload_document(
                _runtime(request).uow,
                _objects(request),
                student_no=student.student_no,
                doc_type=doc_type,
                data=upload.data,
                inspected=inspected,
                filename=filename,
            )
        except uploads.NotAdmitted:
            raise _not_admitted() from None
        if not created:
            response.status_code = 200
        return DocumentOut.of(row)

    @router.get(
        "/me/documents", response_model=list[DocumentOut], summary="My documents, newest first"
    )
    async def my_documents(request: Request, student: Student) -> list[DocumentOut]:
        cursor = (
            _runtime(request)
            .db[DOCUMENTS]
            .find({"student_no": student.student_no})
            .sort("uploaded_at", -1)
            .limit(500)
        )
        return [DocumentOut.of(row) async for row in cursor]

    @router.post(
        "/me/photo",
        status_code=201,
        response_model=PhotoOut,
        openapi_extra=MULTIPART_PHOTO,
        summary="Submit a card photo; the automatic checks answer at once",
        responses={
            422: {"description": "The photo fails the specification: every reason."},
            **NOT_NOW,
        },
        dependencies=[Depends(room_for_photo)],
    )
    async def submit_my_photo(request: Request, student: Student) -> PhotoOut:
        upload = await read_upload(request, max_bytes=rules.photo_limits.max_bytes)
        try:
            filename = display_name(upload.filename)
            inspected, verdict, card = await off_loop(
                inspect_photo, upload.data, rules.photo_limits, rules.photo_spec
            )
        except UploadRefused as exc:
            log.info("photo refused", extra={"code": exc.code.value})
            raise _refused(exc) from exc
        assert student.student_no is not None
        runtime = _runtime(request)
        try:
            if not verdict.passed:
                await uploads.record_photo_refusal(
                    runtime.uow,
                    student_no=student.student_no,
                    sha256=inspected.sha256,
                    problems=verdict.problems,
                )
                raise HTTPException(
                    422,
                    {
                        "code": "photo_rejected",
                        "message": "The photo does not meet the specification.",
                        "reasons": [
                            {"code": p.code, "message": p.message} for p in verdict.problems
                        ],
                        "specification": rules.photo_spec.published(),
                    },
                )
            row = await uploads.submit_photo(
                runtime.uow,
                _objects(request),
                student_no=student.student_no,
                data=upload.data,
                inspected=inspected,
                width=verdict.width,
                height=verdict.height,
                filename=filename,
                checks={
                    "faces": verdict.faces,
                    "brightness": round(verdict.brightness, 1),
                    "sharpness": round(verdict.sharpness, 1),
                    "width": verdict.width,
                    "height": verdict.height,
                },
                card_image=card,
            )
        except uploads.NotAdmitted:
            raise _not_admitted() from None
        return PhotoOut.of(row)

    @router.get("/me/photos", response_model=list[PhotoOut], summary="My photos, newest first")
    async def my_photos(request: Request, student: Student) -> list[PhotoOut]:
        cursor = (
            _runtime(request)
            .db[PHOTOS]
            .find({"student_no": student.student_no}, WITHOUT_CARD_IMAGE)
            .sort("version", -1)
            .limit(100)
        )
        return [PhotoOut.of(row) async for row in cursor]

    @router.get("/photo-specification", summary="The published card photo specification")
    async def photo_specification() -> dict[str, Any]:
        return rules.photo_spec.published()

    # -- staff -----------------------------------------------------------------

    @router.get("/queue", response_model=QueueOut, summary="Items to review, oldest first")
    async def review_queue(
        request: Request,
        principal: AnyUser,
        kind: Literal["document", "photo"] = "document",
        status: Annotated[
            str, Query(pattern="^(pending|verified|approved|rejected|superseded)$")
        ] = ("pending"),
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        student_no: Annotated[
            str | None, Query(pattern=r"^\d{8,10}$", description="Only this student's items.")
        ] = None,
        doc_type: Annotated[
            DocumentType | None, Query(description="Only documents of this type.")
        ] = None,
    ) -> QueueOut:
        _require(principal, DOCUMENT_REVIEWERS if kind == "document" else PHOTO_REVIEWERS)
        rows = await queue.list_queue(
            _runtime(request).db,
            kind=kind,
            status=status,
            limit=limit,
            student_no=student_no,
            doc_type=doc_type.value if doc_type else None,
        )
        items = [
            QueueItem(
                id=row["_id"],
                kind=kind,
                student_no=row["student_no"],
                doc_type=row.get("doc_type"),
                version=row["version"],
                status=row["status"],
                content_type=row["content_type"],
                size_bytes=row["size_bytes"],
                submitted_at=row["uploaded_at" if kind == "document" else "submitted_at"],
                age=Age(**row["age"]),
                content_path=f"/api/documents/{kind}s/{row['_id']}/content",
                filename=row.get("filename"),
                checks=PhotoChecks(**row["checks"]) if row.get("checks") else None,
            )
            for row in rows
        ]
        return QueueOut(
            kind=kind,
            status=status,
            count=len(items),
            overdue=sum(1 for i in items if i.age.overdue),
            items=items,
        )

    async def _serve(
        request: Request,
        *,
        target: Literal["document", "photo"],
        item_id: uuid.UUID,
        link: str | None,
        credentials: HTTPAuthorizationCredentials | None,
        staff: frozenset[Role],
    ) -> Response:
        runtime = _runtime(request)
        collection = DOCUMENTS if target == "document" else PHOTOS
        student_no: str | None = None
        if link is not None:
            if not await links.link_allows(
                runtime.db, CONTENT_LINKS, token=link, target=target, item_id=str(item_id)
            ):
                raise HTTPException(403, "This link is invalid or has expired.")
            viewer = "link"
        else:
            principal = await current_principal(request, await verifier_of(request), credentials)
            if principal.role is not Role.STUDENT:
                _require(principal, staff)
            viewer = principal.role.value
            student_no = principal.student_no
        row = await runtime.db[collection].find_one({"_id": str(item_id)})
        if (
            row is None
            or not row.get("object_key")
            or (viewer == Role.STUDENT.value and row["student_no"] != student_no)
        ):
            # The same answer for another student's file as for none at all.
            raise HTTPException(404, f"No such {target}.")
        if viewer != Role.STUDENT.value:
            log.info(
                "staff opened a file",
                extra={"target": target, "item_id": str(item_id), "via": viewer},
            )
        data = await _objects(request).get(row["object_key"])
        extension = EXTENSIONS.get(row["content_type"], "bin")
        return Response(
            content=data,
            media_type=row["content_type"],
            headers={
                "Content-Disposition": f'inline; filename="{target}-{item_id}.{extension}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    @router.get(
        "/documents/{document_id}/content",
        summary="The file of a document (its owner, staff, or a staff link)",
        response_class=Response,
    )
    async def document_content(
        request: Request,
        document_id: uuid.UUID,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
        link: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        return await _serve(
            request,
            target="document",
            item_id=document_id,
            link=link,
            credentials=credentials,
            staff=DOCUMENT_REVIEWERS,
        )

    @router.get(
        "/photos/{photo_id}/content",
        summary="The file of a photo (its owner, staff, or a staff link)",
        response_class=Response,
    )
    async def photo_content(
        request: Request,
        photo_id: uuid.UUID,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
        link: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        return await _serve(
            request,
            target="photo",
            item_id=photo_id,
            link=link,
            credentials=credentials,
            staff=PHOTO_VIEWERS,
        )

    async def _link(
        request: Request,
        principal: Principal,
        *,
        target: Literal["document", "photo"],
        item_id: uuid.UUID,
    ) -> ContentLinkOut:
        db = _runtime(request).db
        collection = DOCUMENTS if target == "document" else PHOTOS
        if await db[collection].find_one({"_id": str(item_id)}, {"_id": 1}) is None:
            raise HTTPException(404, f"No such {target}.")
        token, expires_at = await links.create_content_link(
            db,
            CONTENT_LINKS,
            target=target,
            item_id=str(item_id),
            staff_id=_staff_id(principal),
            ttl=rules.link_ttl,
        )
        return ContentLinkOut(
            url=f"/api/documents/{target}s/{item_id}/content?link={token}", expires_at=expires_at
        )

    @router.post(
        "/documents/{document_id}/content-link",
        response_model=ContentLinkOut,
        summary="A short-lived link to open a document's file (staff)",
    )
    async def document_link(
        request: Request, document_id: uuid.UUID, principal: AnyUser
    ) -> ContentLinkOut:
        _require(principal, DOCUMENT_REVIEWERS)
        return await _link(request, principal, target="document", item_id=document_id)

    @router.post(
        "/photos/{photo_id}/content-link",
        response_model=ContentLinkOut,
        summary="A short-lived link to open a photo's file (staff)",
    )
    async def photo_link(
        request: Request, photo_id: uuid.UUID, principal: AnyUser
    ) -> ContentLinkOut:
        _require(principal, PHOTO_VIEWERS)
        return await _link(request, principal, target="photo", item_id=photo_id)

    @router.post(
        "/documents/{document_id}/verify",
        response_model=DocumentOut,
        summary="Verify the latest version of a document (registry)",
    )
    async def verify(
        request: Request, document_id: uuid.UUID, body: VerifyIn, principal: AnyUser
    ) -> DocumentOut:
        _require(principal, DOCUMENT_REVIEWERS)
        try:
            row = await review.verify_document(
                _runtime(request).uow,
                document_id=document_id,
                expiry_date=body.expiry_date,
                staff_id=_staff_id(principal),
            )
        except ReviewRefused as exc:
            raise _review_refused(exc) from exc
        return DocumentOut.of(row)

    @router.post(
        "/documents/{document_id}/reject",
        response_model=DocumentOut,
        summary="Reject the latest version of a document with a reason (registry)",
    )
    async def reject(
        request: Request, document_id: uuid.UUID, body: RejectIn, principal: AnyUser
    ) -> DocumentOut:
        _require(principal, DOCUMENT_REVIEWERS)
        try:
            row = await review.reject_document(
                _runtime(request).uow,
                document_id=document_id,
                reason=body.reason,
                staff_id=_staff_id(principal),
            )
        except ReviewRefused as exc:
            raise _review_refused(exc) from exc
        return DocumentOut.of(row)

    @router.post(
        "/photos/{photo_id}/approve",
        response_model=PhotoOut,
        summary="Approve a photo for the student card (card office)",
    )
    async def approve(request: Request, photo_id: uuid.UUID, principal: AnyUser) -> PhotoOut:
        _require(principal, PHOTO_REVIEWERS)
        try:
            row = await review.approve_photo(
                _runtime(request).uow,
                _objects(request),
                rules.photo_spec,
                photo_id=photo_id,
                staff_id=_staff_id(principal),
            )
        except ReviewRefused as exc:
            raise _review_refused(exc) from exc
        return PhotoOut.of(row)

    @router.post(
        "/photos/{photo_id}/reject",
        response_model=PhotoOut,
        summary="Reject a photo with a reason (card office)",
    )
    async def reject_photo(
        request: Request, photo_id: uuid.UUID, body: RejectIn, principal: AnyUser
    ) -> PhotoOut:
        _require(principal, PHOTO_REVIEWERS)
        try:
            row = await review.reject_photo(
                _runtime(request).uow,
                photo_id=photo_id,
                reason=body.reason,
                staff_id=_staff_id(principal),
            )
        except ReviewRefused as exc:
            raise _review_refused(exc) from exc
        return PhotoOut.of(row)

    return router
