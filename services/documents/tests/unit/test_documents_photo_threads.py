"""Photos are checked on several threads at once. OpenCV's algorithms must not be
shared between threads (a shared cascade classifier sometimes found no face in a
good photo under load), so every thread has its own face detector; and OpenCV
does not split a search across threads of its own besides."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
from documents.domain.photo import PhotoSpec, _face_detector, check_photo
from opr_shared.testing.samples import face_photo


def test_each_thread_has_its_own_face_detector() -> None:
    start = threading.Barrier(4)

    def detectors() -> tuple[int, int]:
        start.wait()  # all four threads alive at once: four distinct threads
        return id(_face_detector()), id(_face_detector())

    with ThreadPoolExecutor(max_workers=4) as pool:
        pairs = list(pool.map(lambda _: detectors(), range(4)))
    assert all(first == again for first, again in pairs)  # reused within a thread
    assert len({first for first, _ in pairs}) == 4  # never shared between threads


def test_concurrent_checks_of_one_good_photo_all_pass() -> None:
    photo = face_photo()
    with ThreadPoolExecutor(max_workers=6) as pool:
        verdicts = list(pool.map(lambda _: check_photo(photo, PhotoSpec()), range(24)))
    assert [[p.code for p in v.problems] for v in verdicts if not v.passed] == []


def test_opencv_searches_on_the_calling_thread_only() -> None:
    # Its default is a pool of one thread per core, next to the service's own two.
    assert cv2.getNumThreads() == 1
