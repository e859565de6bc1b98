"""Upload attacks on the documents service through the gateway: each refused with a
4xx and its reason code, nothing stored, and the storage key never taken from the
client's file name."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.security]


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("invoice.html", "<html><script>alert(1)</script></html>")
    return out.getvalue()


def jpeg(width: int = 480, height: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 160)).save(out, "JPEG", quality=85)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes that declare ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def multipart(filename: str, content: bytes, declared: str) -> tuple[bytes, str]:
    """A multipart body with the file name exactly as given (an HTTP client would
    escape a NUL or a quote; an attacker's client does not)."""
    boundary = "securityboundary7MA4YWxkTrZu0gW"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="doc_type"\r\n\r\npassport\r\n'
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {declared}\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def test_upload_attacks_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, cast: Any, upload_samples: Any, figures: Any
) -> None:
    student = cast.headers("student_c")
    pdf = upload_samples.pdf()
    documents: list[tuple[str, str, bytes, str, set[str]]] = [
        # (what, file name, content, declared type, acceptable reason codes)
        (
            "zip disguised as a PDF",
            "passport.pdf",
            zip_archive(),
            "application/pdf",
            {"unsupported_type"},
        ),
        (
            "PDF with a zip appended",
            "passport.pdf",
            pdf + zip_archive(),
            "application/pdf",
            {"polyglot"},
        ),
        (
            "JPEG with a zip appended",
            "passport.jpg",
            jpeg() + zip_archive(),
            "image/jpeg",
            {"polyglot"},
        ),
        (
            "JPEG hiding a PDF",
            "passport.jpg",
            jpeg()[:-2] + pdf + b"\xff\xd9",
            "image/jpeg",
            {"polyglot"},
        ),
        (
            "PDF with JavaScript",
            "passport.pdf",
            upload_samples.pdf(javascript="app.alert('hi')"),
            "application/pdf",
            {"active_content"},
        ),
        (
            "HTML named as a PDF",
            "passport.pdf",
            b"<html><script>x()</script></html>",
            "application/pdf",
            {"unsupported_type"},
        ),
        (
            "huge declared PNG",
            "passport.png",
            png_declaring(100_000, 100_000),
            "image/png",
            {"too_many_pixels"},
        ),
        ("path traversal name", "../../etc/passwd.pdf", pdf, "application/pdf", {"bad_filename"}),
        ("Windows path name", "..\\..\\boot.ini.pdf", pdf, "application/pdf", {"bad_filename"}),
        ("drive and stream name", "C:evil.pdf", pdf, "application/pdf", {"bad_filename"}),
        ("NUL in the name", "passport.pdf\x00.exe", pdf, "application/pdf", {"bad_filename"}),
        (
            "right-to-left override",
            "passport\u202efdp.exe",
            pdf,
            "application/pdf",
            {"bad_filename"},
        ),
        ("empty file", "passport.pdf", b"", "application/pdf", {"empty_file"}),
    ]
    before = (await client.get("/api/documents/me/documents", headers=student)).json()
    codes: dict[str, str] = {}
    for what, name, content, declared, reasons in documents:
        body, content_type = multipart(name, content, declared)
        answer = await client.post(
            "/api/documents/me/documents",
            headers={**student, "content-type": content_type},
            content=body,
        )
        assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text)
        detail = answer.json()["detail"]
        code = detail.get("code") if isinstance(detail, dict) else None
        assert code in reasons, (what, answer.status_code, detail)
        codes[what] = code
    photo = await client.post(
        "/api/documents/me/photo",
        headers=student,
        files={"file": ("me.png", png_declaring(60_000, 80_000), "image/png")},
    )
    assert photo.status_code in (413, 422), photo.text
    after = (await client.get("/api/documents/me/documents", headers=student)).json()
    assert after == before, "a refused upload was stored"
    photos = (await client.get("/api/documents/me/photos", headers=student)).json()
    assert photos == [], "a refused photo was stored"
    figures.record("uploads.attacks", refused=len(codes) + 1, reasons=sorted(set(codes.values())))


async def test_a_stored_file_keeps_none_of_the_client_file_name(
    client: httpx.AsyncClient, cast: Any, upload_samples: Any
) -> None:
    """The accepted name is only displayed; the file is served under its id."""
    student = cast.headers("student_c")
    stored = await client.post(
        "/api/documents/me/documents",
        headers=student,
        data={"doc_type": "deed_poll"},
        files={"file": ("Deed poll; rm -rf ~.pdf", upload_samples.pdf(), "application/pdf")},
    )
    assert stored.status_code == 201, stored.text
    document = stored.json()["id"]
    content = await client.get(f"/api/documents/documents/{document}/content", headers=student)
    assert content.status_code == 200
    assert content.headers["content-disposition"] == f'inline; filename="document-{document}.pdf"'
    assert content.headers["x-content-type-options"] == "nosniff"
