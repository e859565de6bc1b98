"""Authorisation matrix: every endpoint of every service, through the gateway, as
each kind of caller.

The expected policy below is written from the specification (SPEC.md §6 and the
roles of §1-§3), not read from the code: who may call what. Every operation the
services publish in their OpenAPI documents must appear in it, so a new endpoint
cannot slip in without a decision about who may use it.

Callers: nobody (no token), student A, student B (A's resources are someone
else's to B), a registry officer, the card office, an administrator, and three
tokens that must never work: one that expired, one signed by another key under
identity's key id, and a real one whose claims were edited. The bad tokens carry
the identity and role of a caller who *is* allowed, so only the token is wrong.

Expected answers: an allowed call is neither 401 nor 403 (and never 5xx; on
student A's own resource it is a 2xx); a bad or missing token gets 401; a wrong
role gets 403; student B on student A's resource gets 403 or 404.

Calls that would change what other tests rely on are made with a body that fails
validation (FastAPI checks the caller before it reports a bad body, so a 422
still proves the caller got through); the others are real calls on the suite's
own students. Rotating the signing key is real, and done last.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.security]

SERVICES = ("identity", "registration", "documents", "notifier", "card")
VALID = ("student_a", "student_b", "registry_officer", "card_office", "admin")
BAD_TOKENS = ("expired", "foreign_key", "tampered")
CALLERS = ("anonymous", *VALID, *BAD_TOKENS)


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str] = frozenset()
    public: bool = False  # anyone, with or without a token
    owned_by_a: bool = False  # the resource is student A's: B is refused


def allow(*callers: str, owned_by_a: bool = False) -> Rule:
    return Rule(frozenset(callers), owned_by_a=owned_by_a)


PUBLIC = Rule(public=True)
STUDENTS = allow("student_a", "student_b")  # each on their own records ("me")
EVERYONE_SIGNED_IN = allow(*VALID)
REGISTRY = allow("registry_officer", "admin")
CARD_OFFICE = allow("card_office", "admin")
STAFF = allow("registry_officer", "card_office", "admin")
ADMIN = allow("admin")


def owner_a_and(*staff: str) -> Rule:
    return allow("student_a", *staff, owned_by_a=True)


# The policy. Keys are "METHOD path" as in the OpenAPI documents; a " | variant"
# suffix is a second probe of the same operation with a different rule.
POLICY: dict[str, Rule] = {
    # identity: roster and invitations are the registry's (§6); logins, the JWKS
    # and activation are public; keys, staff users, the login audit and dead
    # letters are the administrator's.
    "POST /api/identity/admissions/import": REGISTRY,
    "GET /api/identity/admissions/imports/{import_id}": REGISTRY,
    "POST /api/identity/invitations": REGISTRY,
    "POST /api/identity/sessions/jupas": PUBLIC,
    "POST /api/identity/sessions": PUBLIC,
    "GET /api/identity/.well-known/jwks.json": PUBLIC,
    "GET /api/identity/signing-keys": ADMIN,
    "POST /api/identity/signing-keys/rotate": ADMIN,
    "POST /api/identity/accounts/activate": PUBLIC,
    "GET /api/identity/me": EVERYONE_SIGNED_IN,
    "POST /api/identity/staff": ADMIN,
    "POST /api/identity/staff/me/totp": STAFF,
    "POST /api/identity/staff/me/totp/confirm": STAFF,
    "GET /api/identity/login-attempts": ADMIN,
    "GET /api/identity/admin/dead-letters": ADMIN,
    "POST /api/identity/admin/dead-letters/replay": ADMIN,
    # registration: the student's own form; intakes and the cohort are the registry's.
    "GET /api/registration/me": STUDENTS,
    "PUT /api/registration/me/form": STUDENTS,
    "POST /api/registration/me/submit": STUDENTS,
    "GET /api/registration/intakes": REGISTRY,
    "GET /api/registration/intakes/{year}": REGISTRY,
    "PUT /api/registration/intakes/{year}": REGISTRY,
    "POST /api/registration/intakes/{year}/close": REGISTRY,
    "GET /api/registration/registrations": REGISTRY,
    "GET /api/registration/registrations/export.csv": REGISTRY,
    "GET /api/registration/registrations/{student_no}": REGISTRY,
    "GET /api/registration/admin/dead-letters": ADMIN,
    "POST /api/registration/admin/dead-letters/replay": ADMIN,
    # documents: uploads are the student's; the registry verifies documents (§1),
    # the card office approves photos (§6); the queue is theirs by kind. Identity
    # documents carry HKID and passport numbers (§5): the card office has no use
    # for them, while a photo is seen by any staff and its owner.
    "GET /api/documents/me/documents": STUDENTS,
    "POST /api/documents/me/documents": STUDENTS,
    "POST /api/documents/me/photo": STUDENTS,
    "GET /api/documents/me/photos": STUDENTS,
    "GET /api/documents/photo-specification": PUBLIC,
    "GET /api/documents/queue": REGISTRY,
    "GET /api/documents/queue | kind=photo": CARD_OFFICE,
    "GET /api/documents/documents/{document_id}/content": owner_a_and("registry_officer", "admin"),
    "GET /api/documents/photos/{photo_id}/content": owner_a_and(
        "registry_officer", "card_office", "admin"
    ),
    "POST /api/documents/documents/{document_id}/content-link": REGISTRY,
    "POST /api/documents/photos/{photo_id}/content-link": STAFF,
    "POST /api/documents/documents/{document_id}/verify": REGISTRY,
    "POST /api/documents/documents/{document_id}/reject": REGISTRY,
    "POST /api/documents/photos/{photo_id}/approve": CARD_OFFICE,
    "POST /api/documents/photos/{photo_id}/reject": CARD_OFFICE,
    "GET /api/documents/admin/dead-letters": ADMIN,
    "POST /api/documents/admin/dead-letters/replay": ADMIN,
    # notifier: the delivery log is for staff (§6); resending a student's mail is the
    # registry's, who answer for the communication with students; the inbox is the
    # student's own.
    "GET /api/notifier/notifications": STAFF,
    "GET /api/notifier/notifications/{notification_id}": STAFF,
    "POST /api/notifier/notifications/{notification_id}/resend": REGISTRY,
    "GET /api/notifier/templates": STAFF,
    "GET /api/notifier/templates/{name}/preview": STAFF,
    "GET /api/notifier/me/notifications": STUDENTS,
    "GET /api/notifier/me/notifications/{notification_id}": owner_a_and(),
    "POST /api/notifier/me/notifications/{notification_id}/read": owner_a_and(),
    "GET /api/notifier/admin/dead-letters": ADMIN,
    "POST /api/notifier/admin/dead-letters/replay": ADMIN,
    # card: the student's card and booking; the schedule, records and collection
    # are the card office's.
    "GET /api/card/me": STUDENTS,
    "GET /api/card/me/slots": STUDENTS,
    "POST /api/card/me/booking": STUDENTS,
    "GET /api/card/schedule": CARD_OFFICE,
    "PUT /api/card/schedule": CARD_OFFICE,
    "GET /api/card/holders/{student_no}": CARD_OFFICE,
    "GET /api/card/cards/{card_no}": CARD_OFFICE,
    "GET /api/card/cards/{card_no}/image.png": CARD_OFFICE,
    "POST /api/card/cards/{card_no}/collected": CARD_OFFICE,
    "GET /api/card/admin/dead-letters": ADMIN,
    "POST /api/card/admin/dead-letters/replay": ADMIN,
}


# --- how each operation is called -------------------------------------------------


@dataclass
class Call:
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None


Probe = Callable[[Any], Call]
NOT_A_LIST = {"ids": 7}  # dead-letter replay refused at validation: nothing replayed
CARD_NO = "12345678"


def probes(pdf_bytes: bytes) -> dict[str, Probe]:
    doc = "/api/documents/documents/{}"
    photo = "/api/documents/photos/{}"
    note = "/api/notifier/notifications/{}"
    inbox = "/api/notifier/me/notifications/{}"
    table: dict[str, Probe] = {
        "POST /api/identity/admissions/import": lambda c: Call(
            "/api/identity/admissions/import", json=[]
        ),
        "GET /api/identity/admissions/imports/{import_id}": lambda c: Call(
            f"/api/identity/admissions/imports/{c.import_id}"
        ),
        "POST /api/identity/invitations": lambda c: Call(
            "/api/identity/invitations", json={"student_nos": [c.student_no("student_c")]}
        ),
        "POST /api/identity/sessions/jupas": lambda c: Call(
            "/api/identity/sessions/jupas",
            json={
                "jupas_app_no": c.rows["student_c"]["jupas_app_no"],
                "last_name": c.rows["student_c"]["surname"],
                "first_name": c.rows["student_c"]["given_names"],
                "date_of_birth": c.rows["student_c"]["date_of_birth"],
            },
        ),
        "POST /api/identity/sessions": lambda c: Call(
            "/api/identity/sessions",
            json={"email": c.staff_emails["card_office"], "password": c.staff_password},
        ),
        "GET /api/identity/.well-known/jwks.json": lambda c: Call(
            "/api/identity/.well-known/jwks.json"
        ),
        "GET /api/identity/signing-keys": lambda c: Call("/api/identity/signing-keys"),
        "POST /api/identity/signing-keys/rotate": lambda c: Call(
            "/api/identity/signing-keys/rotate"
        ),
        "POST /api/identity/accounts/activate": lambda c: Call(
            "/api/identity/accounts/activate",
            json={"token": uuid.uuid4().hex, "password": "Harbour-Kettle-Violet-42"},
        ),
        "GET /api/identity/me": lambda c: Call("/api/identity/me"),
        "POST /api/identity/staff": lambda c: Call(
            "/api/identity/staff",
            json={
                "email": f"sec.made.{uuid.uuid4().hex[:10]}@staff.university.example",
                "role": "card_office",
                "password": c.staff_password,
            },
        ),
        "POST /api/identity/staff/me/totp": lambda c: Call("/api/identity/staff/me/totp"),
        "POST /api/identity/staff/me/totp/confirm": lambda c: Call(
            "/api/identity/staff/me/totp/confirm", json={"code": "000000"}
        ),
        "GET /api/identity/login-attempts": lambda c: Call(
            "/api/identity/login-attempts", params={"limit": 5}
        ),
        "GET /api/registration/me": lambda c: Call("/api/registration/me"),
        "PUT /api/registration/me/form": lambda c: Call("/api/registration/me/form", json={}),
        # An empty draft cannot be submitted: refused as incomplete, nothing changes.
        "POST /api/registration/me/submit": lambda c: Call("/api/registration/me/submit"),
        "GET /api/registration/intakes": lambda c: Call("/api/registration/intakes"),
        "GET /api/registration/intakes/{year}": lambda c: Call("/api/registration/intakes/2027"),
        # Refused at validation (no dates): the shared intakes stay as they are.
        "PUT /api/registration/intakes/{year}": lambda c: Call(
            "/api/registration/intakes/2099", json={}
        ),
        "POST /api/registration/intakes/{year}/close": lambda c: Call(
            "/api/registration/intakes/2099/close"
        ),
        "GET /api/registration/registrations": lambda c: Call(
            "/api/registration/registrations", params={"q": c.student_no("student_a")}
        ),
        "GET /api/registration/registrations/export.csv": lambda c: Call(
            "/api/registration/registrations/export.csv", params={"q": c.student_no("student_a")}
        ),
        "GET /api/registration/registrations/{student_no}": lambda c: Call(
            f"/api/registration/registrations/{c.student_no('student_a')}"
        ),
        "GET /api/documents/me/documents": lambda c: Call("/api/documents/me/documents"),
        "POST /api/documents/me/documents": lambda c: Call(
            "/api/documents/me/documents",
            data={"doc_type": "supporting_document"},
            files={"file": ("letter.pdf", pdf_bytes, "application/pdf")},
        ),
        # Not an image: refused by content, nothing stored.
        "POST /api/documents/me/photo": lambda c: Call(
            "/api/documents/me/photo", files={"file": ("me.jpg", b"not a picture", "image/jpeg")}
        ),
        "GET /api/documents/me/photos": lambda c: Call("/api/documents/me/photos"),
        "GET /api/documents/photo-specification": lambda c: Call(
            "/api/documents/photo-specification"
        ),
        "GET /api/documents/queue": lambda c: Call(
            "/api/documents/queue", params={"kind": "document", "limit": 5}
        ),
        "GET /api/documents/queue | kind=photo": lambda c: Call(
            "/api/documents/queue", params={"kind": "photo", "limit": 5}
        ),
        "GET /api/documents/documents/{document_id}/content": lambda c: Call(
            doc.format(c.document_id) + "/content"
        ),
        "GET /api/documents/photos/{photo_id}/content": lambda c: Call(
            photo.format(c.photo_id) + "/content"
        ),
        "POST /api/documents/documents/{document_id}/content-link": lambda c: Call(
            doc.format(c.document_id) + "/content-link"
        ),
        "POST /api/documents/photos/{photo_id}/content-link": lambda c: Call(
            photo.format(c.photo_id) + "/content-link"
        ),
        "POST /api/documents/documents/{document_id}/verify": lambda c: Call(
            doc.format(c.document_id) + "/verify", json={}
        ),
        "POST /api/documents/documents/{document_id}/reject": lambda c: Call(
            doc.format(c.document_id) + "/reject", json={"reason": "The scan is unreadable."}
        ),
        "POST /api/documents/photos/{photo_id}/approve": lambda c: Call(
            photo.format(c.photo_id) + "/approve"
        ),
        "POST /api/documents/photos/{photo_id}/reject": lambda c: Call(
            photo.format(c.photo_id) + "/reject", json={"reason": "Glasses reflect the light."}
        ),
        "GET /api/notifier/notifications": lambda c: Call(
            "/api/notifier/notifications", params={"student_no": c.student_no("student_a")}
        ),
        "GET /api/notifier/notifications/{notification_id}": lambda c: Call(
            note.format(c.notification_id)
        ),
        "POST /api/notifier/notifications/{notification_id}/resend": lambda c: Call(
            note.format(c.notification_id) + "/resend"
        ),
        "GET /api/notifier/templates": lambda c: Call("/api/notifier/templates"),
        "GET /api/notifier/templates/{name}/preview": lambda c: Call(
            "/api/notifier/templates/invitation/preview"
        ),
        "GET /api/notifier/me/notifications": lambda c: Call("/api/notifier/me/notifications"),
        "GET /api/notifier/me/notifications/{notification_id}": lambda c: Call(
            inbox.format(c.notification_id)
        ),
        "POST /api/notifier/me/notifications/{notification_id}/read": lambda c: Call(
            inbox.format(c.notification_id) + "/read"
        ),
        "GET /api/card/me": lambda c: Call("/api/card/me"),
        "GET /api/card/me/slots": lambda c: Call("/api/card/me/slots"),
        "POST /api/card/me/booking": lambda c: Call(
            "/api/card/me/booking", json={"slot_id": "2099-01-01-0900"}
        ),
        "GET /api/card/schedule": lambda c: Call("/api/card/schedule"),
        # Refused at validation: the shared collection schedule stays as it is.
        "PUT /api/card/schedule": lambda c: Call("/api/card/schedule", json={}),
        "GET /api/card/holders/{student_no}": lambda c: Call(
            f"/api/card/holders/{c.student_no('student_a')}"
        ),
        "GET /api/card/cards/{card_no}": lambda c: Call(f"/api/card/cards/{CARD_NO}"),
        "GET /api/card/cards/{card_no}/image.png": lambda c: Call(
            f"/api/card/cards/{CARD_NO}/image.png"
        ),
        "POST /api/card/cards/{card_no}/collected": lambda c: Call(
            f"/api/card/cards/{CARD_NO}/collected"
        ),
    }
    for service in SERVICES:
        base = f"/api/{service}/admin/dead-letters"
        table[f"GET {base}"] = lambda c, base=base: Call(base)
        table[f"POST {base}/replay"] = lambda c, base=base: Call(base + "/replay", json=NOT_A_LIST)
    return table


# --- the expectations -----------------------------------------------------------------


def token_base(rule: Rule) -> str:
    """Whose identity a bad token carries: someone the rule lets in."""
    for who in ("student_a", "registry_officer", "card_office", "admin"):
        if who in rule.allowed:
            return who
    return "admin"


def verdict(rule: Rule, caller: str, status: int) -> str | None:
    """None when ``status`` is what the policy expects of ``caller``, else why not."""
    if status >= 500:
        return "server error"
    let_in = status not in (401, 403)
    if rule.public:
        return None if let_in else "refused on a public endpoint"
    if caller == "anonymous" or caller in BAD_TOKENS:
        return None if status == 401 else "expected 401"
    if caller in rule.allowed:
        if not let_in:
            return "refused an allowed caller"
        if rule.owned_by_a and caller == "student_a" and not 200 <= status < 300:
            return "the owner could not use their own resource"
        return None
    if rule.owned_by_a and caller == "student_b":
        return None if status in (403, 404) else "expected 403/404 on another student's resource"
    return None if status == 403 else "expected 403 for a wrong role"


def endpoint_of(key: str) -> str:
    return key.split(" | ")[0]


async def published_operations(client: httpx.AsyncClient) -> set[str]:
    found: set[str] = set()
    for service in SERVICES:
        answer = await client.get(f"/api/{service}/openapi.json")
        assert answer.status_code == 200, f"{service}: {answer.status_code}"
        for path, operations in answer.json()["paths"].items():
            for method in operations:
                if method in ("get", "put", "post", "patch", "delete"):
                    found.add(f"{method.upper()} {path}")
    return found


async def test_every_published_endpoint_has_a_policy(
    client: httpx.AsyncClient, upload_samples: Any, figures: Any
) -> None:
    published = await published_operations(client)
    covered = {endpoint_of(key) for key in POLICY}
    assert published - covered == set(), "endpoints without an authorisation policy"
    assert covered - published == set(), "policy rows for endpoints that no longer exist"
    assert set(POLICY) == set(probes(upload_samples.pdf())), "every policy row needs a probe"
    figures.record("authorisation.coverage", endpoints=len(published), policy_rows=len(POLICY))


async def test_authorisation_matrix(
    client: httpx.AsyncClient, cast: Any, upload_samples: Any, figures: Any
) -> None:
    table = probes(upload_samples.pdf())
    bad = {
        (kind, base): cast.bad_token(kind, base)
        for kind in BAD_TOKENS
        for base in ("student_a", "registry_officer", "card_office", "admin")
    }
    gate = asyncio.Semaphore(6)
    results: list[tuple[str, str, int, str]] = []

    async def one(key: str, caller: str) -> None:
        rule = POLICY[key]
        call = table[key](cast)
        method = key.split(" ", 1)[0]
        if caller in BAD_TOKENS:
            headers = {"Authorization": f"Bearer {bad[(caller, token_base(rule))]}"}
        else:
            headers = cast.headers(caller)
        async with gate:
            answer = await client.request(
                method,
                call.path,
                params=call.params,
                json=call.json,
                data=call.data,
                files=call.files,
                headers=headers,
            )
        results.append((key, caller, answer.status_code, answer.text[:160]))

    last = "POST /api/identity/signing-keys/rotate"
    await asyncio.gather(*(one(k, c) for k in POLICY if k != last for c in CALLERS))
    # Rotation last: every token above was signed with the key it retires.
    for caller in CALLERS:
        await one(last, caller)

    wrong = [
        f"{caller:>16} {key}: {status} ({why}) {text}"
        for key, caller, status, text in sorted(results)
        if (why := verdict(POLICY[key], caller, status)) is not None
    ]
    allowed = sum(1 for r in results if r[2] not in (401, 403))
    figures.record(
        "authorisation.matrix",
        endpoints=len({endpoint_of(k) for k in POLICY}),
        probes=len(POLICY),
        callers=len(CALLERS),
        cells_checked=len(results),
        let_in=allowed,
        refused=len(results) - allowed,
        server_errors=sum(1 for r in results if r[2] >= 500),
        mismatches=len(wrong),
    )
    assert not wrong, "answers that break the policy:\n" + "\n".join(wrong)


async def test_a_staff_content_link_opens_its_own_file_only(
    client: httpx.AsyncClient, cast: Any
) -> None:
    """The short-lived link works without a token, for the one file it was made for."""
    made = await client.post(
        f"/api/documents/documents/{cast.document_id}/content-link",
        headers=cast.headers("registry_officer"),
    )
    assert made.status_code == 200, made.text
    url = made.json()["url"]
    link = httpx.URL(url).params["link"]
    assert (await client.get(url)).status_code == 200
    elsewhere = await client.get(
        f"/api/documents/photos/{cast.photo_id}/content", params={"link": link}
    )
    assert elsewhere.status_code == 403
    guessed = await client.get(
        f"/api/documents/documents/{cast.document_id}/content", params={"link": link[:-2] + "xx"}
    )
    assert guessed.status_code == 403
