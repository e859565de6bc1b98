"""Staff users: the demo accounts of a development system, creating staff, and
enrolling the TOTP second factor."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opr_shared.auth import STAFF_ROLES, Role
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from identity.domain.passwords import PasswordHashing, password_problems
from identity.domain.sealing import Sealer
from identity.domain.staff import check_totp, new_totp_secret, provisioning_uri
from identity.handlers.accounts import PasswordRejected
from identity.store import STAFF_USERS


class StaffConflict(Exception):
    pass


class TotpRefused(Exception):
    pass


def _new_staff_id() -> str:
    return f"staff-{uuid.uuid4().hex[:12]}"


async def seed_demo_staff(
    db: AsyncDatabase[dict[str, Any]],
    hashing: PasswordHashing,
    accounts: dict[str, str],
    password: str,
) -> int:
    """Create the documented demo staff accounts that do not exist yet (development only).

    Idempotency: keyed by e-mail (unique index); existing accounts are left as
    they are. Side effects: staff_users rows.
    """
    created = 0
    for role, email in accounts.items():
        if await db[STAFF_USERS].find_one({"email": email}, {"_id": 1}) is not None:
            continue
        password_hash = await hashing.hash_async(password)
        try:
            await db[STAFF_USERS].insert_one(
                {
                    "_id": _new_staff_id(),
                    "email": email,
                    "role": Role(role).value,
                    "password_hash": password_hash,
                    "active": True,
                    "demo": True,
                    "created_at": datetime.now(UTC),
                }
            )
            created += 1
        except DuplicateKeyError:
            continue  # another replica seeded it first
    return created


async def create_staff_user(
    db: AsyncDatabase[dict[str, Any]],
    hashing: PasswordHashing,
    *,
    email: str,
    role: Role,
    password: str,
    created_by: str,
) -> str:
    """Idempotency: keyed by e-mail; a second creation is refused (StaffConflict).
    Side effects: a staff_users row."""
    if role not in STAFF_ROLES:
        raise ValueError("a staff user needs a staff role")
    address = email.strip().lower()
    problems = password_problems(password, [address])
    if problems:
        raise PasswordRejected(problems)
    staff_id = _new_staff_id()
    password_hash = await hashing.hash_async(password)
    try:
        await db[STAFF_USERS].insert_one(
            {
                "_id": staff_id,
                "email": address,
                "role": role.value,
                "password_hash": password_hash,
                "active": True,
                "created_at": datetime.now(UTC),
                "created_by": created_by,
            }
        )
    except DuplicateKeyError as exc:
        raise StaffConflict(f"a staff user with e-mail {address} exists already") from exc
    return staff_id


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str


async def start_totp_enrolment(
    db: AsyncDatabase[dict[str, Any]], staff_id: str, sealer: Sealer
) -> TotpEnrolment:
    """A new secret, pending until a code from it is confirmed; TOTP already on is refused.

    Side effects: the pending secret, sealed, on the staff user (replacing an earlier
    pending one).
    """
    staff = await db[STAFF_USERS].find_one({"_id": staff_id})
    if staff is None:
        raise TotpRefused("no such staff user")
    if (staff.get("totp") or {}).get("confirmed"):
        raise TotpRefused("two-factor authentication is already on for this account")
    secret = new_totp_secret()
    await db[STAFF_USERS].update_one(
        {"_id": staff_id},
        {"$set": {"totp": {"secret": sealer.seal(secret), "confirmed": False}}},
    )
    return TotpEnrolment(secret, provisioning_uri(secret, staff["email"]))


async def confirm_totp(
    db: AsyncDatabase[dict[str, Any]], staff_id: str, code: str, sealer: Sealer
) -> None:
    """Turn TOTP on once a code from the pending secret is shown.

    Idempotency: confirming twice is refused (already on). Side effects: from now
    on the staff user's login needs a code.
    """
    staff = await db[STAFF_USERS].find_one({"_id": staff_id})
    totp = (staff or {}).get("totp") or {}
    if not totp.get("secret"):
        raise TotpRefused("start the enrolment first")
    if totp.get("confirmed"):
        raise TotpRefused("two-factor authentication is already on for this account")
    check = check_totp(sealer.open(totp["secret"]), code, None, time.time())
    if not check.ok:
        raise TotpRefused("the code does not match; check the device's clock and try again")
    await db[STAFF_USERS].update_one(
        {"_id": staff_id},
        {"$set": {"totp.confirmed": True, "totp.last_step": check.timestep}},
    )
