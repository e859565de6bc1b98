"""The stored card-holder document, and the printable card image."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from card.domain.card import CardHolder, Particulars, Photo, RegistrationState
from card.printing import HEIGHT, WIDTH, render_card_png
from card.store.holders import from_document, to_document
from PIL import Image

T0 = datetime(2026, 8, 1, 2, 0, tzinfo=UTC)


def holder() -> CardHolder:
    h = CardHolder(
        student_no="20261234",
        particulars=Particulars("CHAN", "Tai Man", "陳大文", "BBA", "Business", 2026),
        registration=RegistrationState.COMPLETED,
        photo=Photo("p1", "a" * 64, T0, "photos/20261234/aaa.jpg"),
    )
    h.issue("2026000012", T0)
    h.book("2026-08-20-1000")
    h.collect("2026000012", "card.ho", T0)
    return h


def test_a_holder_survives_the_round_trip_through_its_document() -> None:
    original = holder()
    doc = to_document(original, T0)
    assert doc["status"] == "collected"
    assert doc["card_no"] == "2026000012"
    assert doc["awaiting_slot"] is False
    assert doc["cards"][0]["expires_on"] == "2030-08-31"
    assert from_document(doc) == original


def test_the_card_image_is_an_id1_png_at_300_dpi_with_the_photo() -> None:
    card = holder().cards[0]
    jpeg = io.BytesIO()
    Image.new("RGB", (300, 400), (200, 30, 30)).save(jpeg, format="JPEG")
    png = render_card_png(card, "20261234", jpeg.getvalue())
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT)
    assert round(image.info["dpi"][0]) == 300
    pixel = image.convert("RGB").getpixel((198, 350))  # centre of the photo box
    assert isinstance(pixel, tuple)
    assert pixel[0] > 150 > pixel[1]
