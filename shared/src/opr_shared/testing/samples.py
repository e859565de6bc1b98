"""Real files for journeys through the system: a blank PDF document and a card photo
that passes every automatic check (scikit-image's public-domain astronaut portrait,
cropped 4:5 around the face), small or at a phone camera's size."""

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


def face_photo(size: tuple[int, int] = (480, 600)) -> bytes:
    """A JPEG portrait with one face, well lit and sharp: 480x600 by default.

    Larger sizes carry a little sensor grain, so that the file is about as large
    as a phone writes (a 7-megapixel 4:5 crop: ~1.5 MB) rather than a smooth
    enlargement that compresses to a fraction of that.
    """
    import numpy as np
    from PIL import Image
    from skimage import data

    portrait = (
        Image.fromarray(data.astronaut())  # type: ignore[no-untyped-call]
        .crop((44, 0, 404, 450))
        .resize(size, Image.Resampling.LANCZOS)
        .convert("RGB")
    )
    if size[0] * size[1] > 480 * 600:
        pixels = np.asarray(portrait, dtype=np.int16)
        grain = np.random.default_rng(5).integers(-5, 6, pixels.shape)
        portrait = Image.fromarray((pixels + grain).clip(0, 255).astype(np.uint8))
    out = io.BytesIO()
    portrait.save(out, "JPEG", quality=90)
    return out.getvalue()
