"""An uploaded photo is decoded once for both the content rules and the photo checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from documents.domain.content import (
    PHOTO_TYPES,
    ContentLimits,
    Refusal,
    UploadRefused,
    inspect_decoded,
    inspect_file,
)
from documents.domain.photo import (
    PhotoSpec,
    card_image,
    card_image_fits,
    check_photo,
    inspect_photo,
)
from PIL import Image

SPEC = PhotoSpec()
LIMITS = ContentLimits(max_bytes=SPEC.max_bytes)


def sideways(samples: Any) -> bytes:
    """The portrait stored turned a quarter, with the EXIF orientation that rights it."""
    exif = Image.Exif()
    exif[0x0112] = 8
    stored = samples.portrait().resize((1600, 2000)).rotate(-90, expand=True)
    data: bytes = samples.jpeg(stored, exif=exif.tobytes())
    return data


def photos(samples: Any) -> dict[str, bytes]:
    return {
        "jpeg": samples.face_photo(),
        "large jpeg": samples.jpeg(samples.portrait().resize((1920, 2400))),
        "png": samples.png(samples.portrait()),
        "sideways jpeg": sideways(samples),
        "cat": samples.cat_photo(),
    }


def test_one_decode_gives_what_the_separate_steps_give(samples: Any) -> None:
    for name, data in photos(samples).items():
        inspected, verdict, card = inspect_photo(data, LIMITS, SPEC)
        assert inspected == inspect_file(data, allowed=PHOTO_TYPES, limits=LIMITS), name
        assert verdict == check_photo(data, SPEC), name
        # The card image of a photo that passes, byte for byte what the approval made.
        assert card == (card_image(data, SPEC) if verdict.passed else None), name
    assert (
        sum(inspect_photo(data, LIMITS, SPEC)[2] is None for data in photos(samples).values()) == 1
    )


def test_a_photo_too_narrow_for_the_card_is_decoded_again_for_it(
    samples: Any, opened: list[str]
) -> None:
    """The card image is cut from the checks' decode when that has twice the card's
    width (a phone photo: see the next test, opened once); a smaller decode is
    not enough, and the file is decoded again at full size for the card."""
    small = samples.face_photo()  # 480x600, narrower than twice the card's 300
    opened.clear()
    inspect_photo(small, LIMITS, SPEC)
    assert opened == ["JPEG", "JPEG"]


def test_a_card_image_fits_the_specification_it_was_made_for(samples: Any) -> None:
    data = samples.face_photo()
    card = card_image(data, SPEC)
    assert card_image_fits(card, SPEC)
    assert not card_image_fits(card, PhotoSpec(card_width=200, card_height=250))
    assert not card_image_fits(card, PhotoSpec(card_max_bytes=len(card) - 1))
    assert not card_image_fits(samples.png(samples.portrait().resize((300, 375))), SPEC)
    assert not card_image_fits(b"not an image", SPEC)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """The format of every image PIL opens meanwhile."""
    formats: list[str] = []
    original = Image.open

    def counting(*args: Any, **kwargs: Any) -> Image.Image:
        image = original(*args, **kwargs)
        formats.append(str(image.format))
        return image

    Image.open = counting  # type: ignore[assignment]
    try:
        yield formats
    finally:
        Image.open = original


def test_a_jpeg_is_opened_once(samples: Any, opened: list[str]) -> None:
    data = samples.jpeg(samples.portrait().resize((1920, 2400)))
    opened.clear()  # making the sample opened its source
    inspect_photo(data, LIMITS, SPEC)
    assert opened == ["JPEG"]
    # As two steps it was opened and decoded twice.
    inspect_file(data, allowed=PHOTO_TYPES, limits=LIMITS)
    check_photo(data, SPEC)
    assert opened == ["JPEG"] * 3


def test_a_png_is_decoded_once_and_its_checksums_still_verified(
    samples: Any, opened: list[str]
) -> None:
    data = samples.png(samples.portrait().resize((640, 800)))
    opened.clear()
    inspect_photo(data, LIMITS, SPEC)
    assert opened == ["PNG", "PNG"]  # decoded (the card image cut from it), then verified


def test_the_decode_keeps_enough_pixels_for_the_checks_and_no_more(samples: Any) -> None:
    data = samples.jpeg(samples.portrait().resize((1920, 2400)))
    _, pixels = inspect_decoded(
        data, allowed=PHOTO_TYPES, limits=LIMITS, keep_side=SPEC.analysis_width
    )
    assert pixels is not None
    assert pixels.size == (960, 1200)  # a half: a quarter would leave 480 < 481
    _, smallest = inspect_decoded(data, allowed=PHOTO_TYPES, limits=LIMITS)
    assert smallest is not None
    assert smallest.size == (240, 300)  # an eighth, for the content rules alone


def test_a_broken_photo_is_refused_before_any_check(samples: Any) -> None:
    data = samples.jpeg(samples.portrait().resize((1920, 2400)))
    with pytest.raises(UploadRefused) as refused:
        inspect_photo(data[: len(data) // 2], LIMITS, SPEC)
    assert refused.value.code is Refusal.TRUNCATED
    with pytest.raises(UploadRefused) as refused:
        inspect_photo(data + b"PK\x05\x06" + bytes(18), LIMITS, SPEC)
    assert refused.value.code is Refusal.POLYGLOT
