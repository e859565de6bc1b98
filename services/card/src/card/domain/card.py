"""The card holder of one student, from admission to collection: the aggregate.

Eligibility is assembled from facts that arrive as events from three producers,
in any order and possibly more than once: the student's particulars (identity),
a completed registration (registration) and an approved photo (documents). A card
is due when all three are known, the registration is not withdrawn, and the
current card (if any) does not already carry the latest approved photo. Every
transition either changes state and returns what happened, or refuses; applying
the same fact again changes nothing.

Withdrawal is final for the card office: a withdrawn student never gets a card,
a card already issued is cancelled (even if collected: it is no longer valid and
the booking is released), and a later registration outcome is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

# Years a card stays valid, counted from the intake year, by study level; it
# expires on 31 August of the last one.
VALIDITY_YEARS = {"undergraduate": 4, "postgraduate": 2}


class CardRefused(Exception):
    """A command that the card's state does not allow; the message is for the user."""


class HolderStatus(StrEnum):
    AWAITING_ELIGIBILITY = "awaiting_eligibility"
    ISSUED = "issued"
    COLLECTED = "collected"
    WITHDRAWN = "withdrawn"


class RegistrationState(StrEnum):
    PENDING = "pending"
    INCOMPLETE = "incomplete"  # registered, supplementary documents outstanding: no card yet
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


class CardState(StrEnum):
    VALID = "valid"
    REPLACED = "replaced"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Particulars:
    """What is printed on the card, as the roster has it."""

    surname: str
    given_names: str
    chinese_name: str | None
    programme_code: str
    programme_name: str
    intake_year: int
    study_level: str = "undergraduate"


@dataclass(frozen=True)
class Photo:
    """An approved photo, kept in the card service's own bucket under ``key``."""

    photo_id: str
    sha256: str
    approved_at: datetime
    key: str


@dataclass(frozen=True)
class Card:
    """One physical card; a holder keeps every card ever issued to them."""

    card_no: str
    photo_id: str
    photo_sha256: str
    photo_key: str
    surname: str
    given_names: str
    chinese_name: str | None
    programme_code: str
    programme_name: str
    issued_at: datetime
    expires_on: date
    state: CardState = CardState.VALID
    replaces: str | None = None
    replaced_by: str | None = None
    collected_at: datetime | None = None
    collected_by: str | None = None

    @property
    def collected(self) -> bool:
        return self.collected_at is not None


# --- what happened (internal events; translated to catalogue events in handlers) ---


@dataclass(frozen=True)
class CardWasIssued:
    card: Card
    # The slot already booked for the card it replaces, carried over.
    slot_id: str | None


@dataclass(frozen=True)
class CardWasCancelled:
    card_no: str
    released_slot_id: str | None


@dataclass(frozen=True)
class SlotWasBooked:
    card_no: str
    slot_id: str
    released_slot_id: str | None


@dataclass(frozen=True)
class CardWasCollected:
    card: Card


DomainEvent = CardWasIssued | CardWasCancelled | SlotWasBooked | CardWasCollected


@dataclass(frozen=True)
class CardDue:
    """A card should be issued now; ``replaces`` is the number it invalidates, if any."""

    replaces: str | None


def expiry_date(particulars: Particulars) -> date:
    years = VALIDITY_YEARS.get(particulars.study_level, VALIDITY_YEARS["undergraduate"])
    return date(particulars.intake_year + years, 8, 31)


@dataclass
class CardHolder:
    student_no: str
    particulars: Particulars | None = None
    registration: RegistrationState = RegistrationState.PENDING
    photo: Photo | None = None
    cards: list[Card] = field(default_factory=list)
    # The booked collection slot of the current card (kept after collection, as history).
    slot_id: str | None = None
    university_email: str | None = None

    # -- queries ---------------------------------------------------------------

    @property
    def current_card(self) -> Card | None:
        """The card that is valid now, if any."""
        if self.cards and self.cards[-1].state is CardState.VALID:
            return self.cards[-1]
        return None

    @property
    def status(self) -> HolderStatus:
        if self.registration is RegistrationState.WITHDRAWN:
            return HolderStatus.WITHDRAWN
        card = self.current_card
        if card is None:
            return HolderStatus.AWAITING_ELIGIBILITY
        return HolderStatus.COLLECTED if card.collected else HolderStatus.ISSUED

    @property
    def awaiting_slot(self) -> bool:
        """An issued card, not collected, with no collection slot yet."""
        card = self.current_card
        return card is not None and not card.collected and self.slot_id is None

    def card(self, card_no: str) -> Card | None:
        return next((c for c in self.cards if c.card_no == card_no), None)

    def card_due(self) -> CardDue | None:
        """Whether a card (or a replacement) is to be issued now, and which it replaces."""
        if (
            self.registration is not RegistrationState.COMPLETED
            or self.particulars is None
            or self.photo is None
        ):
            return None
        current = self.current_card
        if current is None:
            return CardDue(replaces=None)
        if current.photo_sha256 != self.photo.sha256:
            return CardDue(replaces=current.card_no)
        return None

    # -- facts from events ---------------------------------------------------------

    def admit(self, particulars: Particulars) -> bool:
        """Particulars from the admission; the first ones known win over a replayed admission."""
        if self.particulars is not None:
            return False
        self.particulars = particulars
        return True

    def correct_particulars(self, particulars: Particulars) -> bool:
        """Corrected particulars; printed on cards issued from now on."""
        if self.particulars == particulars:
            return False
        self.particulars = particulars
        return True

    def complete_registration(self) -> bool:
        if self.registration not in (RegistrationState.PENDING, RegistrationState.INCOMPLETE):
            return False  # already completed, or withdrawn (final)
        self.registration = RegistrationState.COMPLETED
        return True

    def mark_incomplete(self) -> bool:
        """Registered with supplementary documents outstanding; a completion still counts."""
        if self.registration is not RegistrationState.PENDING:
            return False  # a completion already made the card due; withdrawal is final
        self.registration = RegistrationState.INCOMPLETE
        return True

    def activate_account(self, university_email: str) -> bool:
        if self.university_email == university_email:
            return False
        self.university_email = university_email
        return True

    def approve_photo(self, photo: Photo) -> bool:
        """Keep the latest approved photo; a replayed or older approval changes nothing."""
        if self.photo is not None and (
            photo.photo_id == self.photo.photo_id or photo.approved_at < self.photo.approved_at
        ):
            return False
        self.photo = photo
        return True

    def withdraw(self) -> list[DomainEvent]:
        if self.registration is RegistrationState.WITHDRAWN:
            return []
        self.registration = RegistrationState.WITHDRAWN
        current = self.current_card
        if current is None:
            return []
        released = None if current.collected else self.slot_id
        self.cards[-1] = replace(current, state=CardState.CANCELLED)
        if released is not None:
            self.slot_id = None
        return [CardWasCancelled(card_no=current.card_no, released_slot_id=released)]

    # -- commands --------------------------------------------------------------

    def issue(self, card_no: str, at: datetime) -> list[DomainEvent]:
        """Issue the card that is due under ``card_no`` (a fresh, unused number)."""
        due = self.card_due()
        if due is None:
            raise CardRefused(f"no card is due for student {self.student_no}")
        if self.card(card_no) is not None:
            raise CardRefused(f"card number {card_no} was already used")
        assert self.particulars is not None
        assert self.photo is not None
        p, photo = self.particulars, self.photo
        carried_slot: str | None = None
        if due.replaces is not None:
            old = self.cards[-1]
            self.cards[-1] = replace(old, state=CardState.REPLACED, replaced_by=card_no)
            # A booked, uncollected card's slot serves for its replacement; after
            # a collection the new card needs a slot of its own.
            carried_slot = None if old.collected else self.slot_id
        self.slot_id = carried_slot
        card = Card(
            card_no=card_no,
            photo_id=photo.photo_id,
            photo_sha256=photo.sha256,
            photo_key=photo.key,
            surname=p.surname,
            given_names=p.given_names,
            chinese_name=p.chinese_name,
            programme_code=p.programme_code,
            programme_name=p.programme_name,
            issued_at=at,
            expires_on=expiry_date(p),
            replaces=due.replaces,
        )
        self.cards.append(card)
        return [CardWasIssued(card=card, slot_id=carried_slot)]

    def book(self, slot_id: str) -> list[DomainEvent]:
        """Book (or change) the collection slot of the current card."""
        card = self.current_card
        if card is None:
            if self.registration is RegistrationState.WITHDRAWN:
                raise CardRefused("the registration was withdrawn: there is no card to collect")
            raise CardRefused("no card has been issued yet")
        if card.collected:
            raise CardRefused(f"card {card.card_no} has already been collected")
        if slot_id == self.slot_id:
            return []
        released, self.slot_id = self.slot_id, slot_id
        return [SlotWasBooked(card_no=card.card_no, slot_id=slot_id, released_slot_id=released)]

    def collect(self, card_no: str, by: str, at: datetime) -> list[DomainEvent]:
        """Hand the card over; marking the same card again changes nothing."""
        card = self.card(card_no)
        if card is None:
            raise CardRefused(f"card {card_no} does not belong to student {self.student_no}")
        if card.state is not CardState.VALID:
            detail = f" by {card.replaced_by}" if card.replaced_by else ""
            raise CardRefused(f"card {card_no} is {card.state.value}{detail}: do not hand it over")
        if card.collected:
            return []
        collected = replace(card, collected_at=at, collected_by=by)
        self.cards[-1] = collected
        return [CardWasCollected(card=collected)]
