"""Real files for the documents tests, generated here: PDFs, JPEGs, PNGs, a real
face photo (scikit-image's bundled public-domain astronaut portrait) and attacks."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageFilter
from PIL.PngImagePlugin import PngInfo
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject


def jpeg(image: Image.Image, quality: int = 90, **options: Any) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality, **options)
    return out.getvalue()


def png(image: Image.Image, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def scan(width: int = 620, height: int = 877) -> Image.Image:
    """A page-like picture: a light background with dark 'text' bars and noise."""
    import numpy as np

    rng = np.random.default_rng(7)
    pixels = np.full((height, width, 3), 235, dtype=np.uint8)
    for row in range(60, height - 60, 24):
        length = int(rng.integers(width // 3, width - 80))
        pixels[row : row + 8, 40 : 40 + length] = 30
    pixels = np.clip(pixels.astype(int) + rng.integers(-12, 12, pixels.shape), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def pdf(pages: int = 1, *, javascript: str | None = None, password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if javascript is not None:
        action = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject(javascript),
            }
        )
        writer.root_object[NameObject("/OpenAction")] = writer._add_object(action)
    if password is not None:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_pdf() -> bytes:
    """A scanned document as a PDF, as a phone scanner app would produce it."""
    out = io.BytesIO()
    scan().save(out, "PDF", resolution=72)
    return out.getvalue()


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<html><script>alert(1)</script></html>")
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels in a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def stored_png(rows: list[bytes]) -> bytes:
    """A greyscale PNG whose pixel bytes appear verbatim in the file (filter 0,
    deflate level 0): a test can place any byte string in its image data."""
    ihdr = struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"tEXt", b"Comment\x00scanned at the library")
        + png_chunk(b"IDAT", zlib.compress(raw, 0))
        + png_chunk(b"IEND", b"")
    )


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())  # type: ignore[no-untyped-call]


def portrait() -> Image.Image:
    """The astronaut cropped to 4:5 around the face, 480x600: passes every check."""
    return astronaut().crop((44, 0, 404, 450)).resize((480, 600), Image.Resampling.LANCZOS)


class Samples:
    jpeg = staticmethod(jpeg)
    png = staticmethod(png)
    pdf = staticmethod(pdf)
    scan = staticmethod(scan)
    image_pdf = staticmethod(image_pdf)
    zip_archive = staticmethod(zip_archive)
    png_header_only = staticmethod(png_header_only)
    stored_png = staticmethod(stored_png)
    astronaut = staticmethod(astronaut)
    portrait = staticmethod(portrait)

    @staticmethod
    def face_photo() -> bytes:
        return jpeg(portrait())

    @staticmethod
    def blurred_photo() -> bytes:
        return jpeg(portrait().filter(ImageFilter.GaussianBlur(3)))

    @staticmethod
    def dark_photo() -> bytes:
        return jpeg(ImageEnhance.Brightness(portrait()).enhance(0.3))

    @staticmethod
    def cat_photo() -> bytes:
        from skimage import data

        # 451x300: landscape, no human face.
        cat = Image.fromarray(data.chelsea())  # type: ignore[no-untyped-call]
        return jpeg(cat.crop((120, 0, 360, 300)).resize((480, 600)))

    @staticmethod
    def camera_photo() -> bytes:
        from skimage import data

        return png(Image.fromarray(data.camera()))  # type: ignore[no-untyped-call]

    @staticmethod
    def png_with_text(text: str) -> bytes:
        info = PngInfo()
        info.add_text("Comment", text)
        return png(scan(), pnginfo=info)


@pytest.fixture(scope="session")
def samples() -> type[Samples]:
    return Samples
