"""The card photo specification on a real face photo and on photos that break it."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from documents.domain import photo
from documents.domain.photo import PhotoSpec, _upright_rgb, card_image, check_photo
from opr_shared.events.catalogue import PhotoApproved
from PIL import Image, ImageFilter

SPEC = PhotoSpec()


def codes(data: bytes) -> set[str]:
    return {p.code for p in check_photo(data, SPEC).problems}


def test_the_real_face_photo_passes_every_check(samples: Any) -> None:
    verdict = check_photo(samples.face_photo(), SPEC)
    assert verdict.problems == ()
    assert verdict.passed
    assert (verdict.width, verdict.height, verdict.faces) == (480, 600, 1)


def test_the_same_photo_as_png_passes(samples: Any) -> None:
    assert codes(samples.png(samples.portrait())) == set()


def test_a_cat_has_no_human_face(samples: Any) -> None:
    assert codes(samples.cat_photo()) == {"no_face"}


def test_a_landscape_photo_without_a_face_gets_every_reason(samples: Any) -> None:
    # camera(): 512x512 greyscale photographer seen from the side.
    assert codes(samples.camera_photo()) >= {"not_portrait_4_5", "no_face"}


def test_a_square_portrait_is_not_4_5(samples: Any) -> None:
    square = samples.astronaut().crop((74, 0, 374, 300)).resize((500, 500))
    assert codes(samples.jpeg(square)) == {"not_portrait_4_5"}


def test_a_small_photo_lists_resolution_and_file_size(samples: Any) -> None:
    small = samples.portrait().resize((200, 250))
    assert codes(samples.jpeg(small, quality=60)) >= {"resolution_too_low", "file_too_small"}


def test_a_blurred_photo_is_refused(samples: Any) -> None:
    assert codes(samples.blurred_photo()) == {"blurred"}


def test_a_dark_photo_is_refused(samples: Any) -> None:
    assert "too_dark" in codes(samples.dark_photo())


def test_an_overexposed_photo_is_refused(samples: Any) -> None:
    washed = Image.eval(samples.portrait(), lambda v: min(255, 150 + v))
    assert "too_bright" in codes(samples.jpeg(washed))


def test_two_faces_are_refused(samples: Any) -> None:
    face = samples.astronaut().crop((150, 30, 300, 200)).resize((200, 227))
    canvas = Image.new("RGB", (480, 600), (200, 200, 200))
    canvas.paste(face, (20, 150))
    canvas.paste(face, (260, 150))
    assert codes(samples.jpeg(canvas)) == {"several_faces"}


def test_a_face_far_from_the_centre_is_refused(samples: Any) -> None:
    off = samples.astronaut().crop((152, 0, 512, 450)).resize((480, 600))
    assert codes(samples.jpeg(off)) == {"face_off_centre"}


def test_a_face_too_small_in_the_frame_is_refused(samples: Any) -> None:
    canvas = Image.new("RGB", (480, 600), (170, 170, 170))
    canvas.paste(samples.portrait().resize((200, 250)), (140, 80))
    assert "face_too_small" in codes(samples.jpeg(canvas))


class RecordingDetector:
    """The face detector, noting the width of each picture searched."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.widths: list[int] = []

    def detectMultiScale(self, image: Any, **options: Any) -> Any:
        self.widths.append(image.shape[1])
        return self.detector.detectMultiScale(image, **options)


def test_faces_are_sought_small_first_and_larger_only_when_none_is_found(
    samples: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = RecordingDetector(photo._face_detector())
    monkeypatch.setattr(photo, "_face_detector", lambda: detector)
    assert SPEC.face_search_width < SPEC.small_face_search_width
    assert codes(samples.face_photo()) == set()
    assert detector.widths == [SPEC.face_search_width]
    detector.widths.clear()
    assert codes(samples.cat_photo()) == {"no_face"}
    assert detector.widths == [SPEC.face_search_width, SPEC.small_face_search_width]


def test_a_face_too_small_to_be_found_at_the_first_width_is_still_called_too_small(
    samples: Any,
) -> None:
    canvas = Image.new("RGB", (480, 600), (170, 170, 170))
    canvas.paste(samples.portrait().resize((200, 250)), (140, 80))
    data = samples.jpeg(canvas)
    # Searched only at the first width, that face is not found at all.
    first_only = PhotoSpec(small_face_search_width=SPEC.face_search_width)
    assert {p.code for p in check_photo(data, first_only).problems} == {"no_face"}
    assert codes(data) == {"face_too_small"}


def test_a_sideways_exif_orientation_is_applied_before_checking(samples: Any) -> None:
    # Stored landscape, displayed portrait: the checks see what people see.
    rotated = samples.portrait().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to display
    assert codes(samples.jpeg(rotated, exif=exif.tobytes())) == set()
    assert "not_portrait_4_5" in codes(samples.jpeg(rotated))


def phone_photo(samples: Any, size: tuple[int, int], **options: Any) -> bytes:
    """The portrait at a phone camera's resolution, with a little sensor grain."""
    import numpy as np

    pixels = np.asarray(samples.portrait().resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    grain = np.random.default_rng(3).integers(-5, 6, pixels.shape)
    image = Image.fromarray((pixels + grain).clip(0, 255).astype(np.uint8))
    data: bytes = samples.jpeg(image, **options)
    return data


def test_a_phone_photo_is_checked_from_a_reduced_decode_at_its_full_size(samples: Any) -> None:
    data = phone_photo(samples, (2400, 3000))
    image, size = _upright_rgb(data, SPEC.analysis_width)
    # Decoded at a quarter (600x750): no smaller than the analysis needs.
    assert size == (2400, 3000)
    assert SPEC.analysis_width <= min(image.size) < 2400 // 2
    verdict = check_photo(data, SPEC)
    assert verdict.problems == ()
    assert (verdict.width, verdict.height, verdict.faces) == (2400, 3000, 1)
    with Image.open(io.BytesIO(card_image(data, SPEC))) as card:
        assert card.size == (SPEC.card_width, SPEC.card_height)


def test_a_phone_photo_stored_sideways_reports_its_upright_size(samples: Any) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # turn 90 degrees anticlockwise to display
    stored = Image.open(io.BytesIO(phone_photo(samples, (2400, 3000)))).rotate(-90, expand=True)
    data = samples.jpeg(stored, exif=exif.tobytes())
    image, size = _upright_rgb(data, SPEC.analysis_width)
    assert size == (2400, 3000)
    assert image.width < image.height
    verdict = check_photo(data, SPEC)
    assert verdict.problems == ()
    assert (verdict.width, verdict.height) == (2400, 3000)


def test_a_reduced_decode_judges_blur_as_the_full_one_did(samples: Any) -> None:
    sharp = samples.portrait().resize((1920, 2400), Image.Resampling.LANCZOS)
    assert "blurred" in codes(samples.jpeg(sharp.filter(ImageFilter.GaussianBlur(12))))
    assert "blurred" not in codes(samples.jpeg(sharp.filter(ImageFilter.GaussianBlur(4))))


def test_the_card_image_is_a_small_normalised_jpeg_the_event_accepts(samples: Any) -> None:
    big = samples.png(samples.portrait().resize((960, 1200)))
    image = card_image(big, SPEC)
    assert image.startswith(b"\xff\xd8")
    assert len(image) <= SPEC.card_max_bytes
    with Image.open(io.BytesIO(image)) as decoded:
        assert decoded.size == (300, 375)
        assert decoded.format == "JPEG"
        assert "exif" not in decoded.info
    event = PhotoApproved(
        photo_id=uuid.uuid4(),
        student_no="20261234",
        approved_by="card.office",
        approved_at=datetime.now(UTC),
        card_image_jpeg_base64=base64.b64encode(image).decode(),
        card_image_sha256=hashlib.sha256(image).hexdigest(),
    )
    assert event.card_image() == image


def test_the_published_specification_carries_the_numbers() -> None:
    published = SPEC.published()
    assert published["min_resolution"] == {"width": 360, "height": 450}
    assert published["aspect_ratio"]["width_to_height"] == pytest.approx(0.8)
    assert published["face"]["count"] == 1
