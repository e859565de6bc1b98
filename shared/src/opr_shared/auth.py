"""Verifying the access tokens identity signs, in every service, without calling
identity per request.

Tokens are JWTs signed with RS256 by identity; its public keys are published as
a JWKS. A :class:`KeySet` keeps the keys in memory: fetched on first use,
refreshed when they grow old, and refreshed early (at most once every
``min_refresh_seconds``) when a token names a key id it does not know, which is
how a key rotation reaches every service.

FastAPI dependencies: :func:`current_principal` (any valid token),
:func:`require_roles` (staff endpoints) and :func:`current_student` (a student's
own records).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ISSUER = "opr-identity"
AUDIENCE = "opr"
ALGORITHM = "RS256"


class Role(StrEnum):
    STUDENT = "student"
    REGISTRY_OFFICER = "registry_officer"
    CARD_OFFICE = "card_office"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.REGISTRY_OFFICER, Role.CARD_OFFICE, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a student (with their student number) or a staff member."""

    subject: str
    role: Role
    student_no: str | None
    token_id: str | None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class InvalidToken(Exception):
    """The token is not one identity issued, or no longer valid; the reason is for logs."""


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


def http_jwks(url: str, timeout: float = 5.0) -> JwksFetcher:
    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    return fetch


class KeySet:
    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        max_age_seconds: float = 600.0,
        min_refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._max_age = max_age_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = asyncio.Lock()

    def _needs_refresh(self, kid: str) -> bool:
        now = self._clock()
        if self._tried_at is not None and now - self._tried_at < self._min_refresh:
            return False  # never hammer identity, whatever tokens arrive
        if self._fetched_at is None or now - self._fetched_at > self._max_age:
            return True
        return kid not in self._keys

    async def refresh(self) -> None:
        self._tried_at = self._clock()
        jwks = await self._fetch()
        keys: dict[str, Any] = {}
        for entry in jwks.get("keys", []):
            if entry.get("kid") and entry.get("kty") == "RSA" and entry.get("use", "sig") == "sig":
                keys[entry["kid"]] = jwt.PyJWK.from_dict(entry, algorithm=ALGORITHM).key
        self._keys = keys
        self._fetched_at = self._clock()

    async def key(self, kid: str) -> Any:
        # An unknown kid always goes through the lock: while another request's fetch
        # is in flight (the first requests after a start or a rotation), this one
        # waits for its result instead of being refused for a key about to arrive.
        if kid not in self._keys or self._needs_refresh(kid):
            async with self._lock:
                if self._needs_refresh(kid):
                    try:
                        await self.refresh()
                    except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
                        # Keep verifying with the keys already known.
                        if not self._keys:
                            raise InvalidToken(f"signing keys unavailable: {exc}") from exc
        if kid not in self._keys:
            raise InvalidToken("token signed by an unknown key")
        return self._keys[kid]


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        leeway_seconds: int = 30,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise InvalidToken("unexpected token algorithm or key id")
        key = await self.keys.key(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from exc
        try:
            role = Role(str(claims.get("role")))
        except ValueError as exc:
            raise InvalidToken("token carries no known role") from exc
        student_no = claims.get("student_no")
        if role is Role.STUDENT and not isinstance(student_no, str):
            raise InvalidToken("student token without a student number")
        return Principal(
            subject=str(claims["sub"]),
            role=role,
            student_no=student_no if role is Role.STUDENT else None,
            token_id=claims.get("jti"),
        )


_bearer = HTTPBearer(auto_error=False, description="Access token issued by identity")


async def verifier_of(request: Request) -> TokenVerifier:
    # A coroutine although it awaits nothing: FastAPI would run a plain function
    # dependency in its thread pool, a thread hop for every request.
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError("no token verifier configured on this app")
    return verifier


# Where the verified caller is kept in the request's scope (read by the staff audit).
PRINCIPAL_SCOPE_KEY = "opr.principal"


async def current_principal(
    request: Request,
    verifier: Annotated[TokenVerifier, Depends(verifier_of)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "authentication required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = await verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            401,
            "invalid or expired token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
    request.scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"this action needs one of these roles: {names}")
        return principal

    return dependency


async def current_student(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role is not Role.STUDENT or principal.student_no is None:
        raise HTTPException(403, "only a student can use this endpoint")
    return principal


# --- signing: identity's side, and tests' -----------------------------------------


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public half as a JWKS entry."""
    entry: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    entry.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return entry


def sign_token(
    private_key: rsa.RSAPrivateKey,
    kid: str,
    *,
    subject: str,
    role: Role,
    ttl_seconds: int,
    student_no: str | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    now: int | None = None,
) -> str:
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role.value,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if student_no is not None:
        claims["student_no"] = student_no
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})
