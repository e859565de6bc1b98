"""Logins, tokens, keys, activation, the caller's own account, and staff users."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from opr_shared.auth import Principal, Role, current_principal, require_roles
from pydantic import BaseModel, Field

from identity.api.context import Identity, identity_of
from identity.domain.accounts import ActivationRefused
from identity.handlers.accounts import PasswordRejected, activate_account
from identity.handlers.sessions import AccessDenied, Client, IssuedToken
from identity.handlers.staff import (
    StaffConflict,
    TotpRefused,
    confirm_totp,
    create_staff_user,
    start_totp_enrolment,
)
from identity.store import LOGIN_ATTEMPTS, STAFF_USERS, STUDENTS

router = APIRouter()
log = logging.getLogger(__name__)

IdentityDep = Annotated[Identity, Depends(identity_of)]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Staff = Annotated[
    Principal, Depends(require_roles(Role.REGISTRY_OFFICER, Role.CARD_OFFICE, Role.ADMIN))
]
Anyone = Annotated[Principal, Depends(current_principal)]

DENIED = HTTPException(401, "access denied", headers={"WWW-Authenticate": "Bearer"})


# --- sessions ---------------------------------------------------------------------


class JupasLoginIn(BaseModel):
    # Plain strings: a malformed value is a failed login like any other, not a 422
    # that would say which field was wrong.
    jupas_app_no: str = Field(default="", description="JUPAS application number, 8 digits")
    last_name: str = Field(default="", description="Surname, any case and spacing")
    first_name: str = Field(default="", description="Given names, any case and spacing")
    date_of_birth: str = Field(default="", description="DD/MM/YYYY", examples=["05/11/2007"])


class PasswordLoginIn(BaseModel):
    email: str = Field(default="", description="University (students) or staff e-mail address")
    password: str = ""
    totp: str | None = Field(default=None, description="Staff: the 6-digit code, when TOTP is on")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires")


def _client(request: Request) -> Client:
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    return Client(
        ip=forwarded or (request.client.host if request.client else None),
        user_agent=request.headers.get("user-agent"),
    )


def _token(issued: IssuedToken) -> TokenOut:
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


DENIED_RESPONSE: dict[int | str, dict[str, Any]] = {
    401: {"description": 'Always {"detail": "access denied"}, whatever was wrong'}
}


@router.post(
    "/sessions/jupas", response_model=TokenOut, tags=["sessions"], responses=DENIED_RESPONSE
)
async def login_jupas(body: JupasLoginIn, request: Request, identity: IdentityDep) -> TokenOut:
    """Login A: a JUPAS entrant's application number, names and date of birth."""
    try:
        issued = await identity.authenticator.login_jupas(
            body.jupas_app_no, body.last_name, body.first_name, body.date_of_birth, _client(request)
        )
    except AccessDenied:
        raise DENIED from None
    return _token(issued)


@router.post("/sessions", response_model=TokenOut, tags=["sessions"], responses=DENIED_RESPONSE)
async def login_password(
    body: PasswordLoginIn, request: Request, identity: IdentityDep
) -> TokenOut:
    """Login B: university (or staff) e-mail and password; staff with TOTP add the code."""
    try:
        issued = await identity.authenticator.login_password(
            body.email, body.password, body.totp, _client(request)
        )
    except AccessDenied:
        raise DENIED from None
    return _token(issued)


# --- keys ---------------------------------------------------------------------------


@router.get("/.well-known/jwks.json", tags=["keys"])
async def jwks(identity: IdentityDep, response: Response) -> dict[str, Any]:
    """The public keys that verify identity's tokens (every key a live token may use)."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return await identity.keys.jwks()


class KeyOut(BaseModel):
    kid: str
    created_at: datetime
    retired_at: datetime | None


@router.get("/signing-keys", response_model=list[KeyOut], tags=["keys"])
async def list_keys(identity: IdentityDep, _: Admin) -> list[KeyOut]:
    return [
        KeyOut(kid=k.kid, created_at=k.created_at, retired_at=k.retired_at)
        for k in await identity.keys.listing()
    ]


@router.post("/signing-keys/rotate", response_model=KeyOut, tags=["keys"])
async def rotate_keys(identity: IdentityDep, _: Admin) -> KeyOut:
    """A new signing key; older ones stay published until the tokens they signed expire."""
    kid = await identity.keys.rotate()
    # This replica verifies with the new key at once; others learn it from the
    # JWKS when a token names it.
    await identity.runtime.token_verifier.keys.refresh()
    key = next(k for k in await identity.keys.listing() if k.kid == kid)
    return KeyOut(kid=key.kid, created_at=key.created_at, retired_at=key.retired_at)


# --- activation and the caller's account -------------------------------------------------


class ActivateIn(BaseModel):
    token: str = Field(description="The token of the activation link")
    password: str = Field(description="The new password (10+ characters, not guessable)")


class ActivatedOut(BaseModel):
    student_no: str
    university_email: str = Field(description="The address to sign in with from now on")
    access_token: str | None = Field(
        default=None,
        description="The session the activation starts; absent if it could not be started"
        " (the account is active all the same: sign in with the address and password)",
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int | None = Field(default=None, description="Seconds until the token expires")


@router.post("/accounts/activate", response_model=ActivatedOut, tags=["accounts"])
async def activate(body: ActivateIn, request: Request, identity: IdentityDep) -> ActivatedOut:
    """Set the password with the invitation's token; the answer signs the student in."""
    if not 16 <= len(body.token.strip()) <= 128:
        raise HTTPException(400, "this activation link is not valid")
    try:
        activation = await activate_account(
            identity.runtime.uow,
            identity.hashing,
            body.token,
            body.password,
            domain=identity.settings.university_email_domain,
        )
    except ActivationRefused as exc:
        raise HTTPException(exc.status, exc.reason) from exc
    except PasswordRejected as exc:
        raise HTTPException(422, "password not accepted: " + "; ".join(exc.problems)) from exc
    activated = ActivatedOut(
        student_no=activation.student_no, university_email=activation.university_email
    )
    try:
        issued = await identity.authenticator.sign_in_activated(
            activation.student_no, activation.university_email, _client(request)
        )
    except Exception:
        # The account is active and the link used up: answering an error now would
        # tell the student to retry a link that no longer works.
        log.exception("activated, but no session could be started")
        return activated
    activated.access_token = issued.access_token
    activated.expires_in = issued.expires_in
    return activated


class MeOut(BaseModel):
    role: Role
    subject: str
    student_no: str | None = None
    surname: str | None = None
    given_names: str | None = None
    chinese_name: str | None = None
    university_email: str | None = None
    account_status: str | None = Field(default=None, description="admitted or active")
    programme_code: str | None = None
    programme_name: str | None = None
    intake_year: int | None = None
    admission_route: str | None = None
    email: str | None = Field(default=None, description="Staff: the login e-mail")
    totp_enabled: bool | None = None


@router.get("/me", response_model=MeOut, tags=["accounts"])
async def me(principal: Anyone, identity: IdentityDep) -> MeOut:
    db = identity.runtime.db
    if principal.role is Role.STUDENT:
        student = await db[STUDENTS].find_one({"_id": principal.student_no})
        if student is None:
            raise HTTPException(404, "no admitted student with this student number")
        return MeOut(
            role=principal.role,
            subject=principal.subject,
            student_no=student["_id"],
            surname=student["surname"],
            given_names=student["given_names"],
            chinese_name=student.get("chinese_name"),
            university_email=student.get("university_email"),
            account_status=student.get("status"),
            programme_code=student["programme_code"],
            programme_name=student["programme_name"],
            intake_year=student["intake_year"],
            admission_route=student["admission_route"],
        )
    staff = await db[STAFF_USERS].find_one({"_id": principal.subject})
    if staff is None:
        raise HTTPException(404, "no staff user with this id")
    return MeOut(
        role=principal.role,
        subject=principal.subject,
        email=staff["email"],
        totp_enabled=bool((staff.get("totp") or {}).get("confirmed")),
    )


# --- staff users -----------------------------------------------------------------------


class StaffIn(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    role: Literal["registry_officer", "card_office", "admin"]
    password: str = Field(description="Initial password (10+ characters, not guessable)")


class StaffOut(BaseModel):
    staff_id: str


@router.post("/staff", response_model=StaffOut, status_code=201, tags=["staff"])
async def create_staff(body: StaffIn, identity: IdentityDep, admin: Admin) -> StaffOut:
    try:
        staff_id = await create_staff_user(
            identity.runtime.db,
            identity.hashing,
            email=body.email,
            role=Role(body.role),
            password=body.password,
            created_by=admin.subject,
        )
    except StaffConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except PasswordRejected as exc:
        raise HTTPException(422, "password not accepted: " + "; ".join(exc.problems)) from exc
    return StaffOut(staff_id=staff_id)


class TotpEnrolmentOut(BaseModel):
    secret: str = Field(description="Base32 secret, for authenticator apps without a QR code")
    otpauth_uri: str = Field(description="otpauth:// URI, to show as a QR code")


class TotpConfirmIn(BaseModel):
    code: str = Field(description="A current 6-digit code from the authenticator")


@router.post("/staff/me/totp", response_model=TotpEnrolmentOut, tags=["staff"])
async def enrol_totp(identity: IdentityDep, staff: Staff) -> TotpEnrolmentOut:
    """Start TOTP enrolment; it takes effect once a code is confirmed."""
    try:
        enrolment = await start_totp_enrolment(
            identity.runtime.db, staff.subject, identity.authenticator.sealer
        )
    except TotpRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    return TotpEnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post("/staff/me/totp/confirm", status_code=204, tags=["staff"])
async def confirm_totp_enrolment(
    body: TotpConfirmIn, identity: IdentityDep, staff: Staff
) -> Response:
    """Turn TOTP on: from now on this staff user's login needs a code."""
    try:
        await confirm_totp(
            identity.runtime.db, staff.subject, body.code, identity.authenticator.sealer
        )
    except TotpRefused as exc:
        raise HTTPException(400, str(exc)) from exc
    return Response(status_code=204)


class LoginAttemptOut(BaseModel):
    at: datetime
    method: str
    outcome: str
    reason: str | None
    account: str | None
    identifier: str = Field(description="The submitted identifier, masked")
    client_ip: str | None


@router.get("/login-attempts", response_model=list[LoginAttemptOut], tags=["staff"])
async def login_attempts(
    identity: IdentityDep,
    _: Admin,
    account: Annotated[
        str | None, Query(description="student:<student_no> or staff:<staff_id>")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LoginAttemptOut]:
    """The login audit, newest first."""
    selector = {"account": account} if account else {}
    cursor = identity.runtime.db[LOGIN_ATTEMPTS].find(selector).sort("at", -1).limit(limit)
    return [LoginAttemptOut(**doc) async for doc in cursor]
