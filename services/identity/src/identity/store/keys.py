"""The signing keys, kept in identity's database (private halves encrypted when a
passphrase is set), and the JWKS built from them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from opr_shared.auth import generate_private_key, public_jwk
from pymongo.asynchronous.database import AsyncDatabase

from identity.domain.keys import KeyRecord, published_keys, signing_key
from identity.store import SIGNING_KEYS


class SigningKeyStore:
    def __init__(
        self,
        *,
        passphrase: bytes | None,
        token_lifetime: timedelta,
        cache_seconds: float = 30.0,
    ) -> None:
        self._db: AsyncDatabase[dict[str, Any]] | None = None
        self._passphrase = passphrase
        self._lifetime = token_lifetime
        self._cache_seconds = cache_seconds
        self._signer: tuple[float, str, rsa.RSAPrivateKey] | None = None
        self._private: dict[str, rsa.RSAPrivateKey] = {}

    def attach(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        """The database is the runtime's, made after this store (which the runtime needs)."""
        self._db = db

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        if self._db is None:
            raise RuntimeError("signing key store not attached to a database")
        return self._db

    async def _all(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.db[SIGNING_KEYS].find({}).sort("created_at", 1)]

    @staticmethod
    def _record(doc: dict[str, Any]) -> KeyRecord:
        return KeyRecord(doc["_id"], doc["created_at"], doc.get("retired_at"), doc["public_jwk"])

    async def _create(self, now: datetime) -> str:
        kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"
        key = generate_private_key()
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        await self.db[SIGNING_KEYS].insert_one(
            {
                "_id": kid,
                "private_pem": pem.decode(),
                "public_jwk": public_jwk(key, kid),
                "created_at": now,
                "retired_at": None,
            }
        )
        self._private[kid] = key
        return kid

    async def ensure_key(self) -> None:
        """At start-up: make a key when there is none to sign with."""
        if signing_key([self._record(d) for d in await self._all()]) is None:
            await self._create(datetime.now(UTC))

    async def rotate(self) -> str:
        """A new signing key; the others retire (published until their tokens expire)."""
        now = datetime.now(UTC)
        kid = await self._create(now)
        await self.db[SIGNING_KEYS].update_many(
            {"_id": {"$ne": kid}, "retired_at": None}, {"$set": {"retired_at": now}}
        )
        self._signer = None
        return kid

    async def signer(self) -> tuple[str, rsa.RSAPrivateKey]:
        cached = self._signer
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1], cached[2]
        docs = await self._all()
        current = signing_key([self._record(d) for d in docs])
        if current is None:
            await self.ensure_key()
            return await self.signer()
        key = self._private.get(current.kid)
        if key is None:
            doc = next(d for d in docs if d["_id"] == current.kid)
            loaded = serialization.load_pem_private_key(
                doc["private_pem"].encode(), password=self._passphrase
            )
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise RuntimeError(f"signing key {current.kid} is not an RSA key")
            key = self._private[current.kid] = loaded
        self._signer = (time.monotonic(), current.kid, key)
        return current.kid, key

    async def jwks(self) -> dict[str, Any]:
        keys = published_keys(
            [self._record(d) for d in await self._all()], datetime.now(UTC), self._lifetime
        )
        return {"keys": [k.public_jwk for k in keys]}

    async def listing(self) -> list[KeyRecord]:
        return [self._record(d) for d in await self._all()]
