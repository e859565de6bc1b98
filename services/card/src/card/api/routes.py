"""Card HTTP API: the student's card and booking, the card office's schedule,
card records, print images and collection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from opr_shared.auth import Principal, Role, current_student, require_roles
from opr_shared.runtime import ServiceRuntime, db_of, uow_of
from opr_shared.store.mongo import UnitOfWork
from starlette.requests import Request

from card.api.schemas import (
    BookingIn,
    CardHolderOut,
    CardOut,
    MyCardOut,
    MySlotsOut,
    ScheduleIn,
    ScheduleOut,
    SlotOut,
    StaffSlotOut,
)
from card.domain.card import CardHolder, CardRefused, CardState
from card.domain.card_number import is_valid_card_number
from card.domain.schedule import BookingsWouldBeLost, Day, ScheduleRefused, Window
from card.handlers import collection
from card.handlers.collection import NotFound, Schedule
from card.printing import render_card_png
from card.store import views
from card.store.slots import SlotClosed, SlotFull, UnknownSlot

router = APIRouter(tags=["cards"])

CardOffice = Annotated[Principal, Depends(require_roles(Role.CARD_OFFICE, Role.ADMIN))]
Student = Annotated[Principal, Depends(current_student)]
Db = Annotated[Any, Depends(db_of)]
Uow = Annotated[UnitOfWork, Depends(uow_of)]
StudentNoPath = Annotated[str, Path(pattern=r"^\d{8,10}$")]
CardNoPath = Annotated[str, Path(pattern=r"^\d{8,16}$", description="Card number.")]


def _checked(card_no: str) -> str:
    if not is_valid_card_number(card_no):
        raise HTTPException(422, f"{card_no} is not a card number: its check digit does not match")
    return card_no


def _student_no(principal: Principal) -> str:
    assert principal.student_no is not None
    return principal.student_no


async def _my_card(db: Any, holder: CardHolder) -> MyCardOut:
    card = holder.current_card
    slot = await views.slot(db, holder.slot_id) if holder.slot_id else None
    return MyCardOut(
        student_no=holder.student_no,
        status=holder.status.value,
        card=CardOut.of(card) if card else None,
        slot=SlotOut.of(slot) if slot else None,
        bring=await views.bring(db),
    )


@router.get(
    "/me",
    response_model=MyCardOut,
    responses={404: {"description": "The card office has no record of this student yet"}},
)
async def get_my_card(principal: Student, db: Db) -> MyCardOut:
    """The student's card: status, number, expiry and the booked collection slot."""
    holder = await views.holder(db, _student_no(principal))
    if holder is None:
        raise HTTPException(404, "the card office has no record of you yet")
    return await _my_card(db, holder)


@router.get("/me/slots", response_model=MySlotsOut)
async def get_my_slots(principal: Student, db: Db) -> MySlotsOut:
    """Future collection slots with free places, and the one booked."""
    holder = await views.holder(db, _student_no(principal))
    card = holder.current_card if holder else None
    free = await views.open_slots(db, datetime.now(UTC))
    return MySlotsOut(
        booked_slot_id=holder.slot_id if holder and card and not card.collected else None,
        slots=[SlotOut.of(s) for s in free],
    )


@router.post(
    "/me/booking",
    response_model=MyCardOut,
    responses={
        404: {"description": "No such slot"},
        409: {"description": "The slot is full or over, or there is no card to collect"},
    },
)
async def book_my_slot(body: BookingIn, principal: Student, db: Db, uow: Uow) -> MyCardOut:
    """Book (or change) the collection slot; capacity is enforced."""
    try:
        holder = await collection.book_slot(uow, _student_no(principal), body.slot_id)
    except UnknownSlot as exc:
        raise HTTPException(404, f"no collection slot {body.slot_id}") from exc
    except SlotFull as exc:
        raise HTTPException(409, f"slot {body.slot_id} is full: choose another one") from exc
    except SlotClosed as exc:
        raise HTTPException(409, f"slot {body.slot_id} has started and cannot be booked") from exc
    except CardRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    return await _my_card(db, holder)


def _schedule_out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(
        venue=schedule.venue,
        bring=schedule.bring,
        slots=[StaffSlotOut.of(s) for s in schedule.slots],
    )


@router.put(
    "/schedule",
    response_model=ScheduleOut,
    responses={
        409: {"description": "It would drop bookings"},
        422: {"description": "Inconsistent schedule"},
    },
)
async def put_schedule(body: ScheduleIn, principal: CardOffice, uow: Uow) -> ScheduleOut:
    """Publish the collection schedule (Hong Kong local times). Slots are identified
    by date and start time: publishing again keeps their bookings. Issued cards
    waiting for a slot are offered one shortly after."""
    days = [
        Day(
            date=d.date,
            windows=[Window(start=w.start, end=w.end, capacity=w.capacity) for w in d.windows],
        )
        for d in body.days
    ]
    try:
        schedule = await collection.put_schedule(
            uow, body.venue, list(body.bring), days, principal.subject
        )
    except BookingsWouldBeLost as exc:
        raise HTTPException(409, str(exc)) from exc
    except ScheduleRefused as exc:
        raise HTTPException(422, str(exc)) from exc
    return _schedule_out(schedule)


@router.get("/schedule", response_model=ScheduleOut)
async def get_schedule(_: CardOffice, uow: Uow) -> ScheduleOut:
    """The collection schedule with each slot's bookings."""
    return _schedule_out(await collection.get_schedule(uow))


@router.get(
    "/holders/{student_no}",
    response_model=CardHolderOut,
    responses={404: {"description": "The card office has no record of this student"}},
)
async def get_holder(student_no: StudentNoPath, _: CardOffice, db: Db) -> CardHolderOut:
    """A student's card record and every card issued to them (card office)."""
    holder = await views.holder(db, student_no)
    if holder is None:
        raise HTTPException(404, f"no card record for student {student_no}")
    return CardHolderOut.of(holder)


@router.get(
    "/cards/{card_no}",
    response_model=CardHolderOut,
    responses={404: {"description": "No such card"}, 422: {"description": "Bad check digit"}},
)
async def get_card(card_no: CardNoPath, _: CardOffice, db: Db) -> CardHolderOut:
    """The record of the student a card number belongs to (card office)."""
    holder = await views.holder_of_card(db, _checked(card_no))
    if holder is None:
        raise HTTPException(404, f"no card with number {card_no}")
    return CardHolderOut.of(holder)


@router.get(
    "/cards/{card_no}/image.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The card, 300 dpi, ID-1 size"},
        404: {"description": "No such card"},
        409: {"description": "The card is no longer valid"},
    },
)
async def get_card_image(card_no: CardNoPath, _: CardOffice, db: Db, request: Request) -> Response:
    """The printable card image for the print shop (card office)."""
    holder = await views.holder_of_card(db, _checked(card_no))
    card = holder.card(card_no) if holder else None
    if holder is None or card is None:
        raise HTTPException(404, f"no card with number {card_no}")
    if card.state is not CardState.VALID:
        raise HTTPException(409, f"card {card_no} is {card.state.value}: do not print it")
    runtime: ServiceRuntime = request.app.state.runtime
    if runtime.objects is None:
        raise HTTPException(503, "the card bucket is not configured")
    photo = await runtime.objects.get(card.photo_key)
    png = render_card_png(card, holder.student_no, photo)
    return Response(
        png,
        media_type="image/png",
        headers={"Content-Disposition": f'inline; filename="card-{card_no}.png"'},
    )


@router.post(
    "/cards/{card_no}/collected",
    response_model=CardOut,
    responses={
        404: {"description": "No such card"},
        409: {"description": "The card was replaced or cancelled"},
        422: {"description": "Bad check digit"},
    },
)
async def mark_collected(card_no: CardNoPath, principal: CardOffice, uow: Uow) -> CardOut:
    """Mark a card handed over (card office); marking it again changes nothing."""
    try:
        _, card = await collection.mark_collected(uow, _checked(card_no), principal.subject)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except CardRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    return CardOut.of(card)
