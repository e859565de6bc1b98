"""The published student-card photo specification, its automatic checks, and the
normalised card image the card office's approval hands to the card service.

The checks run on a file that already passed :mod:`documents.domain.content`
(a JPEG or PNG that decodes completely). Every check runs, so a failing photo is
answered with every reason at once.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps

from documents.domain.content import (
    PHOTO_TYPES,
    ContentLimits,
    InspectedFile,
    inspect_decoded,
)


@dataclass(frozen=True)
class PhotoSpec:
    """What a student-card photo must be (the numbers are published to students)."""

    min_width: int = 360
    min_height: int = 450
    aspect_ratio: float = 0.8  # width / height: portrait 4:5
    aspect_tolerance: float = 0.03
    min_bytes: int = 10_000
    max_bytes: int = 5_000_000
    # The face, as a fraction of the photo's width (size) and position of its centre.
    face_min_width: float = 0.20
    face_max_width: float = 0.70
    face_centre_x: tuple[float, float] = (0.30, 0.70)
    face_centre_y: tuple[float, float] = (0.15, 0.65)
    # Mean luminance 0-255; sharpness is the variance of the Laplacian, measured
    # on the photo scaled to ``analysis_width`` so it does not depend on resolution.
    min_brightness: float = 60.0
    max_brightness: float = 220.0
    min_sharpness: float = 40.0
    analysis_width: int = 480
    # Faces are looked for at the first width, and at the second when none is
    # found there (see _faces).
    face_search_width: int = 160
    small_face_search_width: int = 240
    # The normalised card image carried by PhotoApproved.
    card_width: int = 300
    card_height: int = 375
    card_max_bytes: int = 60_000

    def published(self) -> dict[str, Any]:
        """The specification as shown to students."""
        return {
            "formats": ["JPEG", "PNG"],
            "file_size_bytes": {"min": self.min_bytes, "max": self.max_bytes},
            "min_resolution": {"width": self.min_width, "height": self.min_height},
            "aspect_ratio": {
                "width_to_height": self.aspect_ratio,
                "tolerance": self.aspect_tolerance,
            },
            "face": {
                "count": 1,
                "width_fraction": {"min": self.face_min_width, "max": self.face_max_width},
                "centre_x_fraction": list(self.face_centre_x),
                "centre_y_fraction": list(self.face_centre_y),
            },
            "brightness": {"min": self.min_brightness, "max": self.max_brightness},
            "min_sharpness": self.min_sharpness,
        }


@dataclass(frozen=True)
class PhotoProblem:
    code: str
    message: str


@dataclass(frozen=True)
class PhotoVerdict:
    width: int
    height: int
    problems: tuple[PhotoProblem, ...]
    faces: int
    brightness: float
    sharpness: float

    @property
    def passed(self) -> bool:
        return not self.problems


_per_thread = threading.local()

# OpenCV splits a face search across a pool of its own threads, one per core. The
# service already checks two photos at once on its own threads, so that pool only
# adds work: one search on the bench's photo took 37 ms of CPU split in two, 31.5 ms
# on one thread, and more once both cores are busy.
cv2.setNumThreads(1)

# EXIF orientations that turn the stored picture by a quarter (width and height swap).
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


def _face_detector() -> cv2.CascadeClassifier:
    """This thread's face detector. OpenCV's algorithms keep working state in the
    object and must not be shared between threads (uploads are checked on several
    at once): a shared detector sometimes found no face in a good photo."""
    detector: cv2.CascadeClassifier | None = getattr(_per_thread, "face_detector", None)
    if detector is None:
        # Bundled with opencv-python-headless 4.x: no download.
        path = str(cv2.data.haarcascades) + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        detector = cv2.CascadeClassifier(path)
        if detector.empty():
            raise RuntimeError(f"face detector not found at {path}")
        _per_thread.face_detector = detector
    return detector


def _upright_rgb(data: bytes, min_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """The photo upright in RGB, decoded no larger than it takes for its shorter side
    to keep ``min_side`` pixels, and the photo's full upright size.

    A JPEG is decoded at 1/2, 1/4 or 1/8 of its size where that is enough (the
    decoder's DCT scaling): a 12-megapixel phone photo then takes a few MB and tens
    of milliseconds instead of 36 MB per copy and a third of a second.
    """
    with Image.open(io.BytesIO(data)) as opened:
        stored = opened.size
        scale = min_side / min(stored)
        if scale < 1:
            opened.draft("RGB", (int(stored[0] * scale) + 1, int(stored[1] * scale) + 1))
        return _upright(opened, stored)


def _upright(image: Image.Image, stored: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """``image`` (decoded at any scale from a file of ``stored`` pixels) turned
    upright by its EXIF orientation, in RGB, and the file's upright size."""
    width, height = stored
    if image.getexif().get(ExifTags.Base.Orientation, 1) in _QUARTER_TURNS:
        width, height = height, width
    return ImageOps.exif_transpose(image).convert("RGB"), (width, height)


def inspect_photo(
    data: bytes, limits: ContentLimits, spec: PhotoSpec
) -> tuple[InspectedFile, PhotoVerdict, bytes | None]:
    """The content rules (:class:`UploadRefused` on the first broken), every photo
    check, and for a photo that passes them its card image (:func:`card_image`),
    on one decode of the file. Decoded for each, a phone photo of 2419x3024 took
    62 ms of CPU instead of 53 for the checks, and its card image another 17 ms
    when the card office approved it; cut from the checks' decode, 7 ms."""
    inspected, pixels = inspect_decoded(
        data, allowed=PHOTO_TYPES, limits=limits, keep_side=spec.analysis_width
    )
    # PHOTO_TYPES are images: each has its pixels and size.
    assert pixels is not None
    assert inspected.width is not None
    assert inspected.height is not None
    image, size = _upright(pixels, (inspected.width, inspected.height))
    # Only the upright copy is looked at from here: the decoded pixels go now,
    # not when the checks are done (two photos are checked at once).
    pixels.close()
    del pixels
    verdict = _check(data, spec, image, size)
    if not verdict.passed:
        return inspected, verdict, None
    try:
        if min(image.size) >= 2 * spec.card_width:
            # Decoded large enough for the card: the scale card_image decodes at.
            return inspected, verdict, _card_jpeg(image, spec)
        return inspected, verdict, card_image(data, spec)
    except ValueError:
        return inspected, verdict, None  # left to the approval, which says why


def check_photo(data: bytes, spec: PhotoSpec) -> PhotoVerdict:
    """Every check of the specification on a file already known to be a whole
    JPEG or PNG, decoding it itself. An upload goes through :func:`inspect_photo`
    instead (the content rules and these checks on one decode); this is the
    checks alone, as the tests of the specification use them."""
    return _check(data, spec, *_upright_rgb(data, spec.analysis_width))


def _check(
    data: bytes, spec: PhotoSpec, image: Image.Image, full_size: tuple[int, int]
) -> PhotoVerdict:
    """The checks on ``image``, decoded from ``data`` and upright; ``full_size``
    is the photo's upright size in the file."""
    width, height = full_size
    problems: list[PhotoProblem] = []

    def fail(code: str, message: str) -> None:
        problems.append(PhotoProblem(code, message))

    if len(data) < spec.min_bytes:
        fail(
            "file_too_small",
            f"The file is {len(data)} bytes; at least {spec.min_bytes} bytes are needed "
            "(a heavily compressed photo loses detail).",
        )
    if len(data) > spec.max_bytes:
        fail("file_too_large", f"The file is larger than {spec.max_bytes} bytes.")
    if width < spec.min_width or height < spec.min_height:
        fail(
            "resolution_too_low",
            f"The photo is {width}x{height} pixels; at least {spec.min_width}x{spec.min_height} "
            "are needed.",
        )
    ratio = width / height
    if abs(ratio - spec.aspect_ratio) > spec.aspect_tolerance:
        fail(
            "not_portrait_4_5",
            f"The photo must be portrait with proportions 4:5 (width/height "
            f"{spec.aspect_ratio:.2f} ± {spec.aspect_tolerance:.2f}); it is {ratio:.2f}.",
        )

    # Every measure below is of luminance: the picture is made grey before it is
    # scaled, which scales one channel instead of three (2.8 ms instead of 6.2 for
    # the bench's phone photo).
    scale = spec.analysis_width / width
    analysed = image.convert("L").resize(
        (spec.analysis_width, max(1, round(height * scale))), Image.Resampling.LANCZOS
    )
    grey = np.asarray(analysed)
    brightness = float(grey.mean())
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    if brightness < spec.min_brightness:
        fail("too_dark", "The photo is too dark: take it in even, bright light.")
    elif brightness > spec.max_brightness:
        fail("too_bright", "The photo is overexposed: the face must be clearly visible.")
    if sharpness < spec.min_sharpness:
        fail("blurred", "The photo is blurred: hold the camera still and focus on the face.")

    faces, searched_width, searched_height = _faces(grey, spec)
    if len(faces) == 0:
        fail("no_face", "No face was found: face the camera, uncovered, in the middle.")
    elif len(faces) > 1:
        fail("several_faces", f"{len(faces)} faces were found; the photo must show only you.")
    else:
        fx, fy, fw, fh = (int(v) for v in faces[0])
        size = fw / searched_width
        cx = (fx + fw / 2) / searched_width
        cy = (fy + fh / 2) / searched_height
        if size < spec.face_min_width:
            fail("face_too_small", "The face is too small: it must fill more of the frame.")
        elif size > spec.face_max_width:
            fail("face_too_large", "The face is too close: show your head and shoulders.")
        if not (
            spec.face_centre_x[0] <= cx <= spec.face_centre_x[1]
            and spec.face_centre_y[0] <= cy <= spec.face_centre_y[1]
        ):
            fail("face_off_centre", "The face must be centred in the frame.")
    return PhotoVerdict(
        width=width,
        height=height,
        problems=tuple(problems),
        faces=len(faces),
        brightness=brightness,
        sharpness=sharpness,
    )


def _faces(grey: np.ndarray[Any, Any], spec: PhotoSpec) -> tuple[Any, int, int]:
    """The faces found in ``grey`` (the photo at the analysis width), as
    ``(x, y, w, h)`` at the searched size, and that size.

    The detector's smallest face is its 24-pixel window, and the search's cost
    grows with the pixels searched: at ``face_search_width`` (160) a face of 15 %
    of the photo's width is found, and a face the card could use spans 20 % or
    more; the search takes 16 ms of CPU on the bench's photo against 40 at 240.
    A photo with no face found there is searched again at
    ``small_face_search_width`` (240: faces down to 10 % of the width), so that a
    face too small for the card is answered as too small, not as missing; a
    second face of 10-15 % of the width beside one found at the first width
    (someone far behind the student) is left to the card office's review.
    """
    faces: Any = ()
    for width in (spec.face_search_width, spec.small_face_search_width):
        small = cv2.resize(
            grey,
            (width, max(1, round(grey.shape[0] * width / grey.shape[1]))),
            interpolation=cv2.INTER_AREA,
        )
        faces = _face_detector().detectMultiScale(
            small, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20)
        )
        if len(faces):
            break
    height, width = small.shape[:2]
    return faces, width, height


def card_image(data: bytes, spec: PhotoSpec) -> bytes:
    """The photo as printed on the card: upright, exactly 4:5, card size, baseline
    JPEG without metadata, at most ``card_max_bytes``."""
    upright, _ = _upright_rgb(data, 2 * spec.card_width)
    return _card_jpeg(upright, spec)


def card_image_fits(image: bytes, spec: PhotoSpec) -> bool:
    """Whether ``image``, made by :func:`card_image` for some specification, is
    what ``spec`` prints: its size and its bytes within the limit."""
    if len(image) > spec.card_max_bytes:
        return False
    try:
        with Image.open(io.BytesIO(image), formats=["JPEG"]) as opened:
            return opened.size == (spec.card_width, spec.card_height)
    except (OSError, SyntaxError, ValueError):
        return False


def _card_jpeg(upright: Image.Image, spec: PhotoSpec) -> bytes:
    """:func:`card_image` of a photo already decoded and upright (its shorter side
    at least twice the card's width)."""
    image = ImageOps.fit(
        upright,
        (spec.card_width, spec.card_height),
        method=Image.Resampling.LANCZOS,
    )
    for quality in (85, 75, 65, 55, 45, 35):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        encoded = out.getvalue()
        if len(encoded) <= spec.card_max_bytes:
            return encoded
    raise ValueError("the card image does not compress below the size limit")
