"""Reading a multipart upload without ever holding more than the cap.

FastAPI's ``UploadFile`` parameters spool the whole body before the route runs,
however large it is; here the body is read as a stream and abandoned as soon
as it passes the cap (or at once, when Content-Length says it will).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

# Room for the multipart framing and the small text fields beside the file.
FRAMING_BYTES = 16 * 1024


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]
    data: bytes
    filename: str | None


def body_limit(max_bytes: int) -> int:
    """The longest request body an upload of at most ``max_bytes`` may have."""
    return max_bytes + FRAMING_BYTES


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(
        413,
        {
            "code": "too_large",
            "message": f"The file is larger than the limit of {max_bytes} bytes.",
        },
    )


async def read_upload(request: Request, *, max_bytes: int) -> Upload:
    """The text fields and the one file (field ``file``) of a multipart request."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise HTTPException(
            415, {"code": "not_multipart", "message": "Send the file as multipart/form-data."}
        )
    limit = body_limit(max_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(max_bytes)

    async def capped() -> AsyncGenerator[bytes, None]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise _TooLarge
            yield chunk

    parser = MultiPartParser(
        request.headers, capped(), max_files=1, max_fields=4, max_part_size=4096
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise _too_large(max_bytes) from None
    except MultiPartException as exc:
        raise HTTPException(
            400, {"code": "bad_multipart", "message": f"Malformed upload: {exc.message}"}
        ) from exc
    try:
        fields: dict[str, str] = {}
        upload: UploadFile | None = None
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name == "file":
                    upload = value
            else:
                fields[name] = value
        if upload is None:
            raise HTTPException(
                400, {"code": "no_file", "message": "Send the file in a form field named 'file'."}
            )
        data = await upload.read()
        return Upload(fields=fields, data=data, filename=upload.filename)
    finally:
        await form.close()
