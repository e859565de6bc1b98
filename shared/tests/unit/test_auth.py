"""Token verification: signatures, claims, roles, key rotation and its rate limit."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from opr_shared.auth import (
    InvalidToken,
    KeySet,
    Principal,
    Role,
    TokenVerifier,
    current_student,
    generate_private_key,
    public_jwk,
    require_roles,
    sign_token,
)

KEY = generate_private_key()
OTHER = generate_private_key()


class Jwks:
    """A JWKS endpoint stand-in that counts fetches."""

    def __init__(self, *entries: dict[str, Any]) -> None:
        self.entries = list(entries)
        self.fetches = 0
        self.fail = False

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        if self.fail:
            raise ValueError("identity unreachable")
        return {"keys": self.entries}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(jwks: Jwks, clock: Clock | None = None) -> TokenVerifier:
    return TokenVerifier(KeySet(jwks, clock=clock or Clock(), min_refresh_seconds=30))


def student_token(kid: str = "k1", key: Any = KEY, **kw: Any) -> str:
    args: dict[str, Any] = {
        "subject": "20261234",
        "role": Role.STUDENT,
        "ttl_seconds": 900,
        "student_no": "20261234",
    }
    args.update(kw)
    return sign_token(key, kid, **args)


async def test_a_good_token_gives_the_principal() -> None:
    principal = await verifier(Jwks(public_jwk(KEY, "k1"))).verify(student_token())
    assert principal.role is Role.STUDENT
    assert principal.student_no == "20261234"
    assert not principal.is_staff


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: student_token(key=OTHER), "Signature"),
        (lambda: student_token(kid="unknown"), "unknown key"),
        (lambda: student_token(now=int(time.time()) - 3600), "(?i)expired"),
        (lambda: student_token(issuer="someone-else"), "(?i)issuer"),
        (lambda: student_token(audience="another-app"), "(?i)audience"),
        (lambda: "not.a.token", "malformed"),
        (lambda: student_token(student_no=None), "student number"),
        (lambda: student_token()[:-4] + "AAAA", "Signature"),
    ],
)
async def test_bad_tokens_are_refused(token_factory: Any, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await verifier(Jwks(public_jwk(KEY, "k1"))).verify(token_factory())


async def test_a_rotated_key_is_fetched_once_and_unknown_keys_do_not_hammer_identity() -> None:
    jwks = Jwks(public_jwk(KEY, "k1"))
    clock = Clock()
    v = verifier(jwks, clock)
    await v.verify(student_token())
    assert jwks.fetches == 1
    new_key = generate_private_key()
    jwks.entries.append(public_jwk(new_key, "k2"))
    clock.now += 31
    assert (await v.verify(student_token(kid="k2", key=new_key))).student_no == "20261234"
    assert jwks.fetches == 2
    for _ in range(5):  # forged key ids: at most one fetch per 30 s
        with pytest.raises(InvalidToken):
            await v.verify(student_token(kid="forged"))
    assert jwks.fetches == 2


async def test_known_keys_keep_working_while_identity_is_unreachable() -> None:
    jwks = Jwks(public_jwk(KEY, "k1"))
    clock = Clock()
    v = verifier(jwks, clock)
    await v.verify(student_token())
    jwks.fail = True
    clock.now += 3600  # keys are old, the refresh fails
    assert (await v.verify(student_token())).role is Role.STUDENT


def test_role_dependencies_answer_401_and_403_with_reasons() -> None:
    app = FastAPI()
    app.state.token_verifier = verifier(Jwks(public_jwk(KEY, "k1")))

    @app.get("/staff")
    async def staff(p: Annotated[Principal, Depends(require_roles(Role.REGISTRY_OFFICER))]) -> str:
        return p.subject

    @app.get("/mine")
    async def mine(p: Annotated[Principal, Depends(current_student)]) -> str:
        return p.student_no or ""

    client = TestClient(app)
    officer = sign_token(KEY, "k1", subject="officer1", role=Role.REGISTRY_OFFICER, ttl_seconds=60)
    student = student_token()
    assert client.get("/staff").status_code == 401
    assert client.get("/staff", headers={"Authorization": "Basic abc"}).status_code == 401
    forbidden = client.get("/staff", headers={"Authorization": f"Bearer {student}"})
    assert forbidden.status_code == 403
    assert "registry_officer" in forbidden.json()["detail"]
    assert client.get("/staff", headers={"Authorization": f"Bearer {officer}"}).json() == "officer1"
    assert client.get("/mine", headers={"Authorization": f"Bearer {student}"}).json() == "20261234"
    assert client.get("/mine", headers={"Authorization": f"Bearer {officer}"}).status_code == 403


async def test_requests_arriving_during_the_first_fetch_wait_for_it() -> None:
    """The first requests after a start (or a rotation) come together: the ones that
    find a fetch in flight must be verified with its keys, not refused."""
    release = asyncio.Event()
    jwks = Jwks(public_jwk(KEY, "k1"))

    async def slow_fetch() -> dict[str, Any]:
        await release.wait()
        return await jwks()

    checker = TokenVerifier(KeySet(slow_fetch, clock=Clock(), min_refresh_seconds=30))
    pending = [asyncio.create_task(checker.verify(student_token())) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    principals = await asyncio.gather(*pending, return_exceptions=True)
    assert [getattr(p, "student_no", p) for p in principals] == ["20261234"] * 5
    assert jwks.fetches == 1
