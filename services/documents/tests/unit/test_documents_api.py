"""The HTTP surface in-process, for what is decided before any database access:
authentication, roles, the streamed size cap and content refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from documents.api.routes import admitted_student
from documents.main import create_app
from documents.settings import Settings
from fastapi import Depends
from fastapi.testclient import TestClient
from opr_shared.auth import (
    KeySet,
    Principal,
    Role,
    TokenVerifier,
    current_student,
    generate_private_key,
    public_jwk,
    sign_token,
)

KEY = generate_private_key()
MAX_BYTES = 50_000


def auth(role: Role, student_no: str | None = None) -> dict[str, str]:
    token = sign_token(
        KEY, "k", subject=student_no or role.value, role=role, ttl_seconds=60, student_no=student_no
    )
    return {"Authorization": f"Bearer {token}"}


def student() -> dict[str, str]:
    # Minted when used: a token made at import would expire during a long suite.
    return auth(Role.STUDENT, "20261234")


@pytest.fixture(scope="module")
def client() -> TestClient:
    # Nothing listens on these: a test reaching the database or bucket would fail.
    settings = Settings(
        mongodb_uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200",
        s3_endpoint="http://127.0.0.1:9",
        max_document_bytes=MAX_BYTES,
    )
    app = create_app(settings)

    async def jwks() -> dict[str, Any]:
        return {"keys": [public_jwk(KEY, "k")]}

    async def assume_admitted(student: Annotated[Principal, Depends(current_student)]) -> Principal:
        return student  # the admission check reads the database: not here

    app.state.token_verifier = TokenVerifier(KeySet(jwks))
    app.dependency_overrides[admitted_student] = assume_admitted
    return TestClient(app)  # no lifespan: no connections are made


def test_every_endpoint_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/documents/openapi.json").json()["paths"]
    assert {
        "/api/documents/me/documents",
        "/api/documents/me/photo",
        "/api/documents/queue",
        "/api/documents/documents/{document_id}/content",
        "/api/documents/documents/{document_id}/verify",
        "/api/documents/documents/{document_id}/reject",
        "/api/documents/photos/{photo_id}/approve",
        "/api/documents/photos/{photo_id}/reject",
    } <= set(paths)
    upload = paths["/api/documents/me/documents"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload


def test_uploads_need_a_student_token(client: TestClient, samples: Any) -> None:
    files = {"file": ("a.pdf", samples.pdf())}
    assert client.post("/api/documents/me/documents", files=files).status_code == 401
    staff = client.post(
        "/api/documents/me/documents", files=files, headers=auth(Role.REGISTRY_OFFICER)
    )
    assert staff.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("get", "/api/documents/queue?kind=document", Role.CARD_OFFICE),
        ("get", "/api/documents/queue?kind=photo", Role.REGISTRY_OFFICER),
        ("get", "/api/documents/queue", Role.STUDENT),
        (
            "post",
            "/api/documents/documents/00000000-0000-4000-8000-000000000000/verify",
            Role.CARD_OFFICE,
        ),
        (
            "post",
            "/api/documents/photos/00000000-0000-4000-8000-000000000000/approve",
            Role.REGISTRY_OFFICER,
        ),
        (
            "post",
            "/api/documents/photos/00000000-0000-4000-8000-000000000000/approve",
            Role.STUDENT,
        ),
    ],
)
def test_staff_actions_are_role_checked(
    client: TestClient, method: str, path: str, role: Role
) -> None:
    headers = auth(role, "20261234" if role is Role.STUDENT else None)
    answer = client.request(method, path, headers=headers, json={"reason": "x"})
    assert answer.status_code == 403


def test_a_body_over_the_cap_is_refused_from_its_declared_length(client: TestClient) -> None:
    answer = client.post(
        "/api/documents/me/documents",
        data={"doc_type": "passport"},
        files={"file": ("big.pdf", b"%PDF-" + b"0" * (MAX_BYTES * 3))},
        headers=student(),
    )
    assert answer.status_code == 413
    assert answer.json()["detail"]["code"] == "too_large"


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_cap(
    client: TestClient,
) -> None:
    sent = 0
    boundary = "xyz"

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n%PDF-"
        ).encode()
        for _ in range(1000):  # 64 MB if read to the end
            sent += 1
            yield b"0" * 65_536

    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://documents") as http:
        answer = await http.post(
            "/api/documents/me/documents",
            content=body(),
            headers={**student(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413
    assert sent < 10  # reading stopped near the cap


def test_a_request_that_is_not_multipart_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/documents/me/documents", json={"doc_type": "passport"}, headers=student()
    )
    assert answer.status_code == 415


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (b"", "a.pdf", 400, "empty_file"),
        (b"GIF89a\x01\x00", "a.pdf", 415, "unsupported_type"),
        (None, "../../../etc/passwd", 400, "bad_filename"),
    ],
)
def test_bad_files_are_refused_before_anything_is_stored(
    client: TestClient, samples: Any, data: bytes | None, name: str, status: int, code: str
) -> None:
    answer = client.post(
        "/api/documents/me/documents",
        data={"doc_type": "passport"},
        files={"file": (name, samples.pdf() if data is None else data)},
        headers=student(),
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]["code"] == code


def test_an_unknown_document_type_is_refused(client: TestClient, samples: Any) -> None:
    answer = client.post(
        "/api/documents/me/documents",
        data={"doc_type": "../passport"},
        files={"file": ("a.pdf", samples.pdf())},
        headers=student(),
    )
    assert answer.status_code == 422
    assert "doc_type must be one of" in answer.json()["detail"]["message"]
