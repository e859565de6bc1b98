"""Passwords: the policy a new password must meet, and the memory-hard hash.

Argon2id (RFC 9106) with the parameters the settings give. Verification is
CPU- and memory-bound: the ``*_async`` methods run it on a few dedicated threads.
When an account does not exist, :meth:`PasswordHashing.verify_dummy` does the same
work against a hash of a random secret, so "no such account" takes as long as
"wrong password".
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_R = TypeVar("_R")

MIN_LENGTH = 10
MAX_LENGTH = 128
MIN_DISTINCT = 5

# The most used passwords that would pass the length rule; a real deployment may
# extend this list, the rule stays the same.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1111111111",
        "password123",
        "password1234",
        "passw0rd123",
        "qwertyuiop",
        "qwerty12345",
        "iloveyou123",
        "abcdefghij",
        "abc1234567",
        "1q2w3e4r5t",
        "q1w2e3r4t5",
        "letmein123",
        "welcome123",
        "admin12345",
        "changeme123",
        "football123",
        "university1",
        "university123",
    }
)


def password_problems(password: str, personal: list[str]) -> list[str]:
    """Why ``password`` is not acceptable (empty: it is).

    ``personal`` holds what an attacker knows about the holder (student number,
    application number, names, e-mail addresses); a password containing any of
    them (4+ characters, case-insensitive) is refused.
    """
    problems: list[str] = []
    text = unicodedata.normalize("NFKC", password)
    if len(text) < MIN_LENGTH:
        problems.append(f"the password must have at least {MIN_LENGTH} characters")
    if len(text) > MAX_LENGTH:
        problems.append(f"the password must have at most {MAX_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        problems.append("the password must not contain control characters")
    if len(set(text)) < MIN_DISTINCT:
        problems.append(f"the password must use at least {MIN_DISTINCT} different characters")
    folded = text.casefold()
    if folded in COMMON_PASSWORDS:
        problems.append("the password is too common")
    for item in personal:
        for part in item.casefold().replace("@", " ").replace(".", " ").split():
            if len(part) >= 4 and part in folded:
                problems.append(
                    "the password must not contain your name, student or application number, "
                    "or e-mail address"
                )
                return problems
    return problems


@dataclass(frozen=True)
class HashParameters:
    """Argon2id cost; the defaults are OWASP's recommended configuration."""

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1


# Hashes computed at once: each holds ``memory_kib`` and keeps a core busy, so a
# burst of logins queues here instead of multiplying resident memory and CPU load.
MAX_CONCURRENT_HASHES = 2


class PasswordHashing:
    def __init__(
        self, params: HashParameters | None = None, max_concurrent: int = MAX_CONCURRENT_HASHES
    ) -> None:
        p = params or HashParameters()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        # The async methods run on these threads only. Each thread that has hashed
        # keeps its own malloc arena holding about ``memory_kib``: a handful of
        # dedicated threads, not the default pool's, bound the resident memory.
        self._threads = ThreadPoolExecutor(max_concurrent, thread_name_prefix="argon2")
        self._hasher = PasswordHasher(
            time_cost=p.time_cost,
            memory_cost=p.memory_kib,
            parallelism=p.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        try:
            with self._slots:
                return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> bool:
        """The work of one verification, for an account that does not exist. Always False."""
        self.verify(self._dummy, password)
        return False

    async def hash_async(self, password: str) -> str:
        return await self._off_loop(self.hash, password)

    async def verify_async(self, stored_hash: str, password: str) -> bool:
        return await self._off_loop(self.verify, stored_hash, password)

    async def verify_dummy_async(self, password: str) -> bool:
        return await self._off_loop(self.verify_dummy, password)

    async def _off_loop(self, work: Callable[..., _R], *args: str) -> _R:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
