"""Importing the admitted-student roster and inviting students."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opr_shared.events.catalogue import InvitationIssued, StudentAdmitted, StudentParticularsUpdated
from opr_shared.store.mongo import Transaction, UnitOfWork
from pymongo import UpdateOne

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

    def add(self, other: ImportResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.invited += other.invited
        self.errors.extend(other.errors)
        self.rejected = len({e.row for e in self.errors})


@dataclass(frozen=True)
class InvitePolicy:
    public_base_url: str
    ttl: timedelta


# Called after each committed chunk with the result so far and how many rows are done.
Progress = Callable[[ImportResult, int], Awaitable[None]]


async def import_roster(
    uow: UnitOfWork,
    raw_rows: list[Any],
    *,
    chunk_size: int,
    invite: InvitePolicy | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Create or correct admitted students.

    Idempotency: keyed by student number; an unchanged row changes nothing and
    publishes nothing. Side effects: StudentAdmitted for a new student,
    StudentParticularsUpdated (with the changed fields) for a corrected one, and
    with ``invite`` an InvitationIssued for each new student. Each chunk of rows
    is one transaction (its students and their events commit together), so an
    interrupted import is finished by importing the same roster again.
    """
    rows, errors = validate_rows(raw_rows)
    result = ImportResult()
    result.add(ImportResult(errors=errors))
    done = len({e.row for e in errors})
    if progress is not None:
        await progress(result, done)
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start : start + chunk_size]
        partial = await uow.run(lambda tx, c=chunk: _import_chunk(tx, c, invite))  # type: ignore[misc]
        result.add(partial)
        done += len(chunk)
        if progress is not None:
            await progress(result, done)
    result.errors.sort(key=lambda e: e.row)
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
    intakes = await _intakes(tx, {row.intake_year for _, row in chunk}) if invite else {}
    out = ImportResult()
    inserts: list[dict[str, Any]] = []
    updates: list[UpdateOne] = []
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
            doc: dict[str, Any] = {
                "_id": row.student_no,
                **particulars,
                "invited": False,
                "status": "admitted",
                "created_at": now,
                "updated_at": now,
            }
            tx.publish(
                StudentAdmitted(student_no=row.student_no, **particulars), subject=row.student_no
            )
            out.created += 1
            if invite is not None:
                doc.update(_invitation_fields(tx, doc, invite, now, intakes))
                out.invited += 1
            inserts.append(doc)
        elif change.kind == "updated":
            updates.append(
                UpdateOne({"_id": row.student_no}, {"$set": {**particulars, "updated_at": now}})
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
    # Batched: one round trip per kind of write, whatever the chunk size.
    if inserts:
        await students.insert_many(inserts, session=tx.session)
    if updates:
        await students.bulk_write(updates, session=tx.session)
    return out


async def issue_invitations(
    uow: UnitOfWork,
    policy: InvitePolicy,
    student_nos: list[str] | None = None,
    *,
    chunk_size: int = 200,
) -> int:
    """Invite every admitted student not yet invited, or re-invite the listed ones.

    Idempotency: without a list, only students not invited yet are selected, so
    a repeated call invites nobody twice; with a list, each call re-invites on
    purpose. Side effects: a fresh activation token per student (the previous one
    stops working) and an InvitationIssued carrying the activation link. Active
    accounts are never re-invited. One transaction per chunk of students.
    """
    total = 0
    if student_nos is not None:
        wanted = sorted(set(student_nos))
        for start in range(0, len(wanted), chunk_size):
            selector = {"_id": {"$in": wanted[start : start + chunk_size]}, "status": "admitted"}
            total += await uow.run(lambda tx, s=selector: _invite_selected(tx, s, policy, None))  # type: ignore[misc]
        return total
    while True:
        count = await uow.run(
            lambda tx: _invite_selected(tx, {"invited": False}, policy, chunk_size)
        )
        total += count
        if count == 0:
            return total


async def _invite_selected(
    tx: Transaction, selector: dict[str, Any], policy: InvitePolicy, limit: int | None
) -> int:
    cursor = tx.db[STUDENTS].find(selector, session=tx.session)
    if limit is not None:
        cursor = cursor.limit(limit)
    docs = [doc async for doc in cursor]
    if not docs:
        return 0
    now = datetime.now(UTC)
    intakes = await _intakes(tx, {doc["intake_year"] for doc in docs})
    await tx.db[STUDENTS].bulk_write(
        [
            UpdateOne(
                {"_id": doc["_id"]}, {"$set": _invitation_fields(tx, doc, policy, now, intakes)}
            )
            for doc in docs
        ],
        session=tx.session,
    )
    return len(docs)


async def _intakes(tx: Transaction, years: set[int]) -> dict[int, dict[str, Any]]:
    return {
        doc["_id"]: doc
        async for doc in tx.db[INTAKES].find({"_id": {"$in": sorted(years)}}, session=tx.session)
    }


def _invitation_fields(
    tx: Transaction,
    doc: dict[str, Any],
    policy: InvitePolicy,
    now: datetime,
    intakes: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """Record a fresh invitation (replacing the token hash, so the old link stops
    working) and publish InvitationIssued; returns the fields to set on the student."""
    previous = int((doc.get("invitation") or {}).get("invitation_no", 0))
    invitation = new_invitation(previous, now, policy.ttl)
    intake = intakes.get(doc["intake_year"], {})
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
    return {
        "invited": True,
        "invitation": {
            "token_hash": invitation.token_hash,
            "expires_at": invitation.expires_at,
            "invitation_no": invitation.invitation_no,
            "issued_at": now,
            "used_at": None,
        },
    }
