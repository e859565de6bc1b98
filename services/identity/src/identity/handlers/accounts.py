"""Activating a student account with the invitation token and a password."""

from __future__ import annotations

from datetime import UTC, datetime

from opr_shared.events.catalogue import AccountActivated
from opr_shared.store.mongo import Transaction, UnitOfWork

from identity.domain.accounts import (
    Activation,
    ActivationRefused,
    check_activation,
    personal_identifiers,
)
from identity.domain.invitations import hash_token
from identity.domain.passwords import PasswordHashing, password_problems
from identity.store import STUDENTS


class PasswordRejected(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


async def activate_account(
    uow: UnitOfWork, hashing: PasswordHashing, token: str, password: str, *, domain: str
) -> Activation:
    """Set the password, give the university address, and use up the token.

    Idempotency: the token is single use; the update only matches a record whose
    invitation still holds this token's hash unused, so two concurrent
    activations with one token make one account. Side effects: AccountActivated.
    """
    token_hash = hash_token(token.strip())
    # Checked (and the password hashed) before the transaction: argon2 is slow
    # and a transaction may be retried; the transaction checks again.
    found = await uow.db[STUDENTS].find_one({"invitation.token_hash": token_hash})
    check_activation(found, datetime.now(UTC), domain)
    assert found is not None
    problems = password_problems(password, personal_identifiers(found))
    if problems:
        raise PasswordRejected(problems)
    password_hash = await hashing.hash_async(password)

    async def work(tx: Transaction) -> Activation:
        student = await tx.db[STUDENTS].find_one(
            {"invitation.token_hash": token_hash}, session=tx.session
        )
        activation = check_activation(student, datetime.now(UTC), domain)
        updated = await tx.db[STUDENTS].update_one(
            {
                "_id": activation.student_no,
                "invitation.token_hash": token_hash,
                "invitation.used_at": None,
                "status": "admitted",
            },
            {
                "$set": {
                    "status": "active",
                    "password_hash": password_hash,
                    "university_email": activation.university_email,
                    "activated_at": activation.activated_at,
                    "invitation.used_at": activation.activated_at,
                    "updated_at": activation.activated_at,
                }
            },
            session=tx.session,
        )
        if updated.modified_count != 1:
            raise ActivationRefused(409, "this activation link has already been used")
        tx.publish(
            AccountActivated(
                student_no=activation.student_no,
                university_email=activation.university_email,
                personal_email=activation.personal_email,
                activated_at=activation.activated_at,
            ),
            subject=activation.student_no,
        )
        return activation

    return await uow.run(work)
