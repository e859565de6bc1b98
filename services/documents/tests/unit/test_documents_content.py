"""Content checks on real generated PDF/JPEG/PNG files, and every attack refused."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from documents.domain.content import (
    DOCUMENT_TYPES,
    PHOTO_TYPES,
    ContentLimits,
    ContentType,
    Refusal,
    UploadRefused,
    display_name,
    inspect_file,
    sniff,
)
from PIL import Image

LIMITS = ContentLimits(max_bytes=2_000_000, max_pixels=40_000_000, max_pdf_pages=10)


def refused(data: bytes, allowed: Any = DOCUMENT_TYPES, limits: ContentLimits = LIMITS) -> Refusal:
    with pytest.raises(UploadRefused) as caught:
        inspect_file(data, allowed=allowed, limits=limits)
    assert caught.value.reason  # a reason for the user, always
    return caught.value.code


# --- what is accepted ------------------------------------------------------------


def test_a_pdf_is_recognised_counted_and_hashed(samples: Any) -> None:
    data = samples.pdf(pages=3)
    inspected = inspect_file(data, allowed=DOCUMENT_TYPES, limits=LIMITS)
    assert inspected.content_type is ContentType.PDF
    assert inspected.pages == 3
    assert inspected.size_bytes == len(data)
    assert inspected.sha256 == hashlib.sha256(data).hexdigest()


def test_a_scanned_pdf_made_from_an_image_is_accepted(samples: Any) -> None:
    inspected = inspect_file(samples.image_pdf(), allowed=DOCUMENT_TYPES, limits=LIMITS)
    assert (inspected.content_type, inspected.pages) == (ContentType.PDF, 1)


@pytest.mark.parametrize(("fmt", "kind"), [("jpeg", ContentType.JPEG), ("png", ContentType.PNG)])
def test_images_are_recognised_by_content_with_their_size(
    samples: Any, fmt: str, kind: ContentType
) -> None:
    data = getattr(samples, fmt)(samples.scan(300, 400))
    inspected = inspect_file(data, allowed=DOCUMENT_TYPES, limits=LIMITS)
    assert (inspected.content_type, inspected.width, inspected.height) == (kind, 300, 400)


def test_the_face_photo_with_exif_and_a_thumbnail_is_an_acceptable_jpeg(samples: Any) -> None:
    exif = Image.Exif()
    exif[0x0112] = 1  # orientation
    data = samples.jpeg(samples.portrait(), exif=exif.tobytes())
    assert inspect_file(data, allowed=PHOTO_TYPES, limits=LIMITS).content_type is ContentType.JPEG


def test_sniffing_ignores_names_and_needs_the_magic_at_offset_zero(samples: Any) -> None:
    assert sniff(samples.pdf()) is ContentType.PDF
    assert sniff(b" " + samples.pdf()) is None
    assert sniff(b"GIF89a....") is None


# --- refusals ---------------------------------------------------------------------


def test_an_empty_file_is_refused(samples: Any) -> None:
    assert refused(b"") is Refusal.EMPTY


def test_a_file_over_the_cap_is_refused(samples: Any) -> None:
    data = samples.png(samples.scan())
    assert refused(data, limits=ContentLimits(max_bytes=len(data) - 1)) is Refusal.TOO_LARGE
    assert inspect_file(data, allowed=DOCUMENT_TYPES, limits=ContentLimits(max_bytes=len(data)))


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"<html><body>hello</body></html>",
        b"PK\x03\x04not really a zip",
        b"MZ\x90\x00 an executable",
        b"plain text that claims to be a pdf",
    ],
)
def test_other_formats_are_refused_whatever_they_claim(data: bytes) -> None:
    assert refused(data) is Refusal.UNSUPPORTED_TYPE


def test_a_pdf_is_not_a_photo(samples: Any) -> None:
    assert refused(samples.pdf(), allowed=PHOTO_TYPES) is Refusal.UNSUPPORTED_TYPE


def test_a_decompression_bomb_is_refused_from_its_header(samples: Any) -> None:
    bomb = samples.png_header_only(100_000, 100_000)  # 10 gigapixels in ~100 bytes
    assert len(bomb) < 1000
    assert refused(bomb) is Refusal.TOO_MANY_PIXELS


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(samples: Any) -> None:
    data = samples.png(Image.new("L", (2000, 2000)))  # 4 MP of zeros: a few KB
    assert len(data) < 50_000
    limits = ContentLimits(max_bytes=1_000_000, max_pixels=1_000_000)
    assert refused(data, limits=limits) is Refusal.TOO_MANY_PIXELS


def test_a_pdf_with_too_many_pages_is_refused(samples: Any) -> None:
    assert refused(samples.pdf(pages=11)) is Refusal.TOO_MANY_PAGES


@pytest.mark.parametrize("fmt", ["jpeg", "png", "image_pdf"])
def test_truncated_files_are_refused(samples: Any, fmt: str) -> None:
    data = samples.image_pdf() if fmt == "image_pdf" else getattr(samples, fmt)(samples.scan())
    assert refused(data[: len(data) * 2 // 3]) is Refusal.TRUNCATED


def test_a_jpeg_missing_only_its_end_marker_is_truncated(samples: Any) -> None:
    data = samples.jpeg(samples.scan())
    assert refused(data[:-2]) is Refusal.TRUNCATED


def test_a_corrupt_png_is_refused(samples: Any) -> None:
    data = bytearray(samples.png(samples.scan()))
    data[60:80] = b"\x00" * 20  # inside the image data: checksums and inflate fail
    assert refused(bytes(data)) in (Refusal.UNDECODABLE, Refusal.TRUNCATED)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "pdf"])
def test_a_zip_appended_to_a_valid_file_is_a_polyglot(samples: Any, fmt: str) -> None:
    base = samples.pdf() if fmt == "pdf" else getattr(samples, fmt)(samples.scan())
    assert refused(base + samples.zip_archive()) is Refusal.POLYGLOT


def test_html_appended_after_the_end_of_a_pdf_is_a_polyglot(samples: Any) -> None:
    assert refused(samples.pdf() + b"\n<html><script>alert(1)</script>") is Refusal.POLYGLOT


def test_a_pdf_that_also_opens_as_html_is_a_polyglot(samples: Any) -> None:
    data = samples.pdf().replace(b"\n", b"\n%<html><script>alert(1)</script>\n", 1)
    assert refused(data) is Refusal.POLYGLOT


def test_a_jpeg_carrying_a_pdf_in_its_comment_is_a_polyglot(samples: Any) -> None:
    data = samples.jpeg(samples.scan(), comment=b"%PDF-1.7 1 0 obj << >> endobj")
    assert refused(data) is Refusal.POLYGLOT


def test_a_png_carrying_script_in_a_text_chunk_is_a_polyglot(samples: Any) -> None:
    assert refused(samples.png_with_text("<script>alert(1)</script>")) is Refusal.POLYGLOT
    assert inspect_file(
        samples.png_with_text("scanned at the library"), allowed=DOCUMENT_TYPES, limits=LIMITS
    )


def test_a_png_with_data_after_iend_is_a_polyglot(samples: Any) -> None:
    assert refused(samples.png(samples.scan()) + b"trailing") is Refusal.POLYGLOT


def test_a_pdf_with_javascript_is_refused(samples: Any) -> None:
    assert refused(samples.pdf(javascript="app.alert('hi');")) is Refusal.ACTIVE_CONTENT


def test_an_encrypted_pdf_is_refused(samples: Any) -> None:
    assert refused(samples.pdf(password="secret")) is Refusal.ENCRYPTED


def test_a_pdf_header_on_garbage_is_refused(samples: Any) -> None:
    assert refused(b"%PDF-1.7\n" + b"garbage " * 50 + b"\n%%EOF\n") is Refusal.UNDECODABLE


# --- display names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..\\..\\windows\\system32\\config",
        "/absolute/path.pdf",
        "C:passport.pdf",
        "..",
        "passport\x00.pdf.exe",
        "scan\u202egpj.exe",  # right-to-left override disguising an extension
        "a" * 256,
        "   ",
    ],
)
def test_names_with_path_tricks_are_refused(name: str) -> None:
    with pytest.raises(UploadRefused) as caught:
        display_name(name)
    assert caught.value.code is Refusal.BAD_FILENAME
    assert caught.value.status == 400


@pytest.mark.parametrize("name", ["passport scan.pdf", "護照 2026.jpg", "hkid-front.PNG"])
def test_ordinary_names_are_kept_for_display(name: str) -> None:
    assert display_name(name) == name


def test_no_name_is_fine() -> None:
    assert display_name(None) is None
    assert display_name("") is None


def test_refusals_map_to_clear_http_statuses() -> None:
    assert UploadRefused(Refusal.EMPTY, "x").status == 400
    assert UploadRefused(Refusal.TOO_LARGE, "x").status == 413
    assert UploadRefused(Refusal.UNSUPPORTED_TYPE, "x").status == 415
    assert UploadRefused(Refusal.POLYGLOT, "x").status == 422


# --- signatures that compressed data spells by chance ------------------------------

CHANCE = b"<svgPK\x03\x04"  # a 4-byte tag opening and a ZIP signature


def in_scan_data(data: bytes, payload: bytes) -> bytes:
    """``data`` with ``payload`` written over bytes of its JPEG scan, away from any
    0xFF: the file still decodes (to slightly different pixels)."""
    at = (data.find(b"\xff\xda") + len(data)) // 2
    while b"\xff" in data[at - 1 : at + len(payload) + 1]:
        at += 1
    return data[:at] + payload + data[at + len(payload) :]


def test_chance_signatures_in_compressed_pixels_are_no_polyglot(samples: Any) -> None:
    """One phone photo in a few hundred has ``<svg`` (any case) or a ZIP signature
    somewhere in its compressed data; it is a photo all the same."""
    photo = in_scan_data(samples.jpeg(samples.scan()), CHANCE)
    with Image.open(io.BytesIO(photo)) as decoded:
        decoded.load()  # still a valid JPEG
    assert inspect_file(photo, allowed=DOCUMENT_TYPES, limits=LIMITS).content_type is (
        ContentType.JPEG
    )
    image = samples.stored_png([CHANCE + bytes(24), bytes(32)])
    assert CHANCE in image
    assert inspect_file(image, allowed=DOCUMENT_TYPES, limits=LIMITS).content_type is (
        ContentType.PNG
    )


def test_chance_signatures_in_a_pdf_image_stream_are_no_polyglot(samples: Any) -> None:
    data = samples.image_pdf()
    scan = data.find(b"stream\n") + len(b"stream\n")
    stream_end = data.find(b"endstream")
    embedded = in_scan_data(data[scan:stream_end], CHANCE)
    scanned = data[:scan] + embedded + data[stream_end:]
    assert CHANCE in scanned
    assert inspect_file(scanned, allowed=DOCUMENT_TYPES, limits=LIMITS).pages == 1


def test_markup_where_a_program_reads_text_is_still_a_polyglot(samples: Any) -> None:
    assert refused(samples.jpeg(samples.scan(), comment=b"<svg onload=x()>")) is (Refusal.POLYGLOT)
    assert refused(samples.png_with_text("PK\x03\x04")) is Refusal.POLYGLOT
    # A complete opening tag is refused wherever it is, compressed data included.
    for tag in (b"<script>x()</script>", b"<svg/onload=x()>", b"<BODY onload=x()>"):
        hidden = in_scan_data(samples.jpeg(samples.scan()), tag)
        assert refused(hidden) is Refusal.POLYGLOT, tag
