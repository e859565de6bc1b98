"""The eligibility rule: a card when the particulars, a completed registration and an
approved photo are all known, in whichever order, never before, never twice; a
withdrawn registration never gets one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from card.domain.card import (
    CardHolder,
    CardRefused,
    CardState,
    CardWasCancelled,
    CardWasIssued,
    HolderStatus,
    Particulars,
    Photo,
)
from card.domain.card_number import card_number
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 8, 1, 2, 0, tzinfo=UTC)
PARTICULARS = Particulars(
    surname="CHAN",
    given_names="Tai Man",
    chinese_name="陳大文",
    programme_code="JS5101",
    programme_name="Bachelor of Engineering",
    intake_year=2026,
)


def photo(n: int = 1) -> Photo:
    return Photo(
        photo_id=f"photo-{n}",
        sha256=f"{n:064x}",
        approved_at=T0 + timedelta(hours=n),
        key=f"photos/20261234/{n:064x}.jpg",
    )


class Office:
    """What the handlers do after every fact: issue the card if one is due."""

    def __init__(self) -> None:
        self.holder = CardHolder(student_no="20261234")
        self.issued: list[CardWasIssued] = []
        self.serial = 0

    def settle(self) -> None:
        if self.holder.card_due() is not None:
            self.serial += 1
            for event in self.holder.issue(card_number(2026, self.serial), T0):
                assert isinstance(event, CardWasIssued)
                self.issued.append(event)


FACTS: dict[str, Callable[[CardHolder], object]] = {
    "admitted": lambda h: h.admit(PARTICULARS),
    "completed": lambda h: h.complete_registration(),
    "photo": lambda h: h.approve_photo(photo(1)),
    "withdrawn": lambda h: h.withdraw(),
    "incomplete": lambda h: h.mark_incomplete(),
}


def run(sequence: list[str]) -> Office:
    office = Office()
    for fact in sequence:
        FACTS[fact](office.holder)
        office.settle()
    return office


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["admitted", "completed", "photo"])), ids="-".join
)
def test_the_card_is_issued_when_the_last_fact_arrives_in_every_order(
    order: tuple[str, ...],
) -> None:
    office = Office()
    for i, fact in enumerate(order):
        assert office.issued == [], f"issued before {fact}"
        FACTS[fact](office.holder)
        office.settle()
        assert len(office.issued) == (1 if i == 2 else 0)
    assert office.holder.status is HolderStatus.ISSUED
    card = office.issued[0].card
    assert (card.card_no, card.surname, card.photo_id) == ("2026000014", "CHAN", "photo-1")
    assert card.expires_on.isoformat() == "2030-08-31"


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["admitted", "completed", "photo"])), ids="-".join
)
def test_every_fact_twice_still_issues_exactly_one_card(order: tuple[str, ...]) -> None:
    doubled = [fact for fact in order for _ in range(2)] + list(order)
    office = run(doubled)
    assert len(office.issued) == 1
    assert [c.state for c in office.holder.cards] == [CardState.VALID]


@pytest.mark.parametrize(
    "missing", ["admitted", "completed", "photo"], ids=lambda m: f"without-{m}"
)
def test_no_card_while_a_fact_is_missing(missing: str) -> None:
    facts = [f for f in ("admitted", "completed", "photo") if f != missing]
    office = run(facts * 3)
    assert office.issued == []
    assert office.holder.status is HolderStatus.AWAITING_ELIGIBILITY
    with pytest.raises(CardRefused, match="no card is due"):
        office.holder.issue("2026000014", T0)


@given(st.lists(st.sampled_from(["admitted", "completed", "photo", "withdrawn"]), max_size=12))
def test_any_arrival_sequence_obeys_the_rule(sequence: list[str]) -> None:
    office = run(sequence)
    withdrawn_at = sequence.index("withdrawn") if "withdrawn" in sequence else len(sequence)
    before = set(sequence[:withdrawn_at])
    eligible_before_withdrawal = before >= {"admitted", "completed", "photo"}
    assert len(office.issued) == (1 if eligible_before_withdrawal else 0)
    if "withdrawn" in sequence:
        assert office.holder.status is HolderStatus.WITHDRAWN
        assert office.holder.current_card is None
    elif eligible_before_withdrawal:
        assert office.holder.status is HolderStatus.ISSUED


def test_an_incomplete_registration_waits_for_its_completion() -> None:
    office = run(["admitted", "photo", "incomplete", "incomplete"])
    assert office.issued == []
    office = run(["admitted", "photo", "incomplete", "completed", "incomplete"])
    assert len(office.issued) == 1
    assert office.holder.registration.value == "completed"


def test_withdrawal_cancels_an_issued_card_and_releases_its_slot() -> None:
    office = run(["admitted", "completed", "photo"])
    office.holder.book("2026-08-20-1000")
    events = office.holder.withdraw()
    card_no = office.issued[0].card.card_no
    assert events == [CardWasCancelled(card_no=card_no, released_slot_id="2026-08-20-1000")]
    assert office.holder.cards[0].state is CardState.CANCELLED
    assert office.holder.withdraw() == []
    # Final: neither a later completion nor a new photo brings a card back.
    office.holder.complete_registration()
    office.holder.approve_photo(photo(2))
    office.settle()
    assert len(office.issued) == 1
    with pytest.raises(CardRefused, match="withdrawn"):
        office.holder.book("2026-08-21-1000")
    with pytest.raises(CardRefused, match="cancelled"):
        office.holder.collect(card_no, "card.ho", T0)
