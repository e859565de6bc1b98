"""The card service's own bucket: approved photos, under keys the service chooses."""

from __future__ import annotations

from typing import Protocol


class Bucket(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...


def photo_key(student_no: str, sha256: str) -> str:
    # Content-addressed: writing it again (a retried transaction, a redelivered
    # event) writes the same bytes to the same key.
    return f"photos/{student_no}/{sha256}.jpg"


class LateBucket:
    """A bucket handed to the subscriptions before the runtime has made the real one."""

    def __init__(self) -> None:
        self._bucket: Bucket | None = None

    def bind(self, bucket: Bucket | None) -> None:
        self._bucket = bucket

    @property
    def bucket(self) -> Bucket:
        if self._bucket is None:
            raise RuntimeError("the card bucket is not configured")
        return self._bucket

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.bucket.put(key, data, content_type)

    async def get(self, key: str) -> bytes:
        return await self.bucket.get(key)
