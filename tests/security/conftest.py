"""The security suite's cast and its figures.

The cast is made through the public API of the running system (the ``system``
fixture), as a real client would: staff users of each role created by an
administrator, three admitted students who sign in with their JUPAS particulars,
a document, a photo and a notification belonging to student A, and tokens that
must not work (expired, signed by another key, tampered with).

Figures (requests tried, 5xx seen, cells checked, timings) are printed in the
terminal summary, whatever pytest captured, and written as JSON lines to
``test-artifacts/security/figures.jsonl``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from opr_shared.auth import Role, generate_private_key, sign_token
from opr_shared.devstack.stack import Stack, with_direct_connection
from opr_shared.testing.journey import (
    bearer,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.samples import face_photo
from pymongo import AsyncMongoClient
from pypdf import PdfWriter

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "security"
STAFF_PASSWORD = "Kettle-Harbour-Violet-2026"

# --- figures ----------------------------------------------------------------------

_FIGURES: list[dict[str, Any]] = []


class Figures:
    """What a test measured; each call adds one JSON line to the summary."""

    def record(self, name: str, **values: Any) -> None:
        _FIGURES.append({"figure": name, **values})


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("security suite figures", sep="=")
    requests = sum(int(e.get("requests", e.get("cells_checked", 0))) for e in _FIGURES)
    errors = sum(int(e.get("server_errors", 0)) for e in _FIGURES)
    entries = [{"figure": "total", "requests": requests, "server_errors": errors}, *_FIGURES]
    for entry in entries:
        values = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "figure")
        terminalreporter.write_line(f"{entry['figure']}: {values}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "figures.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for entry in entries:
            out.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
    terminalreporter.write_line(f"(also in {path})")


# --- files ---------------------------------------------------------------------------


def pdf_file(*, javascript: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    if javascript is not None:
        from pypdf.generic import DictionaryObject, NameObject, TextStringObject

        action = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject(javascript),
            }
        )
        writer.root_object[NameObject("/OpenAction")] = writer._add_object(action)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class UploadSamples:
    pdf = staticmethod(pdf_file)
    face_photo = staticmethod(face_photo)


@pytest.fixture(scope="session")
def upload_samples() -> type[UploadSamples]:
    return UploadSamples


# --- the cast -------------------------------------------------------------------------

STAFF_ROLES = ("registry_officer", "card_office", "admin")


@dataclass
class Cast:
    """Everyone the suite acts as, and student A's resources."""

    gateway_url: str
    rows: dict[str, dict[str, Any]]  # student_a / student_b / student_c -> roster row
    tokens: dict[str, str]  # principal -> a real access token
    staff_emails: dict[str, str]
    document_id: str
    photo_id: str
    notification_id: str
    real_kid: str
    real_key: Any
    import_id: str
    staff_password: str = STAFF_PASSWORD
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)

    def student_no(self, who: str) -> str:
        return str(self.rows[who]["student_no"])

    def headers(self, principal: str) -> dict[str, str]:
        return bearer(self.tokens[principal]) if principal in self.tokens else {}

    def bad_token(self, kind: str, base: str) -> str:
        """A token that must be refused, carrying ``base``'s identity and role."""
        claims = dict(self.claims[base])
        role = Role(claims["role"])
        student_no = claims.get("student_no")
        if kind == "expired":
            return sign_token(
                self.real_key,
                self.real_kid,
                subject=claims["sub"],
                role=role,
                ttl_seconds=600,
                student_no=student_no,
                now=int(time.time()) - 3600,
            )
        if kind == "foreign_key":
            # Another key under the real key id: only the signature can tell.
            return sign_token(
                generate_private_key(),
                self.real_kid,
                subject=claims["sub"],
                role=role,
                ttl_seconds=600,
                student_no=student_no,
            )
        if kind == "tampered":
            header, _, signature = self.tokens[base].split(".")
            claims["exp"] = int(claims["exp"]) + 86_400
            if role is Role.STUDENT:
                claims["student_no"] = self.student_no("student_b")
            payload = (
                base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode("ascii")
            )
            return f"{header}.{payload}.{signature}"
        raise ValueError(kind)


async def _until(what: str, attempt: Any, timeout: float = 90) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await attempt()
        if last is not None and not isinstance(last, httpx.Response):
            return last
        await asyncio.sleep(0.5)
    detail = f"{last.status_code} {last.text[:300]}" if isinstance(last, httpx.Response) else last
    raise AssertionError(f"timed out waiting for {what}: {detail}")


async def _real_signing_key(system: Stack, kid: str) -> Any:
    """Identity's private key, read from its database (unencrypted in development), to
    make an expired token exactly like one identity issued an hour ago."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        with_direct_connection(system.endpoints.mongodb_uri)
    )
    try:
        doc = await client["identity"]["signing_keys"].find_one({"_id": kid})
    finally:
        await client.close()
    assert doc is not None, f"no signing key {kid} in identity's database"
    return serialization.load_pem_private_key(doc["private_pem"].encode(), password=None)


@pytest.fixture(scope="session")
async def cast(system: Stack) -> AsyncIterator[Cast]:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=60) as client:
        tokens: dict[str, str] = {}
        demo_admin, demo_registry = await asyncio.gather(
            staff_token(client, "admin"), staff_token(client, "registry_officer")
        )
        suffix = uuid.uuid4().hex[:8]
        emails = {role: f"sec.{role}.{suffix}@staff.university.example" for role in STAFF_ROLES}
        rows = {
            who: roster_row(new_student_no()) for who in ("student_a", "student_b", "student_c")
        }

        async def staff_member(role: str) -> None:
            made = await client.post(
                "/api/identity/staff",
                headers=bearer(demo_admin),
                json={"email": emails[role], "role": role, "password": STAFF_PASSWORD},
            )
            assert made.status_code == 201, made.text
            login = await client.post(
                "/api/identity/sessions", json={"email": emails[role], "password": STAFF_PASSWORD}
            )
            assert login.status_code == 200, login.text
            tokens[role] = login.json()["access_token"]

        async def students() -> str:
            imported = await client.post(
                "/api/identity/admissions/import",
                params={"invite": "true"},
                headers=bearer(demo_registry),
                json=list(rows.values()),
            )
            assert imported.status_code == 200, imported.text
            assert imported.json()["created"] == 3, imported.text
            for who, row in rows.items():
                tokens[who] = await jupas_token(client, row)
            return str(imported.json()["import_id"])

        *_, import_id = await asyncio.gather(*(staff_member(r) for r in STAFF_ROLES), students())
        a = bearer(tokens["student_a"])

        async def upload(path: str, **parts: Any) -> Any:
            # 409 until the documents service has the admission from identity's event.
            answer = await client.post(path, headers=a, **parts)
            return answer.json()["id"] if answer.status_code == 201 else answer

        async def inbox() -> Any:
            answer = await client.get("/api/notifier/me/notifications", headers=a)
            items = answer.json() if answer.status_code == 200 else []
            return items[0]["id"] if items else answer

        document_id, photo_id, notification_id = await asyncio.gather(
            _until(
                "student A's document upload",
                lambda: upload(
                    "/api/documents/me/documents",
                    data={"doc_type": "passport"},
                    files={"file": ("passport.pdf", pdf_file(), "application/pdf")},
                ),
            ),
            _until(
                "student A's photo upload",
                lambda: upload(
                    "/api/documents/me/photo",
                    files={"file": ("me.jpg", face_photo(), "image/jpeg")},
                ),
            ),
            _until("student A's invitation in the inbox", inbox),
        )

        claims = {
            who: jwt.decode(token, options={"verify_signature": False})
            for who, token in tokens.items()
        }
        kid = jwt.get_unverified_header(tokens["student_a"])["kid"]
        yield Cast(
            gateway_url=system.gateway_url,
            rows=rows,
            tokens=tokens,
            staff_emails=emails,
            document_id=document_id,
            photo_id=photo_id,
            notification_id=notification_id,
            real_kid=kid,
            real_key=await _real_signing_key(system, kid),
            import_id=import_id,
            claims=claims,
        )


@pytest.fixture
async def client(cast: Cast) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cast.gateway_url, timeout=60) as http:
        yield http
