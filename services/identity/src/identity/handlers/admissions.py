"""Importing the admitted-student roster and inviting students."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opr_shared.events.catalogue import InvitationIssued, StudentAdmitted, StudentParticularsUpdated
from opr_shared.store.mongo import Transaction, UnitOfWork

from identity.domain.invitations import activation_url, new_invitation
from identity.domain.roster import AdmissionRow, RowError, reconcile, validate_rows
from identity.store import INTAKES, STUDENTS


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    invited: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class InvitePolicy:
    public_base_url: str
    ttl: timedelta


async def import_roster(
    uow: UnitOfWork,
    raw_rows: list[Any],
    *,
    chunk_size: int,
    invite: InvitePolicy | None = None,
) -> ImportResult:
    """Create or correct admitted students.

    Idempotency: keyed by student number; an unchanged row changes nothing and
    publishes nothing. Side effects: StudentAdmitted for a new student,
    StudentParticularsUpdated (with the changed fields) for a corrected one, and
    with ``invite`` an InvitationIssued for each new student.
    """
    rows, errors = validate_rows(raw_rows)
    result = ImportResult(errors=errors)
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start : start + chunk_size]
        partial = await uow.run(lambda tx, c=chunk: _import_chunk(tx, c, invite))  # type: ignore[misc]
        result.created += partial.created
        result.updated += partial.updated
        result.unchanged += partial.unchanged
        result.invited += partial.invited
        result.errors.extend(partial.errors)
    result.errors.sort(key=lambda e: e.row)
    result.rejected = len({e.row for e in result.errors})
    return result


async def _import_chunk(
    tx: Transaction, chunk: list[tuple[int, AdmissionRow]], invite: InvitePolicy | None
) -> ImportResult:
    students = tx.db[STUDENTS]
    ids = [row.student_no for _, row in chunk]
    existing = {
        doc["_id"]: doc async for doc in students.find({"_id": {"$in": ids}}, session=tx.session)
    }
    app_nos = [row.jupas_app_no for _, row in chunk if row.jupas_app_no]
    holders = {
        doc["jupas_app_no"]: doc["_id"]
        async for doc in students.find(
            {"jupas_app_no": {"$in": app_nos}}, {"jupas_app_no": 1}, session=tx.session
        )
    }
    now = datetime.now(UTC)
    out = ImportResult()
    for index, row in chunk:
        holder = holders.get(row.jupas_app_no) if row.jupas_app_no else None
        if holder is not None and holder != row.student_no:
            out.errors.append(RowError(index, "jupas_app_no", "already belongs to another student"))
            continue
        if row.jupas_app_no:
            holders[row.jupas_app_no] = row.student_no
        change = reconcile(existing.get(row.student_no), row)
        particulars = row.particulars()
        if change.kind == "created":
            await students.insert_one(
                {
                    "_id": row.student_no,
                    **particulars,
                    "invited": False,
                    "status": "admitted",
                    "created_at": now,
                    "updated_at": now,
                },
                session=tx.session,
            )
            tx.publish(
                StudentAdmitted(student_no=row.student_no, **particulars), subject=row.student_no
            )
            out.created += 1
            if invite is not None:
                await _invite(tx, {"_id": row.student_no, **particulars}, invite, now)
                out.invited += 1
        elif change.kind == "updated":
            await students.update_one(
                {"_id": row.student_no},
                {"$set": {**particulars, "updated_at": now}},
                session=tx.session,
            )
            tx.publish(
                StudentParticularsUpdated(
                    student_no=row.student_no, changed_fields=change.changed_fields, **particulars
                ),
                subject=row.student_no,
            )
            out.updated += 1
        else:
            out.unchanged += 1
    return out


async def issue_invitations(
    uow: UnitOfWork, policy: InvitePolicy, student_nos: list[str] | None = None
) -> int:
    """Invite every admitted student not yet invited, or re-invite the listed ones.

    Side effects: a fresh activation token per student (the previous one stops
    working) and an InvitationIssued carrying the activation link.
    """
    if student_nos is not None:
        selector: dict[str, Any] = {"_id": {"$in": student_nos}, "status": {"$ne": "active"}}
    else:
        selector = {"invited": False}

    async def work(tx: Transaction) -> int:
        now = datetime.now(UTC)
        count = 0
        async for doc in tx.db[STUDENTS].find(selector, session=tx.session):
            await _invite(tx, doc, policy, now)
            count += 1
        return count

    return await uow.run(work)


async def _invite(
    tx: Transaction, doc: dict[str, Any], policy: InvitePolicy, now: datetime
) -> None:
    previous = int((doc.get("invitation") or {}).get("invitation_no", 0))
    invitation = new_invitation(previous, now, policy.ttl)
    await tx.db[STUDENTS].update_one(
        {"_id": doc["_id"]},
        {
            "$set": {
                "invited": True,
                "invitation": {
                    "token_hash": invitation.token_hash,
                    "expires_at": invitation.expires_at,
                    "invitation_no": invitation.invitation_no,
                    "issued_at": now,
                },
            }
        },
        session=tx.session,
    )
    intake = await tx.db[INTAKES].find_one({"_id": doc["intake_year"]}, session=tx.session) or {}
    tx.publish(
        InvitationIssued(
            student_no=doc["_id"],
            personal_email=doc["personal_email"],
            surname=doc["surname"],
            given_names=doc["given_names"],
            chinese_name=doc.get("chinese_name"),
            activation_url=activation_url(policy.public_base_url, invitation.token),
            activation_expires_at=invitation.expires_at,
            intake_year=doc["intake_year"],
            registration_deadline=intake.get("registration_deadline"),
            term_start=intake.get("term_start"),
            invitation_no=invitation.invitation_no,
        ),
        subject=doc["_id"],
    )
