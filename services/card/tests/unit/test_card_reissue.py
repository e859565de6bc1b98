"""Reissue on a new approved photo, collection, bookings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from card.domain.card import (
    CardHolder,
    CardRefused,
    CardState,
    CardWasCollected,
    CardWasIssued,
    Particulars,
    Photo,
    RegistrationState,
    SlotWasBooked,
)

T0 = datetime(2026, 8, 1, 2, 0, tzinfo=UTC)


def photo(n: int, *, sha: int | None = None) -> Photo:
    digest = f"{sha if sha is not None else n:064x}"
    return Photo(f"photo-{n}", digest, T0 + timedelta(hours=n), f"photos/x/{digest}.jpg")


def issued_holder() -> CardHolder:
    holder = CardHolder(
        student_no="20261234",
        particulars=Particulars("CHAN", "Tai Man", None, "BBA", "Business", 2026, "postgraduate"),
        registration=RegistrationState.COMPLETED,
        photo=photo(1),
    )
    holder.issue("2026000012", T0)
    return holder


def test_a_new_photo_reissues_with_a_new_number_and_invalidates_the_old() -> None:
    holder = issued_holder()
    holder.book("2026-08-20-1000")
    assert holder.approve_photo(photo(2))
    due = holder.card_due()
    assert due is not None
    assert due.replaces == "2026000012"
    [event] = holder.issue("2026000020", T0 + timedelta(days=1))
    assert isinstance(event, CardWasIssued)
    assert event.card.replaces == "2026000012"
    assert event.slot_id == "2026-08-20-1000"  # the booking serves the new card
    old, new = holder.cards
    assert (old.state, old.replaced_by) == (CardState.REPLACED, "2026000020")
    assert (new.state, new.photo_id) == (CardState.VALID, "photo-2")
    assert new.expires_on.isoformat() == "2028-08-31"  # postgraduate: two years
    assert holder.card_due() is None
    with pytest.raises(CardRefused, match="replaced by 2026000020"):
        holder.collect("2026000012", "card.ho", T0)


def test_the_same_photo_again_or_an_older_one_does_not_reissue() -> None:
    holder = issued_holder()
    assert not holder.approve_photo(photo(1))
    assert holder.card_due() is None
    holder.approve_photo(photo(3))
    assert not holder.approve_photo(photo(2))  # approved before the current one
    assert holder.photo == photo(3)
    # A new approval of an identical image is not worth a new card.
    holder2 = issued_holder()
    holder2.approve_photo(photo(5, sha=1))
    assert holder2.card_due() is None


def test_a_reissue_after_collection_needs_a_new_slot() -> None:
    holder = issued_holder()
    holder.book("2026-08-20-1000")
    [collected] = holder.collect("2026000012", "card.ho", T0 + timedelta(days=2))
    assert isinstance(collected, CardWasCollected)
    assert holder.collect("2026000012", "card.ho", T0 + timedelta(days=3)) == []
    holder.approve_photo(photo(2))
    [event] = holder.issue("2026000020", T0 + timedelta(days=4))
    assert isinstance(event, CardWasIssued)
    assert event.slot_id is None
    assert holder.awaiting_slot


def test_bookings_move_and_release_the_previous_slot() -> None:
    holder = issued_holder()
    assert holder.awaiting_slot
    assert holder.book("a") == [SlotWasBooked("2026000012", "a", None)]
    assert holder.book("a") == []
    assert holder.book("b") == [SlotWasBooked("2026000012", "b", "a")]
    holder.collect("2026000012", "card.ho", T0)
    with pytest.raises(CardRefused, match="already been collected"):
        holder.book("c")


def test_issuing_refuses_a_used_number_and_booking_needs_a_card() -> None:
    holder = issued_holder()
    holder.approve_photo(photo(2))
    with pytest.raises(CardRefused, match="already used"):
        holder.issue("2026000012", T0)
    with pytest.raises(CardRefused, match="no card has been issued"):
        CardHolder(student_no="20269999").book("a")
    with pytest.raises(CardRefused, match="does not belong"):
        holder.collect("2026999999", "card.ho", T0)
