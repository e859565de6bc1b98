"""Logging in (JUPAS particulars, or e-mail and password with TOTP for staff) and
issuing access tokens.

Every attempt ends in one of two answers: a token, or :class:`AccessDenied` (the
caller sees the same "access denied" whatever went wrong). Every attempt is
audited with the reason, the account if one was found, and the submitted
identifier masked; never a password, a name or a date of birth.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from opr_shared.auth import Role, sign_token
from opr_shared.jsonlog import correlation_id_var
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from identity.domain.login import (
    DenyReason,
    LockoutPolicy,
    LockoutState,
    after_failure,
    jupas_particulars_match,
    mask_identifier,
    parse_login_dob,
)
from identity.domain.passwords import PasswordHashing
from identity.domain.sealing import Sealer, SealError
from identity.domain.staff import TOTP_PURPOSE, check_totp
from identity.store import LOCKOUTS, LOGIN_ATTEMPTS, STAFF_USERS, STUDENTS
from identity.store.keys import SigningKeyStore

APP_NO = re.compile(r"^\d{8}$")
MAX_FIELD = 256

log = logging.getLogger(__name__)


class AccessDenied(Exception):
    """Login refused; the reason is for the audit only."""

    def __init__(self, reason: DenyReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    role: Role
    subject: str


@dataclass(frozen=True)
class Client:
    """Where an attempt came from, for the audit."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass
class Authenticator:
    db: AsyncDatabase[dict[str, Any]]
    hashing: PasswordHashing
    keys: SigningKeyStore
    lockout: LockoutPolicy
    token_ttl_seconds: int
    # Opens the staff's sealed TOTP secrets (kept as they are without a passphrase).
    sealer: Sealer = field(default_factory=lambda: Sealer(None, TOTP_PURPOSE))
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    wall: Callable[[], float] = field(default=time.time)

    # --- login A ---------------------------------------------------------------

    async def login_jupas(
        self, jupas_app_no: str, last_name: str, first_name: str, date_of_birth: str, client: Client
    ) -> IssuedToken:
        """Side effects: a login_attempts row; on failure a counted failure (lockout)."""
        now = self.clock()
        app_no = jupas_app_no.strip()[:MAX_FIELD]
        dob = parse_login_dob(date_of_birth[:MAX_FIELD])
        student = (
            await self.db[STUDENTS].find_one({"jupas_app_no": app_no})
            if APP_NO.match(app_no)
            else None
        )
        audit = {"method": "jupas", "identifier": mask_identifier(app_no)}
        if student is None:
            malformed = dob is None or not APP_NO.match(app_no)
            reason = DenyReason.BAD_FORMAT if malformed else DenyReason.UNKNOWN_ACCOUNT
            await self._deny(audit, reason, None, now, client)
        assert student is not None
        account = f"student:{student['_id']}"
        state = await self._lockout_state(account)
        matched = jupas_particulars_match(
            surname=student["surname"],
            given_names=student["given_names"],
            date_of_birth=datetime.fromisoformat(student["date_of_birth"]).date(),
            last_name=last_name[:MAX_FIELD],
            first_name=first_name[:MAX_FIELD],
            dob=dob,
        )
        if state.is_locked(now):
            await self._deny(audit, DenyReason.LOCKED, account, now, client, count=False)
        if not matched:
            reason = DenyReason.BAD_FORMAT if dob is None else DenyReason.WRONG_CREDENTIALS
            await self._deny(audit, reason, account, now, client)
        return await self._grant(
            audit,
            account,
            state,
            now,
            client,
            subject=student["_id"],
            role=Role.STUDENT,
            student_no=student["_id"],
        )

    # --- login B ---------------------------------------------------------------

    async def login_password(
        self, email: str, password: str, totp: str | None, client: Client
    ) -> IssuedToken:
        """Side effects: a login_attempts row; on failure a counted failure (lockout);
        for staff with TOTP, the used time step (a code works once)."""
        now = self.clock()
        address = email.strip().lower()[:MAX_FIELD]
        secret = password[: MAX_FIELD * 4]
        audit = {"method": "password", "identifier": mask_identifier(address)}
        student = await self.db[STUDENTS].find_one({"university_email": address})
        staff = None if student else await self.db[STAFF_USERS].find_one({"email": address})
        account_doc = student or staff
        if account_doc is None or not account_doc.get("password_hash"):
            await self.hashing.verify_dummy_async(secret)
            await self._deny(audit, DenyReason.UNKNOWN_ACCOUNT, None, now, client)
        assert account_doc is not None
        account = f"student:{student['_id']}" if student else f"staff:{account_doc['_id']}"
        state = await self._lockout_state(account)
        # The hash is verified even for a locked account: the same work either way.
        good = await self.hashing.verify_async(account_doc["password_hash"], secret)
        if state.is_locked(now):
            await self._deny(audit, DenyReason.LOCKED, account, now, client, count=False)
        if not good:
            await self._deny(audit, DenyReason.WRONG_CREDENTIALS, account, now, client)
        if staff is not None:
            if not staff.get("active", True):
                await self._deny(audit, DenyReason.DISABLED, account, now, client, count=False)
            totp_doc = staff.get("totp") or {}
            if totp_doc.get("confirmed"):
                try:
                    seed = self.sealer.open(totp_doc["secret"])
                except SealError:
                    # Sealed under another passphrase: nobody can pass this factor until
                    # the staff member enrols again (an administrator resets it).
                    log.error("a staff TOTP secret cannot be opened", extra={"staff": staff["_id"]})
                    await self._deny(
                        audit, DenyReason.TOTP_WRONG, account, now, client, count=False
                    )
                check = check_totp(seed, totp, totp_doc.get("last_step"), self.wall())
                if not check.ok:
                    reason = DenyReason.TOTP_MISSING if not totp else DenyReason.TOTP_WRONG
                    await self._deny(audit, reason, account, now, client)
                await self.db[STAFF_USERS].update_one(
                    {"_id": staff["_id"]}, {"$set": {"totp.last_step": check.timestep}}
                )
        collection = STUDENTS if student else STAFF_USERS
        if self.hashing.needs_rehash(account_doc["password_hash"]):
            rehashed = await self.hashing.hash_async(secret)
            await self.db[collection].update_one(
                {"_id": account_doc["_id"]}, {"$set": {"password_hash": rehashed}}
            )
        if student is not None:
            return await self._grant(
                audit,
                account,
                state,
                now,
                client,
                subject=student["_id"],
                role=Role.STUDENT,
                student_no=student["_id"],
            )
        assert staff is not None
        return await self._grant(
            audit, account, state, now, client, subject=staff["_id"], role=Role(staff["role"])
        )

    # --- after activation --------------------------------------------------------

    async def sign_in_activated(
        self, student_no: str, university_email: str, client: Client
    ) -> IssuedToken:
        """The session a student starts by activating: the invitation link and the
        password just chosen prove as much as a sign-in would, so the portal does
        not ask for (and hash) the password a second time.

        Side effects: a login_attempts row (method ``activation``). A lockout is left
        as it is: it counts failed sign-ins, and this was not one.
        """
        now = self.clock()
        audit = {"method": "activation", "identifier": mask_identifier(university_email)}
        await self._audit(audit, "success", None, f"student:{student_no}", now, client)
        return await self.issue(student_no, Role.STUDENT, student_no)

    # --- shared ------------------------------------------------------------------

    async def issue(self, subject: str, role: Role, student_no: str | None = None) -> IssuedToken:
        kid, key = await self.keys.signer()
        token = sign_token(
            key,
            kid,
            subject=subject,
            role=role,
            ttl_seconds=self.token_ttl_seconds,
            student_no=student_no,
        )
        return IssuedToken(token, self.token_ttl_seconds, role, subject)

    async def _lockout_state(self, account: str) -> LockoutState:
        doc = await self.db[LOCKOUTS].find_one({"_id": account})
        if doc is None:
            return LockoutState()
        return LockoutState(list(doc.get("failures", [])), doc.get("locked_until"))

    async def _count_failure(self, account: str, now: datetime) -> None:
        # The push is atomic, so concurrent failures are all counted.
        doc = await self.db[LOCKOUTS].find_one_and_update(
            {"_id": account},
            {"$push": {"failures": {"$each": [now], "$slice": -self.lockout.max_failures}}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        doc = doc or {}
        before = LockoutState(list(doc.get("failures", []))[:-1], doc.get("locked_until"))
        after = after_failure(before, now, self.lockout)
        if after.locked_until != before.locked_until:
            await self.db[LOCKOUTS].update_one(
                {"_id": account}, {"$set": {"locked_until": after.locked_until, "failures": []}}
            )

    async def _audit(
        self,
        audit: dict[str, Any],
        outcome: str,
        reason: DenyReason | None,
        account: str | None,
        now: datetime,
        client: Client,
    ) -> None:
        await self.db[LOGIN_ATTEMPTS].insert_one(
            {
                "_id": uuid.uuid4().hex,
                "at": now,
                **audit,
                "outcome": outcome,
                "reason": reason.value if reason else None,
                "account": account,
                "client_ip": client.ip,
                "user_agent": (client.user_agent or "")[:200] or None,
                "correlation_id": correlation_id_var.get(),
            }
        )

    async def _deny(
        self,
        audit: dict[str, Any],
        reason: DenyReason,
        account: str | None,
        now: datetime,
        client: Client,
        *,
        count: bool = True,
    ) -> NoReturn:
        if account is not None and count:
            await self._count_failure(account, now)
        await self._audit(audit, "denied", reason, account, now, client)
        raise AccessDenied(reason)

    async def _grant(
        self,
        audit: dict[str, Any],
        account: str,
        state: LockoutState,
        now: datetime,
        client: Client,
        *,
        subject: str,
        role: Role,
        student_no: str | None = None,
    ) -> IssuedToken:
        if state.failures or state.locked_until is not None:
            await self.db[LOCKOUTS].delete_one({"_id": account})
        await self._audit(audit, "success", None, account, now, client)
        return await self.issue(subject, role, student_no)
