"""Secrets kept in the database (staff TOTP seeds) sealed with AES-GCM under a key
derived from the deployment's passphrase, so a copy of the database alone does not
give away anyone's second factor.

Without a passphrase (local development only: production refuses to start without
one) values are kept as they are. A value stored before a passphrase was set is
still read, and sealed the next time it is written.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "aesgcm1:"
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that cannot be opened with this deployment's passphrase."""


class Sealer:
    def __init__(self, passphrase: bytes | None, purpose: str) -> None:
        self._aead: AESGCM | None = None
        self._purpose = purpose.encode()
        if passphrase:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"opr-identity " + self._purpose,
            ).derive(passphrase)
            self._aead = AESGCM(key)

    @property
    def seals(self) -> bool:
        return self._aead is not None

    def seal(self, plain: str) -> str:
        if self._aead is None:
            return plain
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain.encode(), self._purpose)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # kept before sealing was configured
        if self._aead is None:
            raise SealError("a sealed secret needs the passphrase it was sealed with")
        raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._purpose).decode()
        except InvalidTag as exc:
            raise SealError("the secret was sealed with another passphrase") from exc
