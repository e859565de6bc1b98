"""Logins against an in-memory database: one answer for every failure, the same
work when the account does not exist, lockout, and an audit without secrets."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from identity.domain.login import DenyReason, LockoutPolicy
from identity.domain.passwords import HashParameters, PasswordHashing
from identity.domain.sealing import Sealer
from identity.domain.staff import TOTP_PURPOSE
from identity.handlers.sessions import AccessDenied, Authenticator, Client
from identity.store import LOCKOUTS, LOGIN_ATTEMPTS, STAFF_USERS, STUDENTS
from opr_shared.auth import generate_private_key


def _get(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc


class FakeCollection:
    """The few MongoDB operations the authenticator uses, on dicts."""

    def __init__(self) -> None:
        self.docs: dict[Any, dict[str, Any]] = {}

    def _match(self, selector: dict[str, Any]) -> dict[str, Any] | None:
        for doc in self.docs.values():
            if all(_get(doc, k) == v for k, v in selector.items()):
                return doc
        return None

    async def find_one(self, selector: dict[str, Any], *_: Any) -> dict[str, Any] | None:
        found = self._match(selector)
        return copy.deepcopy(found) if found else None

    async def insert_one(self, doc: dict[str, Any]) -> None:
        assert doc["_id"] not in self.docs
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    async def update_one(self, selector: dict[str, Any], update: dict[str, Any]) -> None:
        doc = self._match(selector)
        assert doc is not None
        for path, value in update["$set"].items():
            *parents, leaf = path.split(".")
            target = doc
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value

    async def delete_one(self, selector: dict[str, Any]) -> None:
        doc = self._match(selector)
        if doc is not None:
            del self.docs[doc["_id"]]

    async def find_one_and_update(
        self, selector: dict[str, Any], update: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        doc = self._match(selector)
        if doc is None:
            doc = self.docs[selector["_id"]] = {"_id": selector["_id"]}
        for path, spec in update["$push"].items():
            doc[path] = (doc.get(path, []) + spec["$each"])[spec["$slice"] :]
        return copy.deepcopy(doc)


class FakeDb(dict[str, FakeCollection]):
    def __missing__(self, name: str) -> FakeCollection:
        self[name] = FakeCollection()
        return self[name]


class FakeKeys:
    def __init__(self) -> None:
        self.key: rsa.RSAPrivateKey = generate_private_key()

    async def signer(self) -> tuple[str, rsa.RSAPrivateKey]:
        return "k1", self.key


class CountingHashing(PasswordHashing):
    def __init__(self) -> None:
        super().__init__(HashParameters(time_cost=1, memory_kib=8192, parallelism=1))
        self.verifications = 0

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verifications += 1
        return super().verify(stored_hash, password)


PASSWORD = "violet kettle 42 harbour"
CLIENT = Client(ip="203.0.113.9", user_agent="pytest")


@pytest.fixture
def world() -> tuple[Authenticator, FakeDb, CountingHashing, list[datetime]]:
    db = FakeDb()
    hashing = CountingHashing()
    clock = [datetime(2026, 7, 1, 9, 0, tzinfo=UTC)]
    db[STUDENTS].docs["20260042"] = {
        "_id": "20260042",
        "jupas_app_no": "87654321",
        "surname": "Wong",
        "given_names": "Siu Ming",
        "date_of_birth": "2007-11-05",
        "university_email": "20260042@connect.university.example",
        "password_hash": hashing.hash(PASSWORD),
        "status": "active",
    }
    db[STAFF_USERS].docs["staff-1"] = {
        "_id": "staff-1",
        "email": "registry.officer@staff.university.example",
        "role": "registry_officer",
        "password_hash": hashing.hash(PASSWORD),
        "active": True,
    }
    auth = Authenticator(
        db=db,  # type: ignore[arg-type]
        hashing=hashing,
        keys=FakeKeys(),  # type: ignore[arg-type]
        lockout=LockoutPolicy(max_failures=3),
        token_ttl_seconds=900,
        clock=lambda: clock[0],
    )
    return auth, db, hashing, clock


GOOD_A = {
    "jupas_app_no": "87654321",
    "last_name": " wong ",
    "first_name": "SIUMING",
    "date_of_birth": "05/11/2007",
}


async def deny_reason(coroutine: Any) -> DenyReason:
    with pytest.raises(AccessDenied) as denied:
        await coroutine
    return denied.value.reason


async def test_jupas_login_gives_a_student_token(world: Any) -> None:
    auth, *_ = world
    issued = await auth.login_jupas(**GOOD_A, client=CLIENT)
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert (claims["sub"], claims["role"], claims["student_no"]) == (
        "20260042",
        "student",
        "20260042",
    )
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(issued.access_token)["kid"] == "k1"


async def test_every_kind_of_jupas_failure_is_the_same_denial(world: Any) -> None:
    auth, db, *_ = world
    reasons = [
        await deny_reason(
            auth.login_jupas(**(GOOD_A | {"date_of_birth": "2007-11-05"}), client=CLIENT)
        ),
        await deny_reason(auth.login_jupas(**(GOOD_A | {"last_name": "Wang"}), client=CLIENT)),
        await deny_reason(
            auth.login_jupas(**(GOOD_A | {"jupas_app_no": "11111111"}), client=CLIENT)
        ),
        await deny_reason(auth.login_jupas(**(GOOD_A | {"jupas_app_no": "x"}), client=CLIENT)),
        await deny_reason(auth.login_jupas(**(GOOD_A | {"first_name": "Siu"}), client=CLIENT)),
        await deny_reason(auth.login_jupas(**GOOD_A, client=CLIENT)),
    ]
    assert reasons == [
        DenyReason.BAD_FORMAT,
        DenyReason.WRONG_CREDENTIALS,
        DenyReason.UNKNOWN_ACCOUNT,
        DenyReason.BAD_FORMAT,
        DenyReason.WRONG_CREDENTIALS,
        DenyReason.LOCKED,  # the third failure on the account locked it
    ]
    assert db[LOCKOUTS].docs["student:20260042"]["locked_until"] is not None


async def test_the_lock_lifts_after_its_time_and_a_success_clears_the_count(world: Any) -> None:
    auth, db, _, clock = world
    for _ in range(3):
        await deny_reason(auth.login_jupas(**(GOOD_A | {"last_name": "Wang"}), client=CLIENT))
    assert await deny_reason(auth.login_jupas(**GOOD_A, client=CLIENT)) is DenyReason.LOCKED
    clock[0] += timedelta(minutes=16)
    await auth.login_jupas(**GOOD_A, client=CLIENT)
    assert "student:20260042" not in db[LOCKOUTS].docs


async def test_password_login_does_the_same_hash_work_for_an_unknown_account(world: Any) -> None:
    auth, _, hashing, _ = world
    before = hashing.verifications
    reason = await deny_reason(
        auth.login_password("nobody@connect.university.example", PASSWORD, None, CLIENT)
    )
    assert reason is DenyReason.UNKNOWN_ACCOUNT
    assert hashing.verifications == before + 1  # a dummy hash was verified
    reason = await deny_reason(
        auth.login_password("20260042@connect.university.example", "wrong password!", None, CLIENT)
    )
    assert reason is DenyReason.WRONG_CREDENTIALS
    assert hashing.verifications == before + 2


async def test_password_login_for_students_and_staff(world: Any) -> None:
    auth, *_ = world
    student = await auth.login_password(
        " 20260042@Connect.University.Example ", PASSWORD, None, CLIENT
    )
    assert student.role == "student"
    staff = await auth.login_password(
        "registry.officer@staff.university.example", PASSWORD, None, CLIENT
    )
    claims = jwt.decode(staff.access_token, options={"verify_signature": False})
    assert (claims["sub"], claims["role"]) == ("staff-1", "registry_officer")
    assert "student_no" not in claims


async def test_a_locked_account_is_denied_even_with_the_right_password(world: Any) -> None:
    auth, *_ = world
    email = "registry.officer@staff.university.example"
    for _ in range(3):
        await deny_reason(auth.login_password(email, "wrong password!", None, CLIENT))
    assert (
        await deny_reason(auth.login_password(email, PASSWORD, None, CLIENT)) is DenyReason.LOCKED
    )


async def test_a_disabled_staff_user_cannot_log_in(world: Any) -> None:
    auth, db, *_ = world
    db[STAFF_USERS].docs["staff-1"]["active"] = False
    reason = await deny_reason(
        auth.login_password("registry.officer@staff.university.example", PASSWORD, None, CLIENT)
    )
    assert reason is DenyReason.DISABLED


async def test_every_attempt_is_audited_without_secrets(world: Any) -> None:
    auth, db, *_ = world
    await auth.login_jupas(**GOOD_A, client=CLIENT)
    await deny_reason(
        auth.login_password("20260042@connect.university.example", "nope nope nope", None, CLIENT)
    )
    await deny_reason(auth.login_jupas(**(GOOD_A | {"jupas_app_no": "11111111"}), client=CLIENT))
    rows = sorted(db[LOGIN_ATTEMPTS].docs.values(), key=lambda d: d["at"])
    assert [(r["method"], r["outcome"], r["reason"]) for r in rows] == [
        ("jupas", "success", None),
        ("password", "denied", "wrong_credentials"),
        ("jupas", "denied", "unknown_account"),
    ]
    assert rows[0]["account"] == "student:20260042"
    assert rows[0]["client_ip"] == "203.0.113.9"
    text = str(rows)
    for secret in ("87654321", "11111111", "nope nope", "Wong", "05/11/2007", PASSWORD):
        assert secret not in text
    await asyncio.sleep(0)


async def test_staff_totp_sealed_at_rest_passes_and_a_rehash_keeps_the_password(
    world: Any,
) -> None:
    auth, db, hashing, _ = world
    auth.sealer = Sealer(b"the deployment's passphrase", TOTP_PURPOSE)
    seed = pyotp.random_base32()
    staff = db[STAFF_USERS].docs["staff-1"]
    staff["totp"] = {"secret": auth.sealer.seal(seed), "confirmed": True}
    # A hash made with weaker parameters than today's is replaced at the next login.
    weaker = PasswordHashing(HashParameters(time_cost=1, memory_kib=4096, parallelism=1))
    staff["password_hash"] = weaker.hash(PASSWORD)
    assert hashing.needs_rehash(staff["password_hash"])

    email = "registry.officer@staff.university.example"
    code = pyotp.TOTP(seed).now()
    await auth.login_password(email, PASSWORD, code, CLIENT)
    rehashed = db[STAFF_USERS].docs["staff-1"]["password_hash"]
    assert not hashing.needs_rehash(rehashed)
    assert hashing.verify(rehashed, PASSWORD)  # the password, not anything else
    assert not hashing.verify(rehashed, seed)


async def test_a_totp_secret_sealed_under_another_passphrase_denies_the_login(
    world: Any,
) -> None:
    auth, db, *_ = world
    auth.sealer = Sealer(b"the deployment's passphrase", TOTP_PURPOSE)
    seed = pyotp.random_base32()
    other = Sealer(b"a passphrase from another deployment", TOTP_PURPOSE)
    db[STAFF_USERS].docs["staff-1"]["totp"] = {"secret": other.seal(seed), "confirmed": True}
    reason = await deny_reason(
        auth.login_password(
            "registry.officer@staff.university.example",
            PASSWORD,
            pyotp.TOTP(seed).now(),
            CLIENT,
        )
    )
    assert reason is DenyReason.TOTP_WRONG
