"""The service's own bucket (MinIO in production, any S3 server locally).

Keys are always chosen by the service, never by a client.
"""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta
from urllib.parse import urlparse

from minio import Minio
from minio.error import S3Error


class ObjectStore:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
    ) -> None:
        url = urlparse(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"S3 endpoint must be an http(s) URL, got {endpoint!r}")
        self.bucket = bucket
        self.client = Minio(
            url.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=url.scheme == "https",
            region=region,
        )

    async def ensure_bucket(self) -> None:
        def make() -> None:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        await asyncio.to_thread(make)

    async def reachable(self) -> bool:
        return await asyncio.to_thread(self.client.bucket_exists, self.bucket)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def exists(self, key: str) -> bool:
        def stat() -> bool:
            try:
                self.client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject"):
                    return False
                raise
            return True

        return await asyncio.to_thread(stat)

    async def listed(self, prefix: str) -> list[tuple[str, datetime]]:
        """Every object whose key starts with ``prefix``: its key and when it was written."""

        def walk() -> list[tuple[str, datetime]]:
            found = []
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if item.object_name and item.last_modified is not None and not item.is_dir:
                    found.append((item.object_name, item.last_modified))
            return found

        return await asyncio.to_thread(walk)

    async def remove(self, key: str) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    async def presigned_get(self, key: str, expires: timedelta) -> str:
        return await asyncio.to_thread(
            self.client.presigned_get_object, self.bucket, key, expires=expires
        )
