"""Which parts of a JPEG, PNG or PDF the polyglot rules read: everything but
compressed pixels and stream contents."""

from __future__ import annotations

import re
import struct
from typing import Any

from documents.domain.layout import jpeg_readable, pdf_readable, png_readable


def covered(ranges: list[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in ranges)


def test_a_jpeg_is_read_up_to_its_scan_and_from_its_end_marker(samples: Any) -> None:
    data = samples.jpeg(samples.scan(), comment=b"taken at the registry")
    ranges = jpeg_readable(data)
    scan_header = data.find(b"\xff\xda")
    scan_length = struct.unpack_from(">H", data, scan_header + 2)[0]
    first_pixel_byte = scan_header + 2 + scan_length
    assert covered(ranges, data.find(b"taken at the registry"))
    assert covered(ranges, scan_header)
    assert covered(ranges, first_pixel_byte - 1)
    assert not covered(ranges, first_pixel_byte)
    assert not covered(ranges, (first_pixel_byte + len(data)) // 2)
    assert covered(ranges, len(data) - 2)  # the end-of-image marker


def test_every_scan_of_a_progressive_jpeg_is_skipped_and_its_header_read(samples: Any) -> None:
    data = samples.jpeg(samples.scan(), progressive=True)
    ranges = jpeg_readable(data)
    # In scan data a 0xFF is always followed by 0x00 (or a restart marker): every
    # FF DA is a start-of-scan header.
    headers = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    assert len(headers) > 3
    for header in headers:
        length = struct.unpack_from(">H", data, header + 2)[0]
        assert covered(ranges, header)
        assert not covered(ranges, header + 2 + length)
    unread = len(data) - sum(end - start for start, end in ranges)
    assert unread > len(data) * 0.9


def test_a_jpeg_that_stops_making_sense_is_read_whole_from_there(samples: Any) -> None:
    data = samples.jpeg(samples.scan())
    broken = data[:2] + b"not a marker" + data[2:]
    assert jpeg_readable(broken) == [(0, len(broken))]


def test_a_png_is_read_but_for_its_image_data(samples: Any) -> None:
    data = samples.stored_png([b"<svg" + bytes(12), bytes(16)])
    ranges = png_readable(data)
    assert covered(ranges, data.find(b"scanned at the library"))
    assert covered(ranges, data.find(b"IDAT"))
    assert not covered(ranges, data.find(b"<svg"))
    assert covered(ranges, data.find(b"IEND"))


def test_a_pdf_is_read_but_for_its_stream_contents(samples: Any) -> None:
    data = samples.image_pdf()
    ranges = pdf_readable(data)
    opening = data.find(b"stream\n")
    closing = data.find(b"endstream")
    assert covered(ranges, data.find(b"/Filter"))
    assert covered(ranges, opening)
    assert not covered(ranges, opening + len(b"stream\n"))
    assert not covered(ranges, closing - 1)
    assert covered(ranges, closing)
    assert covered(ranges, data.rfind(b"%%EOF"))


def test_a_pdf_stream_that_never_ends_leaves_the_rest_readable(samples: Any) -> None:
    data = samples.pdf() + b"\n1 0 obj << /Length 5 >> stream\nabcde"
    ranges = pdf_readable(data)
    assert covered(ranges, len(data) - 1)
