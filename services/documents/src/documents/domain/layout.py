"""Where a file of each accepted format carries text, and where it carries compressed
pixels or stream data.

Compressed data is as good as random: a few bytes of it spell ``<svg`` or a ZIP
signature by chance (``<svg`` in any case about once in 540 MB, so once in every
few hundred phone photos). The polyglot rules look for short signatures only in
the *readable* parts: JPEG segments but not the entropy-coded scans, PNG chunks
but not the image data (``IDAT``, ``fdAT``), PDF objects but not stream contents.

Each walker returns ``(start, end)`` ranges. Where the file's structure stops
making sense, the rest of the file counts as readable: a malformed file is
searched whole, as before.
"""

from __future__ import annotations

import re
import struct

Ranges = list[tuple[int, int]]

# The end of a JPEG scan: 0xFF followed by a marker code, not by a stuffed zero, a
# restart marker (which lives inside the scan) or another fill byte.
_END_OF_SCAN = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")
# Markers that stand alone, without a length: TEM, RST0-7, SOI, EOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8, 0xD9})
_SOS = 0xDA
_EOI = 0xD9

_PNG_SIGNATURE_LENGTH = 8
_PNG_PIXEL_CHUNKS = frozenset({b"IDAT", b"fdAT"})

# ``stream`` must end its line (PDF 32000-1, 7.3.8.1); ``endstream`` closes it.
_PDF_STREAM = re.compile(rb"(?<![A-Za-z])stream(?:\r\n|\n|\r)")
_PDF_END_STREAM = b"endstream"


def jpeg_readable(data: bytes) -> Ranges:
    """Every segment (markers, lengths, tables, comments, APPn metadata), without the
    entropy-coded data that follows each start-of-scan header."""
    ranges: Ranges = []
    i = 2  # after SOI
    start = 0
    while i < len(data):
        if data[i] != 0xFF or i + 1 >= len(data):
            break  # not a marker where one must be: the rest is searched
        code = data[i + 1]
        if code == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if code in _STANDALONE:
            i += 2
            if code == _EOI:
                break
            continue
        if i + 4 > len(data):
            break
        (length,) = struct.unpack_from(">H", data, i + 2)
        i += 2 + length
        if code == _SOS and i <= len(data):
            found = _END_OF_SCAN.search(data, i)
            ranges.append((start, i))
            i = found.start() if found else len(data)
            start = i
    ranges.append((start, len(data)))
    return ranges


def png_readable(data: bytes) -> Ranges:
    """Every chunk whole, except the payload of the compressed pixel chunks."""
    ranges: Ranges = []
    i = _PNG_SIGNATURE_LENGTH
    start = 0
    while i + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, i)
        kind = data[i + 4 : i + 8]
        payload, end = i + 8, i + 12 + length
        if end > len(data):
            break
        if kind in _PNG_PIXEL_CHUNKS:
            ranges.append((start, payload))
            start = payload + length  # the CRC stays readable
        i = end
    ranges.append((start, len(data)))
    return ranges


def pdf_readable(data: bytes) -> Ranges:
    """The objects and their dictionaries, without the contents of their streams."""
    ranges: Ranges = []
    start = 0
    while (found := _PDF_STREAM.search(data, start)) is not None:
        closing = data.find(_PDF_END_STREAM, found.end())
        if closing < 0:
            break
        ranges.append((start, found.end()))
        start = closing
    ranges.append((start, len(data)))
    return ranges
