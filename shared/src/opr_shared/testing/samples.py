"""Real files for journeys through the system: a blank PDF document and a card photo
that passes every automatic check (scikit-image's public-domain astronaut portrait,
cropped 4:5 around the face)."""

from __future__ import annotations

import io


def blank_pdf(pages: int = 1) -> bytes:
    """A valid A4 PDF of ``pages`` empty pages."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def face_photo() -> bytes:
    """A 480x600 JPEG portrait with one face, well lit and sharp."""
    from PIL import Image
    from skimage import data

    portrait = (
        Image.fromarray(data.astronaut())  # type: ignore[no-untyped-call]
        .crop((44, 0, 404, 450))
        .resize((480, 600), Image.Resampling.LANCZOS)
    )
    out = io.BytesIO()
    portrait.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()
