"""A student found admitted is remembered: uploads do not look the owner record
up again each time (it is never removed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from documents.handlers import uploads
from documents.handlers.uploads import NotAdmitted, ensure_admitted
from documents.store import OWNERS


class Owners:
    """The owners collection, counting lookups."""

    def __init__(self, *admitted: str) -> None:
        self.admitted = set(admitted)
        self.lookups: list[str] = []

    async def find_one(self, query: dict[str, Any], projection: dict[str, Any]) -> Any:
        self.lookups.append(query["_id"])
        return {"_id": query["_id"]} if query["_id"] in self.admitted else None


class Uow:
    def __init__(self, owners: Owners) -> None:
        self.db = {OWNERS: owners}


def check(uow: Uow, student_no: str) -> None:
    asyncio.run(ensure_admitted(uow, student_no))  # type: ignore[arg-type]


def test_an_admitted_student_is_looked_up_once() -> None:
    owners = Owners("s1")
    uow = Uow(owners)
    for _ in range(5):
        check(uow, "s1")
    assert owners.lookups == ["s1"]


def test_a_student_not_yet_admitted_is_looked_up_until_the_admission_arrives() -> None:
    owners = Owners()
    uow = Uow(owners)
    for _ in range(2):
        with pytest.raises(NotAdmitted):
            check(uow, "s2")
    owners.admitted.add("s2")  # the admission reached the service
    check(uow, "s2")
    check(uow, "s2")
    assert owners.lookups == ["s2"] * 3


def test_each_database_keeps_its_own() -> None:
    here, there = Owners("s3"), Owners()
    check(Uow(here), "s3")
    with pytest.raises(NotAdmitted):
        check(Uow(there), "s3")
    assert there.lookups == ["s3"]


def test_the_earliest_found_are_forgotten_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "KNOWN_ADMITTED", 3)
    owners = Owners("a", "b", "c", "d")
    uow = Uow(owners)
    for student in "abcd":
        check(uow, student)
    owners.lookups.clear()
    for student in "dcb":
        check(uow, student)
    assert owners.lookups == []
    check(uow, "a")
    assert owners.lookups == ["a"]
