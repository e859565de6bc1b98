"""What an uploaded file is, judged by its content alone, and the rules that refuse it.

A file is recognised by its leading magic bytes (never by its name or the type the
client declared) and then decoded for real. The rules, in the order they apply:

1. Empty: a zero-byte file is refused.
2. Size: above the cap it is refused (the API also stops reading at the cap).
3. Type: only PDF (``%PDF-``), JPEG (``FF D8 FF``) and PNG (its 8-byte signature)
   at offset 0; anything else, or a type the endpoint does not take, is refused.
4. Decompression bombs: an image whose header declares more pixels than the
   limit is refused before any pixel is decoded; a PDF with more pages than the
   limit is refused.
5. Truncation: an image must decode completely, a JPEG must end with its
   end-of-image marker, a PNG with its ``IEND`` chunk, a PDF with ``%%EOF``
   (trailing whitespace allowed).
6. Polyglots (a file that is also another format):
   - nothing may follow the end of the format (bytes after JPEG ``EOI``, PNG
     ``IEND`` or the final PDF ``%%EOF``): that is where archives and scripts are
     appended;
   - no ZIP end-of-central-directory record in the last 64 KiB (where ZIP
     readers look for it);
   - no HTML or script markup (``<html``, ``<script``, ``<body``, ``<iframe``,
     ``<svg``, ``<!doctype``, ``<?php``, case-insensitive) and no ZIP local-file
     header in the readable parts of the file (:mod:`documents.domain.layout`:
     everything but compressed pixels and PDF stream contents), and no complete
     opening tag (``<html>``, ``<script ``, ``<svg onload=``, ``<?php`` and a
     space...) anywhere;
   - an image must not contain a PDF header (``%PDF-``), a PDF no PNG signature
     (PDF images are raw streams; JPEG streams inside a PDF are normal and allowed).
7. PDFs: encrypted ones (staff could not open them) and ones with active content
   (JavaScript, launch actions, embedded files, rich media, XFA forms) are refused.

Compressed data is searched only for signatures long enough not to turn up by
chance: a 4-byte one (``PK\x03\x04``, or ``<svg`` in any case) appears in random
bytes once in every 0.5-4 GB, i.e. in about one phone photo in a few hundred,
which would then be refused for no reason. The longest signatures searched
everywhere (a tag with its closing character, ``%PDF-``, the PNG signature) turn
up by chance less than once in 10^12 bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import PdfObject

from documents.domain.layout import jpeg_readable, pdf_readable, png_readable


class ContentType(StrEnum):
    PDF = "application/pdf"
    JPEG = "image/jpeg"
    PNG = "image/png"


DOCUMENT_TYPES = frozenset({ContentType.PDF, ContentType.JPEG, ContentType.PNG})
PHOTO_TYPES = frozenset({ContentType.JPEG, ContentType.PNG})

PDF_MAGIC = b"%PDF-"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_EOI = b"\xff\xd9"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
PDF_EOF = b"%%EOF"

ZIP_LOCAL_HEADER = b"PK\x03\x04"
ZIP_END_OF_DIRECTORY = b"PK\x05\x06"
ZIP_TAIL = 65_557  # 22-byte record + the longest comment a ZIP may carry
MARKUP = re.compile(rb"<(?:html|script|body|iframe|svg|!doctype|\?php)", re.IGNORECASE)
# A tag as a browser would open it, with the character that ends its name (and
# for <svg, the attribute that makes it do something).
MARKUP_TAG = re.compile(
    rb"<(?:html|script|body|iframe|!doctype)[\s/>]|<svg[\s/]+[a-z:-]+\s*=|<\?php\s",
    re.IGNORECASE,
)
PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA)(?![A-Za-z0-9])")
PDF_TRAILING_WHITESPACE = b" \t\r\n\f\x00"


class Refusal(StrEnum):
    """Why a file is refused; each maps to one HTTP status."""

    EMPTY = "empty_file"
    TOO_LARGE = "too_large"
    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_MANY_PAGES = "too_many_pages"
    TRUNCATED = "truncated"
    UNDECODABLE = "undecodable"
    POLYGLOT = "polyglot"
    ENCRYPTED = "encrypted_pdf"
    ACTIVE_CONTENT = "active_content"
    BAD_FILENAME = "bad_filename"


HTTP_STATUS: dict[Refusal, int] = {
    Refusal.EMPTY: 400,
    Refusal.BAD_FILENAME: 400,
    Refusal.TOO_LARGE: 413,
    Refusal.UNSUPPORTED_TYPE: 415,
}
"""Anything not listed is 422: the request was well-formed, the file is not acceptable."""


class UploadRefused(Exception):
    """A file (or its name) that must not be stored, with the reason shown to the user."""

    def __init__(self, code: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 422)


@dataclass(frozen=True)
class ContentLimits:
    max_bytes: int
    max_pixels: int = 40_000_000
    max_pdf_pages: int = 100


@dataclass(frozen=True)
class InspectedFile:
    """A file that passed every rule: what it is, its size and digest."""

    content_type: ContentType
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None


def sniff(data: bytes) -> ContentType | None:
    """The type the leading bytes announce, or None."""
    if data.startswith(PDF_MAGIC):
        return ContentType.PDF
    if data.startswith(JPEG_MAGIC):
        return ContentType.JPEG
    if data.startswith(PNG_MAGIC):
        return ContentType.PNG
    return None


def _names(types: frozenset[ContentType]) -> str:
    labels = {ContentType.PDF: "PDF", ContentType.JPEG: "JPEG", ContentType.PNG: "PNG"}
    return ", ".join(labels[t] for t in sorted(types, key=list(ContentType).index))


def inspect_file(
    data: bytes, *, allowed: frozenset[ContentType], limits: ContentLimits
) -> InspectedFile:
    """Apply every rule of this module to ``data``; raise :class:`UploadRefused` on the first."""
    return inspect_decoded(data, allowed=allowed, limits=limits)[0]


def inspect_decoded(
    data: bytes, *, allowed: frozenset[ContentType], limits: ContentLimits, keep_side: int = 1
) -> tuple[InspectedFile, Image.Image | None]:
    """:func:`inspect_file`, also handing back the image as the truncation rule
    decoded it (None for a PDF), for a caller that looks at the pixels next.

    A JPEG is decoded at 1/2, 1/4 or 1/8 of its size, as small as keeps
    ``keep_side`` pixels on its shorter side (every byte of its scans is decoded
    whatever the scale); a PNG at full size. Decoding once for both saves the
    photo checks a second decode of the file.
    """
    if not data:
        raise UploadRefused(Refusal.EMPTY, "The file is empty.")
    if len(data) > limits.max_bytes:
        raise UploadRefused(
            Refusal.TOO_LARGE, f"The file is larger than the limit of {limits.max_bytes} bytes."
        )
    kind = sniff(data)
    if kind is None or kind not in allowed:
        raise UploadRefused(
            Refusal.UNSUPPORTED_TYPE,
            f"Only {_names(allowed)} files are accepted (recognised by their content).",
        )
    _check_foreign_formats(data, kind)
    pixels: Image.Image | None = None
    if kind is ContentType.PDF:
        pages = _check_pdf(data, limits)
        width = height = None
    else:
        width, height, pixels = _check_image(data, kind, limits, keep_side)
        pages = None
    inspected = InspectedFile(
        content_type=kind,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        pages=pages,
    )
    return inspected, pixels


def _check_image(
    data: bytes, kind: ContentType, limits: ContentLimits, keep_side: int
) -> tuple[int, int, Image.Image]:
    expected = "JPEG" if kind is ContentType.JPEG else "PNG"
    try:
        # Opening reads the header only; pixels are decoded by load().
        with Image.open(io.BytesIO(data), formats=[expected]) as image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise UploadRefused(
                    Refusal.TOO_MANY_PIXELS,
                    f"The image declares {width}x{height} pixels, more than the limit of "
                    f"{limits.max_pixels}.",
                )
            scale = keep_side / max(1, min(width, height))
            if kind is ContentType.JPEG and scale < 1:
                # Every byte of the scans is still decoded (truncation and corrupt
                # data are found), only the pixels come out smaller: at an eighth
                # of the size a 12-megapixel photo needs 0.6 MB instead of 36.
                image.draft(None, (int(width * scale) + 1, int(height * scale) + 1))
            image.load()
        if kind is ContentType.PNG:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as checked:
                checked.verify()  # chunk checksums
    except Image.DecompressionBombError as exc:
        raise UploadRefused(
            Refusal.TOO_MANY_PIXELS, "The image declares more pixels than the limit."
        ) from exc
    except UploadRefused:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        if "truncated" in str(exc).lower():
            raise UploadRefused(
                Refusal.TRUNCATED, f"The {expected} file is truncated: it does not decode fully."
            ) from exc
        raise UploadRefused(Refusal.UNDECODABLE, f"The {expected} file does not decode.") from exc
    except Exception as exc:  # a decoder's internal error on hostile input
        raise UploadRefused(Refusal.UNDECODABLE, f"The {expected} file does not decode.") from exc
    end = JPEG_EOI if kind is ContentType.JPEG else PNG_IEND
    last = data.rfind(end)
    if last < 0:
        raise UploadRefused(
            Refusal.TRUNCATED, f"The {expected} file is truncated: its end marker is missing."
        )
    if last + len(end) != len(data):
        raise UploadRefused(
            Refusal.POLYGLOT,
            f"Data follows the end of the {expected} image (another file appended to it).",
        )
    return width, height, image


def _check_pdf(data: bytes, limits: ContentLimits) -> int:
    body = data.rstrip(PDF_TRAILING_WHITESPACE)
    if not body.endswith(PDF_EOF):
        if PDF_EOF in data:
            raise UploadRefused(
                Refusal.POLYGLOT, "Data follows the end of the PDF (another file appended to it)."
            )
        raise UploadRefused(Refusal.TRUNCATED, "The PDF is truncated: its end marker is missing.")
    if PDF_ACTIVE.search(data):
        raise UploadRefused(
            Refusal.ACTIVE_CONTENT,
            "The PDF carries active content (JavaScript, actions or embedded files).",
        )
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UploadRefused(
                Refusal.ENCRYPTED, "The PDF is encrypted or password-protected; upload it without."
            )
        count = len(reader.pages)
        if count > limits.max_pdf_pages:
            raise UploadRefused(
                Refusal.TOO_MANY_PAGES,
                f"The PDF has {count} pages, more than the limit of {limits.max_pdf_pages}.",
            )
        for page in reader.pages:
            box = page.mediabox
            if box.width <= 0 or box.height <= 0:
                raise UploadRefused(Refusal.UNDECODABLE, "The PDF has a page of no size.")
        catalog = _as_dict(reader.trailer["/Root"])
        names = _as_dict(catalog.get("/Names"))
        acroform = _as_dict(catalog.get("/AcroForm"))
        if (
            ("/OpenAction" in catalog and _is_script_action(catalog["/OpenAction"]))
            or "/JavaScript" in names
            or "/EmbeddedFiles" in names
            or "/XFA" in acroform
        ):
            raise UploadRefused(
                Refusal.ACTIVE_CONTENT,
                "The PDF carries active content (JavaScript, actions or embedded files).",
            )
    except UploadRefused:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UploadRefused(Refusal.UNDECODABLE, "The PDF does not parse.") from exc
    except Exception as exc:  # a parser's internal error on hostile input
        raise UploadRefused(Refusal.UNDECODABLE, "The PDF does not parse.") from exc
    if count < 1:
        raise UploadRefused(Refusal.UNDECODABLE, "The PDF has no pages.")
    return count


def _as_dict(value: object) -> dict[Any, Any]:
    resolved = value.get_object() if isinstance(value, PdfObject) else value
    return resolved if isinstance(resolved, dict) else {}


def _is_script_action(action: object) -> bool:
    resolved = getattr(action, "get_object", lambda: action)()
    if isinstance(resolved, dict):
        return str(resolved.get("/S")) in ("/JavaScript", "/Launch")
    return False


_READABLE = {
    ContentType.JPEG: jpeg_readable,
    ContentType.PNG: png_readable,
    ContentType.PDF: pdf_readable,
}


def _check_foreign_formats(data: bytes, kind: ContentType) -> None:
    readable = [data[start:end] for start, end in _READABLE[kind](data)]
    found: str | None = None
    if ZIP_END_OF_DIRECTORY in data[-ZIP_TAIL:] or any(ZIP_LOCAL_HEADER in r for r in readable):
        found = "a ZIP archive"
    elif MARKUP_TAG.search(data) or any(MARKUP.search(r) for r in readable):
        found = "HTML or script markup"
    elif kind is not ContentType.PDF and PDF_MAGIC in data:
        found = "a PDF"
    elif kind is not ContentType.PNG and PNG_MAGIC in data:
        found = "a PNG image"
    if found is not None:
        raise UploadRefused(
            Refusal.POLYGLOT, f"The file also contains {found}: only plain files are accepted."
        )


MAX_FILENAME_LENGTH = 255


def display_name(filename: str | None) -> str | None:
    """The client's file name, kept only for display; names with path tricks are refused.

    It is never used to build a storage key. Refused: a directory separator
    (``/`` or ``\\``), a drive or stream colon, ``.``/``..``, NUL and other control
    or invisible formatting characters (e.g. right-to-left overrides that disguise
    an extension), and names over 255 characters.
    """
    if filename is None or filename == "":
        return None
    name = unicodedata.normalize("NFC", filename)
    problem: str | None = None
    if len(name) > MAX_FILENAME_LENGTH:
        problem = f"longer than {MAX_FILENAME_LENGTH} characters"
    elif any(sep in name for sep in ("/", "\\", ":")):
        problem = "it contains a path or drive separator"
    elif name.strip() in (".", ".."):
        problem = "it names a directory"
    elif any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        problem = "it contains control or invisible characters"
    elif not name.strip():
        problem = "it is blank"
    if problem is not None:
        raise UploadRefused(Refusal.BAD_FILENAME, f"The file name is not acceptable: {problem}.")
    return name.strip()
